// gort::blocking (Go's entersyscall/exitsyscall) and sysmon's retaking of Ps.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "gort/gort.hpp"
#include "os/os.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

__attribute__((noinline)) int read_errno() {
  return errno;
}

TEST(Blocking, ReturnsTheResultAndRethrows) {
  gort::run([] {
    EXPECT_EQ(gort::blocking([] { return 42; }), 42);
    std::string s = gort::blocking([] { return std::string("moved out"); });
    EXPECT_EQ(s, "moved out");
    bool ran = false;
    gort::blocking([&] { ran = true; });
    EXPECT_TRUE(ran);
    EXPECT_THROW(gort::blocking([]() -> int { throw std::runtime_error("foreign failure"); }),
                 std::runtime_error);
    // Still a working goroutine afterwards.
    gort::Chan<int> c = gort::make_chan<int>(1);
    c.send(1);
    EXPECT_EQ(c.recv(), 1);
  });
}

TEST(Blocking, OutsideAGoroutineIsAPlainCall) {
  EXPECT_EQ(gort::blocking([] { return 7; }), 7);
}

TEST(Blocking, ErrnoOfTheCallSurvives) {
  gort::run(
      [] {
        gort::blocking([] {
          std::this_thread::sleep_for(2ms);  // long enough to be retaken sometimes
          errno = EAGAIN;
        });
        EXPECT_EQ(read_errno(), EAGAIN);
      },
      gort::Options{.procs = 2});
}

// The requirement: 16 goroutines each in a 1-second blocking call do not stop
// other goroutines from running, with 2 Ps.
TEST(Blocking, LongCallsDoNotStopOtherGoroutines) {
  gort::run(
      [] {
        constexpr int kBlocked = 16;
        const int workers = static_cast<int>(gort::test::scaled(1000));
        // 1 s as the issue says; under TSan (a goroutine costs milliseconds to create, and
        // a loaded machine once needed more than 1 s for the workers) the calls last longer,
        // so "every worker ran while every call was in progress" still holds.
        const auto call = gort::test::kTsan ? 5s : 1s;
        const auto t0 = gort::now();
        gort::WaitGroup blocked_done, workers_done;
        blocked_done.add(kBlocked);
        workers_done.add(workers);
        std::atomic<int> started{0}, returned{0};
        for (int i = 0; i < kBlocked; ++i) {
          gort::go([&] {
            started.fetch_add(1);
            gort::blocking([&] { std::this_thread::sleep_for(call); });
            returned.fetch_add(1);
            blocked_done.done();
          });
        }
        while (started.load() < kBlocked) gort::sleep(100us);
        std::atomic<long> sum{0};
        for (int i = 0; i < workers; ++i) {
          gort::go([&, i] {
            gort::yield();
            sum.fetch_add(i);
            workers_done.done();
          });
        }
        workers_done.wait();
        // All of them ran while every blocking call was still in progress (TSan makes
        // spawning slow, so only the plain build also bounds the time).
        EXPECT_EQ(returned.load(), 0);
        if (!gort::test::kTsan) {
          EXPECT_LT(gort::now() - t0, 600ms);
        }
        EXPECT_EQ(sum.load(), static_cast<long>(workers) * (workers - 1) / 2);
        blocked_done.wait();
        EXPECT_GE(gort::now() - t0, call);
        const gort::SchedStats st = gort::sched_stats();
        EXPECT_GT(st.sysmon_retakes, 0u);
        EXPECT_LE(st.threads, kBlocked + 3);  // one thread per blocked call, plus the Ps'
      },
      gort::Options{.procs = 2});
}

TEST(Blocking, ShortCallsKeepTheirP) {
  gort::run(
      [] {
        long total = 0;
        for (int i = 0; i < 100'000; ++i) total += gort::blocking([i] { return i % 3; });
        EXPECT_EQ(total, 99'999L);
        // Fast calls take their P back with one CAS: no thread per call.
        EXPECT_LE(gort::sched_stats().threads, 4);
      },
      gort::Options{.procs = 2});
}

TEST(Blocking, LockedGoroutineComesBackOnItsThread) {
  gort::run(
      [] {
        std::atomic<bool> stop{false};
        gort::WaitGroup busy;
        busy.add(2);
        for (int i = 0; i < 2; ++i) {  // keep the Ps busy so the P is retaken
          gort::go([&] {
            while (!stop.load()) gort::yield();
            busy.done();
          });
        }
        gort::lock_os_thread();
        const int tid = gort::os::thread_id();
        gort::blocking([] { std::this_thread::sleep_for(50ms); });
        EXPECT_EQ(gort::os::thread_id(), tid);
        gort::unlock_os_thread();
        stop = true;
        busy.wait();
        EXPECT_GT(gort::sched_stats().sysmon_retakes, 0u);
      },
      gort::Options{.procs = 2});
}

TEST(Blocking, CallInProgressIsNotADeadlock) {
  gort::run(
      [] {
        gort::Chan<int> c = gort::make_chan<int>();
        gort::go([c] {
          gort::blocking([] { std::this_thread::sleep_for(100ms); });
          c.send(5);
        });
        EXPECT_EQ(c.recv(), 5);  // every other goroutine is blocked meanwhile
      },
      gort::Options{.procs = 1});
}

TEST(Blocking, OneProcStillRunsOthersDuringACall) {
  gort::run(
      [] {
        std::atomic<bool> call_done{false};
        std::atomic<bool> other_ran_during{false};
        gort::WaitGroup wg;
        wg.add(2);
        gort::go([&] {
          gort::blocking([] { std::this_thread::sleep_for(200ms); });
          call_done = true;
          wg.done();
        });
        gort::go([&] {
          gort::sleep(20ms);
          other_ran_during = !call_done.load();
          wg.done();
        });
        wg.wait();
        EXPECT_TRUE(other_ran_during.load());
      },
      gort::Options{.procs = 1});
}

}  // namespace

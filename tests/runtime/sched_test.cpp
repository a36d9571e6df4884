// Scheduler behaviour: yielding, work spreading and stealing, runnext fairness, idle Ms
// sleeping, counters, and thread locking.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "gort/gort.hpp"
#include "test_util.hpp"

namespace {
int tid() {
  return static_cast<int>(syscall(SYS_gettid));
}

double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
}  // namespace

class SchedProcs : public ::testing::TestWithParam<int> {};

// The same conformance checks under 1, 2 and 8 Ps.
TEST_P(SchedProcs, YieldInterleavesGoroutines) {
  gort::run(
      [] {
        constexpr int kRounds = 1000;
        std::atomic<int> a{0}, b{0};
        std::atomic<int> max_gap{0};
        gort::WaitGroup wg;
        wg.add(2);
        auto body = [&](std::atomic<int>& mine, std::atomic<int>& other) {
          for (int i = 0; i < kRounds; ++i) {
            mine.fetch_add(1);
            int gap = mine.load() - other.load();
            int cur = max_gap.load();
            while (gap > cur && !max_gap.compare_exchange_weak(cur, gap)) {
            }
            gort::yield();
          }
          wg.done();
        };
        gort::go(body, std::ref(a), std::ref(b));
        gort::go(body, std::ref(b), std::ref(a));
        wg.wait();
        EXPECT_EQ(a.load(), kRounds);
        EXPECT_EQ(b.load(), kRounds);
        if (gort::gomaxprocs() == 1) {
          EXPECT_LE(max_gap.load(), 2) << "strict alternation on one P";
        }
      },
      gort::Options{.procs = GetParam()});
}

TEST_P(SchedProcs, ManyGoroutinesAllRun) {
  const int n = static_cast<int>(gort::test::scaled(20000));
  std::atomic<int> ran{0};
  gort::run(
      [&] {
        gort::WaitGroup wg;
        for (int i = 0; i < n; ++i) {
          wg.add(1);
          gort::go([&] {
            ran.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      gort::Options{.procs = GetParam()});
  EXPECT_EQ(ran.load(), n);
}

// Parks that switch straight to the goroutine the parker just readied (direct park: the
// commit step runs on the goroutine switched to). Race mode turns direct switches off, so
// this test runs without it, for TSan's sake too. Hand-offs through channels, select, a
// Mutex and a WaitGroup, plus a goroutine locked to its thread, which a direct park must
// never switch to (it needs its own M).
TEST_P(SchedProcs, DirectParkHandOffsStayCorrect) {
  const long n = static_cast<long>(gort::test::scaled(100'000));
  gort::run(
      [&] {
        auto a = gort::make_chan<long>(), b = gort::make_chan<long>(), c = gort::make_chan<long>();
        gort::Mutex mu;
        long shared = 0;
        gort::WaitGroup done;
        done.add(3);
        gort::go([&, a, b] {  // echo a -> b
          for (long v : a) {
            mu.lock();
            ++shared;
            mu.unlock();
            b.send(v + 1);
          }
          done.done();
        });
        gort::go([&, c] {  // locked to its thread, fed through select
          gort::lock_os_thread();
          long sum = 0;
          for (;;) {
            std::optional<long> got;
            bool closed = false;
            gort::select(gort::on_recv(c, [&](std::optional<long> v) {
              if (v)
                got = v;
              else
                closed = true;
            }));
            if (closed) break;
            sum += *got;
            gort::WaitGroup inner;  // park, readied by a fresh goroutine
            inner.add(1);
            gort::go([&] { inner.done(); });
            inner.wait();
          }
          gort::unlock_os_thread();
          EXPECT_EQ(sum, n / 10 * (n / 10 - 1) / 2);
          done.done();
        });
        gort::go([&] {  // many goroutines parking on one WaitGroup hand-off chain
          for (long i = 0; i < n / 10; ++i) {
            gort::WaitGroup w;
            w.add(1);
            gort::go([&] { w.done(); });
            w.wait();
          }
          done.done();
        });
        for (long i = 0; i < n; ++i) {
          a.send(i);
          ASSERT_EQ(b.recv(), i + 1);
          if (i < n / 10) c.send(i);
        }
        a.close();
        c.close();
        done.wait();
        EXPECT_EQ(shared, n);
      },
      gort::Options{.procs = GetParam(), .race_randomize = false});
}

INSTANTIATE_TEST_SUITE_P(Procs, SchedProcs, ::testing::Values(1, 2, 8));

TEST(Sched, WorkSpreadsToTheOtherP) {
  // One goroutine spawns all the work on P0; the other P must pick some of it up (by
  // stealing or from the global queue) and run it on another thread.
  std::mutex mu;
  std::set<int> worker_threads;
  int main_thread = 0;
  gort::SchedStats stats;
  gort::run(
      [&] {
        main_thread = tid();
        gort::WaitGroup wg;
        for (int i = 0; i < 2000; ++i) {
          wg.add(1);
          gort::go([&] {
            volatile double x = 0;
            for (int k = 0; k < 20000; ++k) x = x + k;  // ~10 us of work
            {
              std::lock_guard<std::mutex> l(mu);
              worker_threads.insert(tid());
            }
            wg.done();
          });
        }
        wg.wait();
        stats = gort::sched_stats();
      },
      gort::Options{.procs = 2});
  worker_threads.erase(main_thread);
  EXPECT_GE(worker_threads.size(), 1u) << "no goroutine ran off the spawning thread";
  EXPECT_GT(stats.steals + stats.global_queue_gets, 0u);
  ASSERT_EQ(stats.per_proc.size(), 2u);
  EXPECT_GT(stats.per_proc[0].switches, 0u);
  EXPECT_GT(stats.per_proc[1].switches, 0u);
  EXPECT_EQ(stats.goroutines_created, 2001u);
}

TEST(Sched, RunnextDoesNotStarveTheQueue) {
  // Two goroutines ready each other through runnext (each parks on a WaitGroup the other
  // releases). Main, queued behind them on the only P, must still get to run long before
  // they finish.
  constexpr int kIterations = 1'000'000;
  int pair_progress_when_main_ran = -1;
  gort::run(
      [&] {
        gort::WaitGroup a, b, done;
        std::atomic<int> iter{0};
        a.add(1);
        b.add(1);
        done.add(2);
        gort::go([&] {
          for (int i = 0; i < kIterations; ++i) {
            a.wait();
            a.add(1);
            iter.store(i, std::memory_order_relaxed);
            b.done();
          }
          done.done();
        });
        gort::go([&] {
          for (int i = 0; i < kIterations; ++i) {
            a.done();
            b.wait();
            b.add(1);
          }
          done.done();
        });
        gort::yield();  // to the tail of the queue, behind the pair
        pair_progress_when_main_ran = iter.load(std::memory_order_relaxed);
        done.wait();
      },
      gort::Options{.procs = 1});
  EXPECT_GE(pair_progress_when_main_ran, 0);
  EXPECT_LT(pair_progress_when_main_ran, 10000) << "main waited behind the runnext pair";
}

TEST(Sched, IdleRuntimeUsesNoCpu) {
  // Main blocks on a WaitGroup that a plain thread releases 300 ms later: meanwhile every
  // M must sleep, not spin.
  double cpu = 0;
  gort::run(
      [&] {
        gort::WaitGroup wg;
        wg.add(1);
        const double before = process_cpu_seconds();
        std::thread t([&] {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          cpu = process_cpu_seconds() - before;
          wg.done();
        });
        wg.wait();
        t.join();
      },
      gort::Options{.procs = 2, .detect_deadlock = false});
  // One spinning thread would burn >= 0.3 s here; the bound leaves room for sanitizer
  // runtimes' own background threads (TSan's uses ~0.03 s).
  EXPECT_LT(cpu, 0.1) << "an idle runtime must not burn CPU (" << cpu << " s in 0.3 s)";
}

TEST(Sched, CountersAddUp) {
  gort::SchedStats st;
  gort::run(
      [&] {
        gort::WaitGroup wg;
        wg.add(10);
        for (int i = 0; i < 10; ++i)
          gort::go([&] {
            for (int k = 0; k < 10; ++k) gort::yield();
            wg.done();
          });
        wg.wait();
        st = gort::sched_stats();
      },
      gort::Options{.procs = 1});
  EXPECT_EQ(st.procs, 1);
  EXPECT_EQ(st.goroutines_created, 11u);
  EXPECT_EQ(st.yields, 100u);
  EXPECT_GE(st.switches, 111u);
  EXPECT_GE(st.parks, 1u) << "main parked in wait()";
  EXPECT_EQ(gort::sched_stats().procs, 0) << "all zero outside run";
}

TEST(Sched, LockOsThreadPinsTheGoroutine) {
  gort::run(
      [] {
        gort::WaitGroup wg;
        wg.add(1);
        std::atomic<int> locked_tid{0};
        std::atomic<bool> still_locked{false};
        std::atomic<bool> moved{false};
        gort::go([&] {
          gort::lock_os_thread();
          locked_tid = tid();
          still_locked = true;
          for (int i = 0; i < 200; ++i) {
            gort::yield();
            gort::WaitGroup inner;  // park and get readied by another goroutine
            inner.add(1);
            gort::go([&] { inner.done(); });
            inner.wait();
            if (tid() != locked_tid) moved = true;
          }
          still_locked = false;
          gort::unlock_os_thread();
          wg.done();
        });
        // Other goroutines keep running meanwhile, on threads other than the locked one.
        std::atomic<int> others_on_locked{0};
        gort::WaitGroup others;
        for (int i = 0; i < 200; ++i) {
          others.add(1);
          gort::go([&] {
            gort::yield();
            if (still_locked && tid() == locked_tid) others_on_locked.fetch_add(1);
            others.done();
          });
        }
        others.wait();
        wg.wait();
        EXPECT_FALSE(moved.load());
        EXPECT_EQ(others_on_locked.load(), 0);
      },
      gort::Options{.procs = 2});
}

TEST(Sched, GoroutineLocalIsPerGoroutine) {
  static gort::GoroutineLocal<int> slot;
  gort::run(
      [] {
        slot.get() = -1;
        gort::WaitGroup wg;
        std::atomic<int> bad{0};
        for (int i = 0; i < 100; ++i) {
          wg.add(1);
          gort::go([&, i] {
            if (slot.get() != 0) bad.fetch_add(1);  // fresh, default-constructed
            slot.get() = i;
            for (int k = 0; k < 5; ++k) gort::yield();
            if (slot.get() != i) bad.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(bad.load(), 0);
        EXPECT_EQ(slot.get(), -1);
      },
      gort::Options{.procs = 2});
  EXPECT_THROW(slot.get(), gort::Panic);
}

// Preemption: sysmon hands the P of a goroutine that runs for long without a scheduling
// point to another M (src/runtime/sysmon.cpp, "Preemption"); the hog carries on without a
// P and gets one back at its next scheduling point.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <string>

#include "gort/gort.hpp"
#include "os/os.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// Busy-waits without any runtime call (the clock is the vDSO) until `flag` is set or
// `limit` passes. Returns whether the flag was seen.
bool spin_until(const std::atomic<bool>& flag, std::chrono::nanoseconds limit) {
  const Clock::time_point deadline = Clock::now() + limit;
  while (!flag.load(std::memory_order_relaxed))
    if (Clock::now() >= deadline) return false;
  return true;
}

void spin_for(std::chrono::nanoseconds d) {
  const std::atomic<bool> never{false};
  spin_until(never, d);
}

bool preemption_supported() {
  return gort::os::process_barrier_init();
}

#define SKIP_WITHOUT_PREEMPTION()                                                      \
  if (!preemption_supported())                                                         \
  GTEST_SKIP() << "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is unavailable here, " \
                  "so the runtime does not preempt"

struct HogRace {
  bool hog_still_running = false;  // when the last other goroutine finished
  Clock::duration others_took{};
  long sum = 0;
  gort::SchedStats stats;
};

// One P: a goroutine spins for `spin` without a runtime call, queued ahead of `workers`
// goroutines that each yield a few times and send on a channel.
HogRace race_a_hog(int workers, std::chrono::nanoseconds spin, bool preempt) {
  HogRace r;
  gort::run(
      [&] {
        std::atomic<bool> stop{false}, hog_done{false};
        gort::WaitGroup hog;
        gort::Chan<int> done = gort::make_chan<int>(static_cast<std::size_t>(workers));
        const Clock::time_point t0 = Clock::now();
        hog.add(1);
        gort::go([&] {
          spin_until(stop, spin);
          hog_done.store(true);
          hog.done();
        });
        for (int i = 0; i < workers; ++i) {
          gort::go([&done, i] {
            for (int k = 0; k < 3; ++k) gort::yield();
            done.send(i);
          });
        }
        for (int i = 0; i < workers; ++i) r.sum += *done.recv();
        r.hog_still_running = !hog_done.load();
        r.others_took = Clock::now() - t0;
        stop.store(true);
        hog.wait();
        r.stats = gort::sched_stats();
      },
      gort::Options{.procs = 1, .preempt = preempt});
  return r;
}

// The test: with 1 P, a goroutine spinning for 2 s without any runtime call does
// not stop 1,000 other goroutines from finishing well before it.
TEST(Preempt, SpinningGoroutineDoesNotHoldUpOthers) {
  SKIP_WITHOUT_PREEMPTION();
  const int workers = static_cast<int>(gort::test::scaled(1000));
  const HogRace r = race_a_hog(workers, 2s, true);
  EXPECT_TRUE(r.hog_still_running) << "the other goroutines waited for the hog";
  EXPECT_EQ(r.sum, static_cast<long>(workers) * (workers - 1) / 2);
  // TSan makes spawning slow, so only the other builds also bound the time.
  if (!gort::test::kTsan) {
    EXPECT_LT(r.others_took, 1s);
  }
  EXPECT_TRUE(r.stats.preemption_enabled);
  EXPECT_GE(r.stats.preemptions, 1u);
}

// The control experiment: without preemption the same program waits for the hog.
TEST(Preempt, OffByOptionTheOthersWait) {
  const int workers = static_cast<int>(gort::test::scaled(1000));
  const HogRace r = race_a_hog(workers, 300ms, false);
  EXPECT_FALSE(r.hog_still_running);
  EXPECT_GE(r.others_took, 300ms);
  EXPECT_EQ(r.sum, static_cast<long>(workers) * (workers - 1) / 2);
  EXPECT_FALSE(r.stats.preemption_enabled);
  EXPECT_EQ(r.stats.preemptions, 0u);
}

// Twelve goroutines computing without a scheduling point on one P: sysmon preempts at most
// four at a time (4 x GOMAXPROCS), so no more than five of them run at once (one holding
// the P) and the runtime does not start a thread per hog.
TEST(Preempt, ThreadsForPreemptedGoroutinesAreBounded) {
  SKIP_WITHOUT_PREEMPTION();
  constexpr int kHogs = 12;
  std::atomic<int> running{0}, max_running{0};
  gort::SchedStats st;
  gort::run(
      [&] {
        gort::WaitGroup wg;
        wg.add(kHogs);
        for (int i = 0; i < kHogs; ++i) {
          gort::go([&] {
            const int now = running.fetch_add(1) + 1;
            int seen = max_running.load();
            while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
            }
            spin_for(200ms);
            running.fetch_sub(1);
            wg.done();
          });
        }
        wg.wait();
        st = gort::sched_stats();
      },
      gort::Options{.procs = 1});
  EXPECT_GE(max_running.load(), 2) << "no hog was preempted";
  EXPECT_LE(max_running.load(), 5);
  EXPECT_GE(st.preemptions, 4u);
  EXPECT_LE(st.threads, 7);
}

// ---- A preempted goroutine's next runtime operations ---------------------------------

// The first runtime operation of a goroutine whose P was taken: each enters the runtime
// through a different door (a section that does not switch and carries on without a P, a
// park or yield completed by g0 without a P, spawning, which gets a P back at once, ...).
enum class Op { kSend, kRecv, kSpawn, kSleep, kUnlock, kYield, kBlocking, kLockedYield, kExit };

const char* name_of(Op op) {
  static const char* const kNames[] = {"Send",  "Recv",     "Spawn",       "Sleep", "Unlock",
                                       "Yield", "Blocking", "LockedYield", "Exit"};
  return kNames[static_cast<int>(op)];
}
std::string op_name(const ::testing::TestParamInfo<Op>& info) {
  return name_of(info.param);
}
// For GoogleTest's (and CTest's) test listings.
[[maybe_unused]] void PrintTo(Op op, std::ostream* os) {
  *os << name_of(op);
}

class PreemptedThen : public ::testing::TestWithParam<Op> {};

// State shared by the hog and the goroutines around it.
struct Scene {
  std::atomic<bool> hog_started{false}, others_ran{false}, hog_waiting{false};
  gort::Mutex mu;
  gort::Chan<int> to_receiver = gort::make_chan<int>();  // unbuffered
  gort::Chan<int> to_hog = gort::make_chan<int>();
  gort::WaitGroup others, children;
  std::atomic<int> children_ran{0};
  int hog_tid = 0;
};

// Performs op on the hog (everything except kExit).
void do_op(Scene& sc, Op op) {
  switch (op) {
    case Op::kSend:
      sc.to_receiver.send(1);  // readies the receiver, or parks until it comes
      break;
    case Op::kRecv:
      sc.hog_waiting.store(true);
      EXPECT_EQ(sc.to_hog.recv().value_or(-1), 7);  // parks until the sender comes
      break;
    case Op::kSpawn:
      for (int i = 0; i < 10; ++i) {
        sc.children.add(1);
        gort::go([&sc] {
          sc.children_ran.fetch_add(1);
          sc.children.done();
        });
      }
      break;
    case Op::kSleep:
      gort::sleep(2ms);  // a timer armed without a P, then a park
      break;
    case Op::kUnlock:
      sc.mu.unlock();  // readies the goroutine waiting for the lock
      break;
    case Op::kYield:
      for (int i = 0; i < 3; ++i) gort::yield();
      break;
    case Op::kBlocking:
      EXPECT_EQ(gort::blocking([] { return 5; }), 5);
      break;
    case Op::kLockedYield:
      gort::yield();
      EXPECT_EQ(gort::os::thread_id(), sc.hog_tid) << "a locked goroutine stays on its thread";
      gort::unlock_os_thread();
      break;
    case Op::kExit:
      break;
  }
}

// The hog: takes the lock, spins until another goroutine ran (with one P, only possible
// once sysmon took the hog's P), then does `first` and every other operation.
void hog_body(Scene& sc, Op first) {
  if (first != Op::kExit) sc.mu.lock();
  if (first == Op::kLockedYield) {
    gort::lock_os_thread();
    sc.hog_tid = gort::os::thread_id();
  }
  sc.hog_started.store(true);
  EXPECT_TRUE(spin_until(sc.others_ran, 5s)) << "never preempted";
  spin_for(20ms);  // let the others block on what the hog will release
  if (first == Op::kExit) return;
  do_op(sc, first);
  for (Op op :
       {Op::kSend, Op::kRecv, Op::kSpawn, Op::kSleep, Op::kUnlock, Op::kYield, Op::kBlocking}) {
    if (op != first) do_op(sc, op);
  }
  sc.children.wait();
}

void spawn_others(Scene& sc, Op first) {
  sc.others.add(4);
  gort::go([&sc] {  // waits until the hog holds the only P, then runs only if preempted
    while (!sc.hog_started.load()) gort::yield();
    sc.others_ran.store(true);
    sc.others.done();
  });
  gort::go([&sc] {
    EXPECT_EQ(sc.to_receiver.recv().value_or(-1), 1);
    sc.others.done();
  });
  gort::go([&sc, first] {
    if (first != Op::kExit) {
      while (!sc.hog_started.load()) gort::yield();
    }
    sc.mu.lock();  // held by the hog: parks until it unlocks
    sc.mu.unlock();
    sc.others.done();
  });
  gort::go([&sc] {
    while (!sc.hog_waiting.load()) gort::sleep(1ms);
    gort::sleep(5ms);  // the hog parks in recv meanwhile
    sc.to_hog.send(7);
    sc.others.done();
  });
}

TEST_P(PreemptedThen, RuntimeStaysConsistent) {
  SKIP_WITHOUT_PREEMPTION();
  const Op first = GetParam();
  gort::run(
      [first] {
        Scene sc;
        gort::go([&sc, first] { hog_body(sc, first); });
        spawn_others(sc, first);
        if (first == Op::kExit) {  // the hog left its part to main
          sc.to_receiver.send(1);
          sc.hog_waiting.store(true);
          EXPECT_EQ(sc.to_hog.recv().value_or(-1), 7);
        }
        sc.others.wait();
        const Clock::time_point deadline = Clock::now() + 5s;
        while (gort::num_goroutine() > 1 && Clock::now() < deadline) gort::sleep(1ms);
        EXPECT_EQ(gort::num_goroutine(), 1) << "goroutines leaked or miscounted";
        if (first != Op::kExit) {
          EXPECT_EQ(sc.children_ran.load(), 10);
        }
        const gort::SchedStats st = gort::sched_stats();
        EXPECT_GE(st.preemptions, 1u);
        // Everything still works afterwards, on the one P.
        gort::Chan<int> c = gort::make_chan<int>();
        gort::go([c] { c.send(42); });
        EXPECT_EQ(c.recv().value_or(-1), 42);
        EXPECT_EQ(st.procs, 1);
      },
      gort::Options{.procs = 1});
}

INSTANTIATE_TEST_SUITE_P(Ops, PreemptedThen,
                         ::testing::Values(Op::kSend, Op::kRecv, Op::kSpawn, Op::kSleep,
                                           Op::kUnlock, Op::kYield, Op::kBlocking, Op::kLockedYield,
                                           Op::kExit),
                         op_name);

// ---- Stress -------------------------------------------------------------------------

// Two Ps, hogs that alternate 15 ms spins with bursts of runtime calls (so sysmon finds
// them sometimes in user code and sometimes inside the runtime), a goroutine spawning in
// a long loop (preempted between go statements), and ping-pong pairs, a mutex and timers
// in the meantime. Every count must come out exact.
TEST(Preempt, HogsAndWorkersOnTwoPs) {
  SKIP_WITHOUT_PREEMPTION();
  const int pairs = static_cast<int>(gort::test::scaled(200));
  const int rounds = 200;
  // A goroutine costs TSan milliseconds (its fiber): keep the go loop short there.
  const int spawned = gort::test::kTsan ? 100 : static_cast<int>(gort::test::scaled(100'000));
  constexpr int kHogs = 4;
  gort::run(
      [&] {
        std::atomic<bool> stop{false};
        gort::Mutex mu;
        long shared = 0;  // guarded by mu
        long expected = 0;
        std::atomic<long> hog_children{0}, spawner_children{0};
        gort::WaitGroup hogs, workers, children;
        gort::Chan<int> sink = gort::make_chan<int>(16);
        hogs.add(kHogs);
        for (int h = 0; h < kHogs; ++h) {
          gort::go([&] {
            long mine = 0;
            while (!stop.load()) {
              spin_for(15ms);
              mu.lock();
              ++shared;
              mu.unlock();
              ++mine;
              children.add(1);
              gort::go([&] {
                hog_children.fetch_add(1);
                children.done();
              });
              gort::select(gort::on_send(sink, 1, [] {}), gort::on_default([] {}));
              gort::yield();
            }
            mu.lock();
            expected += mine;
            mu.unlock();
            hogs.done();
          });
        }
        workers.add(1);
        gort::go([&] {  // a long go loop: preempted between (or inside) go statements
          for (int i = 0; i < spawned; ++i) {
            children.add(1);
            gort::go([&] {
              spawner_children.fetch_add(1);
              children.done();
            });
          }
          workers.done();
        });
        workers.add(2 * pairs);
        for (int i = 0; i < pairs; ++i) {
          gort::Chan<int> ping = gort::make_chan<int>(), pong = gort::make_chan<int>();
          gort::go([&, ping, pong] {
            for (int r = 0; r < rounds; ++r) {
              ping.send(r);
              EXPECT_EQ(pong.recv().value_or(-1), r);
              if (r % 50 == 0) gort::sleep(100us);
            }
            workers.done();
          });
          gort::go([&, ping, pong] {
            for (int r = 0; r < rounds; ++r) {
              const int v = ping.recv().value_or(-1);
              mu.lock();
              ++shared;
              mu.unlock();
              pong.send(v);
            }
            workers.done();
          });
        }
        gort::go([&] {  // drains what the hogs send
          while (!stop.load()) {
            gort::select(gort::on_recv(sink, [](std::optional<int>) {}),
                         gort::on_default([] { gort::sleep(1ms); }));
          }
        });
        workers.wait();
        stop.store(true);
        hogs.wait();
        children.wait();
        mu.lock();
        EXPECT_EQ(shared, expected + static_cast<long>(pairs) * rounds);
        mu.unlock();
        EXPECT_EQ(spawner_children.load(), spawned);
        EXPECT_GT(hog_children.load(), 0);
        EXPECT_GE(gort::sched_stats().preemptions, 1u);
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

}  // namespace

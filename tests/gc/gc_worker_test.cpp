// Mark work on the Ps (src/gc/worker.cpp): a P with nothing to run marks (idle mode),
// busy Ps mark between goroutines within a quarter of GOMAXPROCS (fractional mode), a P
// that marks still runs due timers promptly, and the heap stays intact throughout.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "gc_tree.hpp"
#include "gort/gc.hpp"
#include "gort/gort.hpp"
#include "gort/time.hpp"
#include "test_util.hpp"

namespace gc = gort::gc;

namespace {

struct Blob {
  std::uint64_t words[30] = {};
};

using gort::test::count;
using gort::test::tree;
using Node = gort::test::TreeNode;

// A live tree big enough that draining it is most of each mark phase.
constexpr int kDepth = gort::test::kTsan ? 14 : 17;

struct Delta {
  std::uint64_t cycles = 0, mark_ns = 0, background_ns = 0, fractional_ns = 0, idle_ns = 0;
};

Delta delta(const gc::Stats& a, const gc::Stats& b) {
  return {b.num_gc - a.num_gc, b.mark_ns - a.mark_ns,
          b.mark_background_cpu_ns - a.mark_background_cpu_ns,
          b.mark_fractional_ns - a.mark_fractional_ns, b.mark_idle_ns - a.mark_idle_ns};
}

// Allocates garbage until `cycles` more cycles have run (or 20 s passed).
void allocate_through_cycles(std::uint64_t cycles) {
  const std::uint64_t until_gc = gc::stats().num_gc + cycles;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (gc::stats().num_gc < until_gc && std::chrono::steady_clock::now() < deadline)
    for (int i = 0; i < 1000; ++i) gc::make<Blob>();
}

}  // namespace

// One allocating goroutine on two Ps: the other P has nothing to run, so it marks (Go's
// idle worker), and the collector thread only coordinates.
TEST(GcWorkers, AnIdlePMarks) {
  const int old = gc::set_percent(50);
  gc::Stats before, after;
  long nodes = 0;
  gort::run(
      [&] {
        gc::Ptr<Node> live = tree(kDepth);
        gc::collect();
        before = gc::stats();
        allocate_through_cycles(4);
        after = gc::stats();
        nodes = count(live.get());
      },
      gort::Options{.procs = 2});
  gc::set_percent(old);
  const Delta d = delta(before, after);
  ASSERT_GE(d.cycles, 4u);
  EXPECT_EQ(nodes, (1L << (kDepth + 1)) - 1);
  // The idle P did a large part of the marking; the rest is the collector's coordination
  // and root scanning, and its own marking whenever the woken M did not get a CPU for 2 ms
  // (on a loaded machine, about as much as the idle P's). With GODEBUG=gcworkers=0 the
  // idle time is 0.
  const std::uint64_t collector_ns = d.background_ns - d.fractional_ns;
  EXPECT_GT(d.idle_ns, collector_ns / 4) << d.cycles << " cycles: idle " << d.idle_ns / 1000
                                         << " us, collector " << collector_ns / 1000 << " us";
}

// Four goroutines that allocate and yield on two Ps: no P is idle, so the Ps mark between
// goroutines (fractional mode), and background marking keeps within a quarter of the Ps.
TEST(GcWorkers, BusyPsMarkBetweenGoroutinesWithinAQuarter) {
  const int old = gc::set_percent(50);
  gc::Stats before, after;
  long nodes = 0;
  constexpr int kProcs = 2;
  gort::run(
      [&] {
        gc::Ptr<Node> live = tree(kDepth);
        gc::collect();
        before = gc::stats();
        const std::uint64_t until_gc = before.num_gc + 4;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        gort::WaitGroup wg;
        for (int g = 0; g < 2 * kProcs; ++g) {
          wg.add(1);
          gort::go([&] {
            while (gc::stats().num_gc < until_gc && std::chrono::steady_clock::now() < deadline) {
              for (int i = 0; i < 100; ++i) gc::make<Blob>();
              gort::yield();
            }
            wg.done();
          });
        }
        wg.wait();
        after = gc::stats();
        nodes = count(live.get());
      },
      gort::Options{.procs = kProcs});
  gc::set_percent(old);
  const Delta d = delta(before, after);
  ASSERT_GE(d.cycles, 4u);
  EXPECT_EQ(nodes, (1L << (kDepth + 1)) - 1);
  EXPECT_GT(d.fractional_ns, 0u);
  const double share =
      static_cast<double>(d.background_ns) / (static_cast<double>(d.mark_ns) * kProcs);
  EXPECT_LT(share, 0.4) << d.cycles << " cycles, " << d.mark_ns / 1000 << " us marking, "
                        << d.background_ns / 1000 << " us background, of it "
                        << d.fractional_ns / 1000 << " us on the Ps";
}

// A goroutine sleeping 1 ms at a time while forced cycles mark a large tree (phases of
// tens of milliseconds): the Ps have nothing else to run, so they mark in idle mode, and
// a P that marks still runs due timers within about a slice, so the sleeps end on time.
TEST(GcWorkers, TimersFireWhileThePsMark) {
  constexpr int kBigDepth = gort::test::kTsan ? 17 : 20;
  std::vector<std::int64_t> late_us;
  std::uint64_t cycles = 0, mark_ns = 0, idle_ns = 0;
  gort::run(
      [&] {
        gc::Ptr<Node> live = tree(kBigDepth);
        gc::collect();
        const gc::Stats before = gc::stats();
        std::atomic<bool> stop{false};
        gort::WaitGroup wg;
        wg.add(1);
        gort::go([&] {
          while (!stop.load()) {
            const auto t0 = std::chrono::steady_clock::now();
            gort::sleep(std::chrono::milliseconds(1));
            const auto late = std::chrono::steady_clock::now() - t0 - std::chrono::milliseconds(1);
            late_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(late).count());
          }
          wg.done();
        });
        for (int i = 0; i < 4; ++i) gc::collect();
        stop.store(true);
        wg.wait();
        const gc::Stats after = gc::stats();
        cycles = after.num_gc - before.num_gc;
        mark_ns = after.mark_ns - before.mark_ns;
        idle_ns = after.mark_idle_ns - before.mark_idle_ns;
        EXPECT_EQ(count(live.get()), (1L << (kBigDepth + 1)) - 1);
      },
      gort::Options{.procs = 2});
  ASSERT_GE(cycles, 4u);
  ASSERT_GT(idle_ns, 0u);
  ASSERT_GT(late_us.size(), 10u);
  std::sort(late_us.begin(), late_us.end());
  const std::int64_t median = late_us[late_us.size() / 2];
  EXPECT_LT(median, gort::test::kTsan ? 10000 : 3000)
      << late_us.size() << " sleeps during " << cycles << " cycles (" << mark_ns / 1000
      << " us marking, " << idle_ns / 1000 << " us of it idle-mode work on the Ps), median "
      << median << " us late, max " << late_us.back() << " us";
}

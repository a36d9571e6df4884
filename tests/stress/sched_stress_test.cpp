// Scheduler stress: the sizes the foundation issue names (scaled down under sanitizers).
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>

#include "gort/gort.hpp"
#include "test_util.hpp"

using gort::test::rss_kib;
using gort::test::scaled;

TEST(SchedStress, MillionGoroutinesSpawnedAndJoined) {
  // Each goroutine is a TSan fiber, about 5 ms to create and destroy on this VM: 20,000
  // (the scaled size) took 104 s there, 5,000 take a quarter of that.
  const std::size_t n = gort::test::kTsan ? 5000 : scaled(1'000'000);
  std::atomic<std::size_t> ran{0};
  gort::run(
      [&] {
        gort::WaitGroup wg;
        for (std::size_t i = 0; i < n; ++i) {
          wg.add(1);
          gort::go([&] {
            ran.fetch_add(1, std::memory_order_relaxed);
            wg.done();
          });
        }
        wg.wait();
      },
      gort::Options{.procs = 2});
  EXPECT_EQ(ran.load(), n);
}

TEST(SchedStress, MillionGoroutinesAliveAtOnce) {
  // TSan keeps a record per live goroutine (a fiber): 1M of them would take tens of GiB.
  const std::size_t n = gort::test::kTsan ? 2000 : scaled(1'000'000);
  long grown_kib = 0;
  gort::run(
      [&] {
        const long base = rss_kib();
        gort::WaitGroup started, release, finished;
        release.add(1);
        for (std::size_t i = 0; i < n; ++i) {
          started.add(1);
          finished.add(1);
          gort::go([&] {
            started.done();
            release.wait();
            finished.done();
          });
        }
        started.wait();
        EXPECT_EQ(static_cast<std::size_t>(gort::num_goroutine()), n + 1);
        grown_kib = rss_kib() - base;
        release.done();
        finished.wait();
      },
      gort::Options{.procs = 2});
  const double per_goroutine = static_cast<double>(grown_kib) * 1024 / static_cast<double>(n);
  RecordProperty("bytes_per_parked_goroutine", std::to_string(per_goroutine));
  if (gort::test::kScaleDiv == 1) {
    EXPECT_LT(per_goroutine, 6000) << "about one page each";
  }
}

TEST(SchedStress, HundredThousandGoroutinesYieldingInALoop) {
  const std::size_t n = scaled(100'000);
  std::atomic<std::size_t> yields{0};
  gort::run(
      [&] {
        gort::WaitGroup wg;
        for (std::size_t i = 0; i < n; ++i) {
          wg.add(1);
          gort::go([&] {
            for (int k = 0; k < 10; ++k) {
              gort::yield();
              yields.fetch_add(1, std::memory_order_relaxed);
            }
            wg.done();
          });
        }
        wg.wait();
      },
      gort::Options{.procs = 2});
  EXPECT_EQ(yields.load(), n * 10);
}

TEST(SchedStress, RunHundredTimesWithWork) {
  // Under TSan a goroutine's start costs ~5 ms (100 runs took 56 s there): 25 runs.
  const int runs = gort::test::kTsan ? 25 : 100;
  for (int i = 0; i < runs; ++i) {
    std::atomic<int> n{0};
    gort::run(
        [&] {
          gort::WaitGroup wg;
          for (int j = 0; j < 100; ++j) {
            wg.add(1);
            gort::go([&] {
              n.fetch_add(1);
              wg.done();
            });
          }
          wg.wait();
        },
        gort::Options{.procs = 2});
    ASSERT_EQ(n.load(), 100);
  }
}

TEST(SchedStress, NestedSpawnTree) {
  // Every goroutine spawns two children down to a depth: exercises stealing from Ps that
  // both produce and consume.
  std::atomic<int> leaves{0};
  const int depth = gort::test::kScaleDiv == 1 ? 16 : 11;
  gort::run(
      [&] {
        gort::WaitGroup wg;
        struct Tree {
          static void grow(int d, gort::WaitGroup& wg, std::atomic<int>& leaves) {
            if (d == 0) {
              leaves.fetch_add(1);
              wg.done();
              return;
            }
            wg.add(2);
            gort::go(grow, d - 1, std::ref(wg), std::ref(leaves));
            gort::go(grow, d - 1, std::ref(wg), std::ref(leaves));
            wg.done();
          }
        };
        wg.add(1);
        gort::go(Tree::grow, depth, std::ref(wg), std::ref(leaves));
        wg.wait();
      },
      gort::Options{.procs = 2});
  EXPECT_EQ(leaves.load(), 1 << depth);
}

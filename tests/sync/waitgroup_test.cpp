// gort::WaitGroup: Go's sync.WaitGroup semantics (sync/waitgroup_test.go ported in part).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "gort/gort.hpp"
#include "test_util.hpp"

// Ported from Go's sync/waitgroup_test.go, testWaitGroup: n waiters on wg1 released by n
// done()s on wg1, then all of them done() on wg2.
TEST(WaitGroup, GoTestWaitGroup) {
  gort::run(
      [] {
        for (int n : {1, 16}) {
          gort::WaitGroup wg1, wg2;
          wg1.add(n);
          wg2.add(n);
          std::atomic<int> exited{0};
          for (int i = 0; i != n; ++i) {
            gort::go([&] {
              wg1.done();
              wg2.wait();
              exited.fetch_add(1);
            });
          }
          wg1.wait();
          for (int i = 0; i != n; ++i) {
            EXPECT_EQ(exited.load(), 0) << "WaitGroup released group too soon";
            wg2.done();
          }
          while (exited.load() != n) gort::yield();
        }
      },
      gort::Options{.procs = 2});
}

TEST(WaitGroup, WaitOnZeroReturnsAtOnce) {
  gort::run([] {
    gort::WaitGroup wg;
    wg.wait();
    wg.add(0);
    wg.wait();
  });
}

TEST(WaitGroup, NegativeCounterPanics) {
  bool threw = false;
  gort::run([&] {
    gort::WaitGroup wg;
    wg.add(1);
    wg.done();
    try {
      wg.done();
    } catch (const gort::Panic& e) {
      threw = std::string(e.what()) == "sync: negative WaitGroup counter";
    }
  });
  EXPECT_TRUE(threw);
}

TEST(WaitGroup, ManyWaitersAllReleased) {
  gort::run(
      [] {
        gort::WaitGroup gate, finished;
        gate.add(1);
        const int n = static_cast<int>(gort::test::scaled(10000));
        finished.add(n);
        for (int i = 0; i < n; ++i)
          gort::go([&] {
            gate.wait();
            finished.done();
          });
        gort::yield();
        gate.done();
        finished.wait();
      },
      gort::Options{.procs = 2});
}

TEST(WaitGroup, WorksFromPlainThreads) {
  // Outside a goroutine, wait() blocks the OS thread (no P, no runtime needed).
  gort::WaitGroup wg;
  wg.add(2);
  std::atomic<int> n{0};
  std::thread a([&] {
    n.fetch_add(1);
    wg.done();
  });
  std::thread b([&] {
    n.fetch_add(1);
    wg.done();
  });
  wg.wait();
  EXPECT_EQ(n.load(), 2);
  a.join();
  b.join();
}

TEST(WaitGroup, PlainThreadReleasesGoroutines) {
  gort::run(
      [] {
        gort::WaitGroup wg;
        wg.add(1);
        std::thread t([&] { wg.done(); });
        wg.wait();
        t.join();
      },
      gort::Options{.procs = 2, .detect_deadlock = false});
}

TEST(WaitGroupStress, RepeatedRounds) {
  gort::run(
      [] {
        const int rounds = static_cast<int>(gort::test::scaled(2000));
        for (int r = 0; r < rounds; ++r) {
          gort::WaitGroup wg;
          std::atomic<int> sum{0};
          for (int i = 1; i <= 20; ++i) {
            wg.add(1);
            gort::go([&, i] {
              sum.fetch_add(i);
              wg.done();
            });
          }
          wg.wait();
          ASSERT_EQ(sum.load(), 210);
        }
      },
      gort::Options{.procs = 2});
}

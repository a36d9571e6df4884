// gort::run: lifecycle, options, results, misuse.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "gort/gort.hpp"
#include "test_util.hpp"

TEST(Run, ReturnsMainResult) {
  EXPECT_EQ(gort::run([] { return 7; }), 7);
  EXPECT_EQ(gort::run([] {}), 0);
}

TEST(Run, MainIsGoroutineOne) {
  std::uint64_t id = 0;
  gort::run([&] { id = gort::goid(); });
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(gort::goid(), 0u) << "outside run there is no goroutine";
}

TEST(Run, GoroutineIdsAreUniqueAndIncreasing) {
  gort::run(
      [] {
        constexpr int kN = 1000;
        std::vector<std::uint64_t> ids(kN);
        gort::WaitGroup wg;
        for (int i = 0; i < kN; ++i) {
          wg.add(1);
          gort::go([&, i] {
            ids[i] = gort::goid();
            wg.done();
          });
        }
        wg.wait();
        std::sort(ids.begin(), ids.end());
        EXPECT_GT(ids.front(), 1u);
        EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
      },
      gort::Options{.procs = 2});
}

TEST(Run, ProcsOption) {
  for (int procs : {1, 2, 3, 8}) {
    int seen = 0;
    gort::run([&] { seen = gort::gomaxprocs(); }, gort::Options{.procs = procs});
    EXPECT_EQ(seen, procs);
  }
  EXPECT_EQ(gort::gomaxprocs(), 0);
}

TEST(Run, GomaxprocsFromEnvironment) {
  ::setenv("GOMAXPROCS", "3", 1);
  int seen = 0;
  gort::run([&] { seen = gort::gomaxprocs(); });
  ::unsetenv("GOMAXPROCS");
  EXPECT_EQ(seen, 3);
  gort::run([&] { seen = gort::gomaxprocs(); });
  EXPECT_EQ(seen, static_cast<int>(std::thread::hardware_concurrency()));
}

TEST(Run, NegativeProcsIsAnError) {
  EXPECT_THROW(gort::run([] {}, gort::Options{.procs = -1}), gort::Panic);
}

TEST(Run, NestedRunIsAnError) {
  bool threw = false;
  gort::run([&] {
    try {
      gort::run([] {});
    } catch (const gort::Panic& e) {
      threw = std::string(e.what()).find("inside a goroutine") != std::string::npos;
    }
  });
  EXPECT_TRUE(threw);
}

TEST(Run, GoOutsideRunIsAnError) {
  EXPECT_THROW(gort::go([] {}), gort::Panic);
}

TEST(Run, CalledManyTimesInARow) {
  // Under TSan a goroutine's start costs ~5 ms (100 runs took 30 s there): 20 runs, which
  // still go through 1 to 4 Ps five times.
  const int runs = gort::test::kTsan ? 20 : 100;
  for (int i = 0; i < runs; ++i) {
    std::atomic<int> n{0};
    const int rc = gort::run(
        [&] {
          gort::WaitGroup wg;
          for (int j = 0; j < 50; ++j) {
            wg.add(1);
            gort::go([&] {
              n.fetch_add(1);
              gort::yield();
              wg.done();
            });
          }
          wg.wait();
          return i;
        },
        gort::Options{.procs = 1 + i % 4});
    ASSERT_EQ(rc, i);
    ASSERT_EQ(n.load(), 50);
  }
}

TEST(Run, AbandonsGoroutinesStillAliveWhenMainReturns) {
  std::atomic<bool> started{false};
  gort::run(
      [&] {
        gort::go([&] {
          started = true;
          gort::WaitGroup never;
          never.add(1);
          never.wait();  // blocks forever; main returns anyway
        });
        while (!started) gort::yield();
      },
      gort::Options{.procs = 2, .detect_deadlock = false});
  EXPECT_TRUE(started);
  EXPECT_EQ(gort::run([] { return gort::num_goroutine(); }), 1) << "a fresh runtime";
}

TEST(Run, AbandonedWaitersDoNotHauntTheNextRun) {
  // Regression: waiter records of goroutines abandoned in one run live on stacks that are
  // unmapped afterwards; the next run must not find them in the semaphore table.
  static gort::WaitGroup forever;  // same address in both runs
  forever.add(1);
  gort::run(
      [] {
        for (int i = 0; i < 100; ++i) gort::go([] { forever.wait(); });
        gort::yield();
      },
      gort::Options{.procs = 2, .detect_deadlock = false});
  gort::run(
      [] {
        for (int round = 0; round < 100; ++round) {
          gort::WaitGroup wg;
          wg.add(8);
          for (int i = 0; i < 8; ++i) gort::go([&] { wg.done(); });
          wg.wait();
        }
      },
      gort::Options{.procs = 2});
  std::thread t([] { forever.done(); });  // no goroutine waiter left to wake
  t.join();
}

TEST(Run, GoArgumentsAreCopiedOrMoved) {
  gort::run([] {
    auto p = std::make_unique<int>(41);
    int got = 0;
    gort::WaitGroup wg;
    wg.add(1);
    gort::go(
        [&](std::unique_ptr<int> q, int plus) {
          got = *q + plus;
          wg.done();
        },
        std::move(p), 1);
    wg.wait();
    EXPECT_EQ(got, 42);
  });
}

TEST(Run, LargeClosuresSpillToTheHeap) {
  gort::run([] {
    std::array<char, 4096> big{};
    big[4095] = 'x';
    char got = 0;
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([big, &got, &wg] {
      got = big[4095];
      wg.done();
    });
    wg.wait();
    EXPECT_EQ(got, 'x');
  });
}

TEST(Run, ClosureIsDestroyedOnTheGoroutine) {
  struct Probe {
    std::atomic<std::uint64_t>* where;
    explicit Probe(std::atomic<std::uint64_t>* w) : where(w) {}
    Probe(Probe&& o) noexcept : where(std::exchange(o.where, nullptr)) {}
    ~Probe() {
      if (where != nullptr) *where = gort::goid();
    }
  };
  std::atomic<std::uint64_t> destroyed_on{0};
  std::uint64_t ran_on = 0;
  gort::run([&] {
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([p = Probe(&destroyed_on), &ran_on, &wg] {
      ran_on = gort::goid();
      wg.done();
    });
    wg.wait();
    while (destroyed_on == 0) gort::yield();
  });
  EXPECT_EQ(destroyed_on.load(), ran_on);
}

TEST(Run, NumGoroutineCountsLiveOnes) {
  gort::run(
      [] {
        EXPECT_EQ(gort::num_goroutine(), 1);
        gort::WaitGroup started, release;
        release.add(1);
        for (int i = 0; i < 10; ++i) {
          started.add(1);
          gort::go([&] {
            started.done();
            release.wait();
          });
        }
        started.wait();
        EXPECT_EQ(gort::num_goroutine(), 11);
        release.done();
        while (gort::num_goroutine() > 1) gort::yield();
        EXPECT_EQ(gort::num_goroutine(), 1);
      },
      gort::Options{.procs = 2});
}

TEST(Run, GoFromAPlainThreadDuringRun) {
  std::atomic<int> ran{0};
  gort::run(
      [&] {
        gort::WaitGroup wg;
        wg.add(100);
        std::thread t([&] {
          for (int i = 0; i < 100; ++i)
            gort::go([&] {
              ran.fetch_add(1);
              wg.done();
            });
        });
        wg.wait();
        t.join();
      },
      // The runtime cannot know that a plain thread will wake main later.
      gort::Options{.procs = 2, .detect_deadlock = false});
  EXPECT_EQ(ran.load(), 100);
}

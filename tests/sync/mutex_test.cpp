// Mutex, RWMutex, Once, Cond: Go's sync semantics (parts of sync/mutex_test.go,
// rwmutex_test.go, once_test.go and cond_test.go ported).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>

#include "gort/gort.hpp"
#include "test_util.hpp"

namespace {
using Clock = std::chrono::steady_clock;

// A busy wait that keeps the goroutine on its P (time.Sleep arrives with timers).
void spin_for(std::chrono::microseconds d) {
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}
}  // namespace

class SyncProcs : public ::testing::TestWithParam<int> {};

TEST_P(SyncProcs, MutexExcludes) {
  long counter = 0;  // deliberately not atomic: the mutex must protect it
  const int per = static_cast<int>(gort::test::scaled(20000));
  gort::run(
      [&] {
        gort::Mutex mu;
        gort::WaitGroup wg;
        for (int g = 0; g < 10; ++g) {
          wg.add(1);
          gort::go([&] {
            for (int i = 0; i < per; ++i) {
              std::scoped_lock l(mu);
              ++counter;
              if (i % 100 == 0) gort::yield();  // sometimes switch while holding it
            }
            wg.done();
          });
        }
        wg.wait();
      },
      gort::Options{.procs = GetParam()});
  EXPECT_EQ(counter, 10L * per);
}

TEST_P(SyncProcs, RWMutexReadersShareWritersExclude) {
  gort::run(
      [] {
        gort::RWMutex rw;
        std::atomic<int> readers{0}, bad{0};
        long value = 0;
        gort::WaitGroup wg;
        for (int g = 0; g < 8; ++g) {
          wg.add(1);
          gort::go([&, g] {
            for (int i = 0; i < 2000; ++i) {
              if ((i + g) % 10 == 0) {
                std::unique_lock l(rw);
                if (readers.load() != 0) bad++;
                ++value;
              } else {
                std::shared_lock l(rw);
                ++readers;
                gort::yield();
                --readers;
              }
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(bad.load(), 0) << "a writer ran alongside readers";
        EXPECT_EQ(value, 8 * 200);
        // Sharing, deterministically: while one goroutine holds a read lock, another
        // must get one too, and a writer must not.
        rw.lock_shared();
        std::atomic<int> second_reader{-1}, writer{-1};
        gort::WaitGroup probe;
        probe.add(1);
        gort::go([&] {
          second_reader = rw.try_lock_shared() ? 1 : 0;
          if (second_reader == 1) rw.unlock_shared();
          writer = rw.try_lock() ? 1 : 0;
          probe.done();
        });
        probe.wait();
        rw.unlock_shared();
        EXPECT_EQ(second_reader.load(), 1);
        EXPECT_EQ(writer.load(), 0);
      },
      gort::Options{.procs = GetParam()});
}

INSTANTIATE_TEST_SUITE_P(Procs, SyncProcs, ::testing::Values(1, 2, 8));

TEST(Mutex, TryLock) {
  gort::run([] {
    gort::Mutex mu;
    EXPECT_TRUE(mu.try_lock());
    EXPECT_FALSE(mu.try_lock());
    mu.unlock();
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
    gort::Mutex a, b;
    std::scoped_lock both(a, b);  // std::lock's deadlock avoidance over gort Lockables
    EXPECT_FALSE(a.try_lock());
  });
}

// Go's TestMutexFairness: a goroutine that re-locks in a loop must not starve another.
// With starvation mode, every acquisition by the second goroutine comes within a few
// hold times (the bound below is generous for a noisy, sanitised machine).
TEST(Mutex, Fairness) {
  Clock::duration worst{};
  gort::run(
      [&] {
        gort::Mutex mu;
        std::atomic<bool> stop{false};
        gort::WaitGroup wg;
        wg.add(2);
        gort::go([&] {
          while (!stop.load()) {
            mu.lock();
            spin_for(std::chrono::microseconds(100));
            mu.unlock();
            gort::yield();  // a scheduling point (preemption would wait 10 ms)
          }
          wg.done();
        });
        gort::go([&] {
          for (int i = 0; i < 10; ++i) {
            spin_for(std::chrono::microseconds(100));
            const auto t0 = Clock::now();
            mu.lock();
            worst = std::max(worst, Clock::now() - t0);
            mu.unlock();
          }
          stop = true;
          wg.done();
        });
        wg.wait();
      },
      gort::Options{.procs = 2});
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(worst).count(), 500);
}

TEST(Mutex, WorksFromPlainThreads) {
  gort::Mutex mu;
  long counter = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::scoped_lock l(mu);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 80000);
}

TEST(RWMutex, WriterIsNotStarvedByReaders) {
  // Readers keep the lock read-held in overlapping turns; a writer must still get in, and
  // readers arriving after it must wait for it (Go's writer preference).
  gort::run(
      [] {
        gort::RWMutex rw;
        std::atomic<bool> stop{false}, writer_done{false};
        gort::WaitGroup wg;
        for (int r = 0; r < 4; ++r) {
          wg.add(1);
          gort::go([&] {
            while (!stop) {
              {
                std::shared_lock l(rw);
                spin_for(std::chrono::microseconds(50));
              }
              // A scheduling point: without one, busy readers would keep both Ps until
              // sysmon preempts them, 10 ms at a time.
              gort::yield();
            }
            wg.done();
          });
        }
        wg.add(1);
        gort::go([&] {
          for (int i = 0; i < 10; ++i) {
            std::unique_lock l(rw);
          }
          writer_done = true;
          stop = true;
          wg.done();
        });
        wg.wait();
        EXPECT_TRUE(writer_done.load());
      },
      gort::Options{.procs = 2});
}

TEST(RWMutex, TryLocks) {
  gort::run([] {
    gort::RWMutex rw;
    EXPECT_TRUE(rw.try_lock_shared());
    EXPECT_TRUE(rw.try_lock_shared());
    EXPECT_FALSE(rw.try_lock());
    rw.unlock_shared();
    rw.unlock_shared();
    EXPECT_TRUE(rw.try_lock());
    EXPECT_FALSE(rw.try_lock_shared());
    rw.unlock();
  });
}

TEST(Once, RunsExactlyOnceAndOthersWait) {
  gort::run(
      [] {
        gort::Once once;
        std::atomic<int> calls{0};
        std::atomic<int> saw_done{0};
        gort::WaitGroup wg;
        for (int i = 0; i < 100; ++i) {
          wg.add(1);
          gort::go([&] {
            once.call([&] {
              for (int k = 0; k < 10; ++k) gort::yield();
              calls++;
            });
            if (calls.load() == 1) saw_done++;  // call() returned after f finished
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(calls.load(), 1);
        EXPECT_EQ(saw_done.load(), 100);
      },
      gort::Options{.procs = 2});
}

TEST(Once, AThrowingFunctionStillCountsAsDone) {
  gort::run([] {
    gort::Once once;
    EXPECT_THROW(once.call([] { throw std::runtime_error("boom"); }), std::runtime_error);
    bool ran = false;
    once.call([&] { ran = true; });
    EXPECT_FALSE(ran);
  });
}

TEST(Cond, SignalWakesOneBroadcastWakesAll) {
  gort::run(
      [] {
        gort::Mutex mu;
        gort::Cond cond(mu);
        int ready = 0, woken = 0, generation = 0;
        gort::WaitGroup wg;
        for (int i = 0; i < 5; ++i) {
          wg.add(1);
          gort::go([&] {
            std::unique_lock l(mu);
            const int my_gen = generation;
            ++ready;
            while (generation == my_gen) cond.wait();
            ++woken;
            // Unlock before done(): once the last done() returns, wait() returns and the
            // test's frame, which holds `mu`, may be gone (Go's defer order does the same).
            l.unlock();
            wg.done();
          });
        }
        // Wait until all five are waiting.
        for (;;) {
          std::unique_lock l(mu);
          if (ready == 5) break;
          l.unlock();
          gort::yield();
        }
        {
          std::unique_lock l(mu);
          ++generation;
          cond.signal();
        }
        for (int i = 0; i < 100; ++i) gort::yield();
        {
          std::unique_lock l(mu);
          EXPECT_GE(woken, 0);
          EXPECT_LE(woken, 1) << "signal wakes at most one waiter that rechecks";
          cond.broadcast();
        }
        wg.wait();
        EXPECT_EQ(woken, 5);
      },
      gort::Options{.procs = 2});
}

TEST(Cond, ProducerConsumerQueue) {
  gort::run(
      [] {
        gort::Mutex mu;
        gort::Cond not_empty(mu), not_full(mu);
        std::vector<int> q;
        long sum = 0;
        gort::WaitGroup wg;
        wg.add(2);
        gort::go([&] {
          for (int i = 1; i <= 10000; ++i) {
            std::unique_lock l(mu);
            while (q.size() >= 8) not_full.wait();
            q.push_back(i);
            not_empty.signal();
          }
          wg.done();
        });
        gort::go([&] {
          for (int n = 0; n < 10000; ++n) {
            std::unique_lock l(mu);
            while (q.empty()) not_empty.wait();
            sum += q.front();
            q.erase(q.begin());
            not_full.signal();
          }
          wg.done();
        });
        wg.wait();
        EXPECT_EQ(sum, 50005000L);
      },
      gort::Options{.procs = 2});
}

TEST(SyncDeathTest, Misuse) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(gort::run([] { gort::Mutex().unlock(); }), ::testing::ExitedWithCode(2),
              "fatal error: sync: unlock of unlocked mutex");
  EXPECT_EXIT(gort::run([] { gort::RWMutex().unlock_shared(); }), ::testing::ExitedWithCode(2),
              "fatal error: sync: RUnlock of unlocked RWMutex");
  EXPECT_EXIT(gort::run([] {
                gort::Mutex mu;
                mu.lock();
                mu.lock();
              }),
              ::testing::ExitedWithCode(2),
              "all goroutines are asleep - deadlock!\n\ngoroutine 1 \\[sync.Mutex.Lock\\]");
}

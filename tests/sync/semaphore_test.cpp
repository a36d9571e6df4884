// Weighted semaphore (x/sync/semaphore): semantics, FIFO fairness, cancellation, and a
// rapidcheck stress property that the held weight never exceeds the size.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <atomic>

#include "gort/gort.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

TEST(Semaphore, AcquireAndRelease) {
  gort::run([] {
    gort::Semaphore sem(3);
    EXPECT_FALSE(sem.acquire(gort::background(), 2));
    EXPECT_TRUE(sem.try_acquire(1));
    EXPECT_FALSE(sem.try_acquire(1));  // full
    sem.release(3);
    EXPECT_TRUE(sem.try_acquire(3));
    sem.release(3);
  });
}

TEST(Semaphore, ReleasingMoreThanHeldIsAPanic) {
  gort::run([] {
    gort::Semaphore sem(2);
    sem.try_acquire(1);
    EXPECT_THROW(sem.release(2), gort::Panic);
    EXPECT_THROW(gort::Semaphore(-1), gort::Panic);
    sem.release(1);
  });
}

TEST(Semaphore, BlocksUntilReleased) {
  gort::run([] {
    gort::Semaphore sem(1);
    sem.acquire(gort::background());
    std::atomic<bool> got{false};
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([&] {
      EXPECT_FALSE(sem.acquire(gort::background()));
      got = true;
      sem.release();
      wg.done();
    });
    gort::sleep(10ms);
    EXPECT_FALSE(got.load());
    sem.release();
    wg.wait();
    EXPECT_TRUE(got.load());
  });
}

// A large request at the head is not overtaken by later small ones (no barging).
TEST(Semaphore, FifoLargeRequestIsNotStarved) {
  gort::run([] {
    gort::Semaphore sem(10);
    sem.acquire(gort::background(), 10);
    gort::Chan<char> order = gort::make_chan<char>(2);
    gort::WaitGroup wg;
    wg.add(2);
    gort::go([&] {
      sem.acquire(gort::background(), 10);
      order.send('A');
      sem.release(10);
      wg.done();
    });
    gort::sleep(5ms);  // A queues first
    gort::go([&] {
      sem.acquire(gort::background(), 1);
      order.send('B');
      sem.release(1);
      wg.done();
    });
    gort::sleep(5ms);
    EXPECT_FALSE(sem.try_acquire(1));  // waiters queued: no barging either
    sem.release(1);                    // 1 free: fits B, but A is at the head
    gort::sleep(10ms);
    EXPECT_EQ(order.len(), 0u);
    sem.release(9);
    wg.wait();
    EXPECT_EQ(order.recv(), 'A');
    EXPECT_EQ(order.recv(), 'B');
  });
}

TEST(Semaphore, CancelledHeadLetsTheNextWaiterIn) {
  gort::run([] {
    gort::Semaphore sem(2);
    sem.acquire(gort::background(), 2);
    auto [ctx, cancel] = gort::with_cancel(gort::background());
    gort::WaitGroup wg;
    wg.add(2);
    std::error_code head_err;
    gort::go([&, c = ctx] {
      head_err = sem.acquire(c, 2);
      wg.done();
    });
    gort::sleep(5ms);
    std::atomic<bool> small_got{false};
    gort::go([&] {
      sem.acquire(gort::background(), 1);
      small_got = true;
      wg.done();
    });
    gort::sleep(5ms);
    sem.release(1);  // 1 free; the head wants 2
    gort::sleep(5ms);
    EXPECT_FALSE(small_got.load());
    cancel();  // the head gives up: the small one fits now
    wg.wait();
    EXPECT_EQ(head_err, gort::ContextError::canceled);
    EXPECT_TRUE(small_got.load());
    sem.release(2);  // 1 held by us + 1 by the small waiter
    EXPECT_TRUE(sem.try_acquire(2));
  });
}

TEST(Semaphore, DoneContextFailsEvenWhenFree) {
  gort::run([] {
    gort::Semaphore sem(1);
    auto [ctx, cancel] = gort::with_cancel(gort::background());
    cancel();
    EXPECT_EQ(sem.acquire(ctx), gort::ContextError::canceled);
    EXPECT_TRUE(sem.try_acquire(1));  // nothing was taken
  });
}

TEST(Semaphore, RequestLargerThanSizeWaitsForTheContext) {
  gort::run([] {
    gort::Semaphore sem(1);
    const auto t0 = gort::now();
    auto [ctx, cancel] = gort::with_timeout(gort::background(), 10ms);
    EXPECT_EQ(sem.acquire(ctx, 2), gort::ContextError::deadline_exceeded);
    EXPECT_GE(gort::now() - t0, 10ms);
    EXPECT_TRUE(sem.try_acquire(1));
  });
}

// Random workers with random weights and random timeouts: the weight held at once never
// exceeds the size, every successful acquire is released, and the semaphore is whole
// at the end.
RC_GTEST_PROP(Semaphore, HeldWeightNeverExceedsSize, ()) {
  const auto size = *rc::gen::inRange<std::int64_t>(1, 8);
  const auto workers = *rc::gen::inRange(1, 12);
  const auto weights = *rc::gen::container<std::vector<std::int64_t>>(
      static_cast<std::size_t>(workers), rc::gen::inRange<std::int64_t>(1, 9));
  const auto timeouts_us = *rc::gen::container<std::vector<int>>(static_cast<std::size_t>(workers),
                                                                 rc::gen::inRange(0, 300));
  std::atomic<std::int64_t> held{0}, max_held{0};
  std::atomic<int> ok{0}, failed{0};
  bool whole = false;
  gort::run(
      [&] {
        gort::Semaphore sem(size);
        gort::WaitGroup wg;
        wg.add(workers);
        for (int w = 0; w < workers; ++w) {
          gort::go([&, w] {
            const auto i = static_cast<std::size_t>(w);
            for (int round = 0; round < 5; ++round) {
              auto [ctx, cancel] = gort::with_timeout(
                  gort::background(), std::chrono::microseconds(timeouts_us[i] + round * 50));
              if (sem.acquire(ctx, weights[i])) {
                failed.fetch_add(1);
                continue;
              }
              const std::int64_t now = held.fetch_add(weights[i]) + weights[i];
              std::int64_t m = max_held.load();
              while (now > m && !max_held.compare_exchange_weak(m, now)) {
              }
              gort::yield();
              held.fetch_sub(weights[i]);
              sem.release(weights[i]);
              ok.fetch_add(1);
            }
            wg.done();
          });
        }
        wg.wait();
        whole = sem.try_acquire(size);
        if (whole) sem.release(size);
      },
      gort::Options{.procs = 2});
  RC_ASSERT(max_held.load() <= size);
  RC_ASSERT(ok.load() + failed.load() == workers * 5);
  RC_ASSERT(whole);
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (weights[i] > size) RC_ASSERT(failed.load() >= 5);  // can never be satisfied
}

}  // namespace

// StealRing: Go's per-P run queue shape. Unit tests, a property test against a deque
// model, and a multi-thread stress test where every element must be consumed exactly once.
#include "lockfree/steal_ring.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <atomic>
#include <deque>
#include <thread>
#include <vector>

#include "test_util.hpp"

using gort::lockfree::StealRing;

namespace {
using Ring = StealRing<std::uintptr_t, 8>;
}

TEST(StealRing, PushPopIsFifo) {
  Ring r;
  for (std::uintptr_t i = 1; i <= 8; ++i) ASSERT_TRUE(r.push(i));
  EXPECT_FALSE(r.push(9)) << "a full ring must refuse";
  std::uintptr_t v = 0;
  for (std::uintptr_t i = 1; i <= 8; ++i) {
    ASSERT_TRUE(r.pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(r.pop(v));
}

TEST(StealRing, GrabTakesOlderHalfRoundedUp) {
  Ring r;
  for (std::uintptr_t i = 1; i <= 5; ++i) r.push(i);
  std::uintptr_t out[4];
  ASSERT_EQ(r.grab(out), 3u);
  EXPECT_EQ(out[0], 1u);
  EXPECT_EQ(out[2], 3u);
  EXPECT_EQ(r.size(), 2u);
  std::uintptr_t v;
  ASSERT_TRUE(r.pop(v));
  EXPECT_EQ(v, 4u);
}

TEST(StealRing, PushBatchStopsWhenFull) {
  Ring r;
  std::uintptr_t batch[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(r.push_batch(batch, 10), 8u);
  EXPECT_EQ(r.size(), 8u);
}

TEST(StealRing, WrapsAroundManyTimes) {
  Ring r;
  std::uintptr_t v;
  for (std::uintptr_t i = 0; i < 100000; ++i) {
    ASSERT_TRUE(r.push(i));
    ASSERT_TRUE(r.pop(v));
    ASSERT_EQ(v, i);
  }
}

// Property: any sequence of push / pop / grab / push_batch on one thread behaves like a
// bounded deque.
RC_GTEST_PROP(StealRingProperty, MatchesDequeModel, ()) {
  StealRing<std::uintptr_t, 16> ring;
  std::deque<std::uintptr_t> model;
  std::uintptr_t next = 1;
  const auto ops = *rc::gen::container<std::vector<int>>(rc::gen::inRange(0, 4));
  for (int op : ops) {
    switch (op) {
      case 0: {
        const bool ok = ring.push(next);
        RC_ASSERT(ok == (model.size() < 16));
        if (ok) model.push_back(next);
        ++next;
        break;
      }
      case 1: {
        std::uintptr_t v = 0;
        const bool ok = ring.pop(v);
        RC_ASSERT(ok == !model.empty());
        if (ok) {
          RC_ASSERT(v == model.front());
          model.pop_front();
        }
        break;
      }
      case 2: {
        std::uintptr_t out[8];
        const std::uint32_t n = ring.grab(out);
        const std::size_t want = model.size() - model.size() / 2;
        RC_ASSERT(n == want);
        for (std::uint32_t i = 0; i < n; ++i) {
          RC_ASSERT(out[i] == model.front());
          model.pop_front();
        }
        break;
      }
      default: {
        std::uintptr_t batch[5];
        for (auto& b : batch) b = next++;
        const std::uint32_t n = ring.push_batch(batch, 5);
        RC_ASSERT(n == std::min<std::size_t>(5, 16 - model.size()));
        for (std::uint32_t i = 0; i < n; ++i) model.push_back(batch[i]);
      }
    }
    RC_ASSERT(ring.size() == model.size());
  }
}

// Stress: one owner pushes and pops, three thieves grab concurrently. Every value is
// consumed exactly once and the owner's own pops come out in increasing order.
TEST(StealRingStress, EveryElementConsumedExactlyOnce) {
  constexpr std::size_t kItems = gort::test::scaled(2'000'000);
  StealRing<std::uintptr_t, 256> ring;
  std::vector<std::atomic<std::uint8_t>> seen(kItems + 1);
  std::atomic<bool> done{false};
  auto mark = [&](std::uintptr_t v) { ASSERT_EQ(seen[v].fetch_add(1), 0) << "value " << v; };
  std::vector<std::thread> thieves;
  for (int t = 0; t < 3; ++t) {
    thieves.emplace_back([&] {
      std::uintptr_t out[128];
      while (!done.load(std::memory_order_acquire) || !ring.empty()) {
        const std::uint32_t n = ring.grab(out);
        for (std::uint32_t i = 0; i < n; ++i) mark(out[i]);
        if (n > 1) {
          for (std::uint32_t i = 1; i < n; ++i) ASSERT_LT(out[i - 1], out[i]);
        }
      }
    });
  }
  std::uintptr_t last_own = 0, v = 0;
  for (std::uintptr_t i = 1; i <= kItems; ++i) {
    while (!ring.push(i)) {
      if (ring.pop(v)) {
        mark(v);
        ASSERT_GT(v, last_own);
        last_own = v;
      }
    }
    if (i % 3 == 0 && ring.pop(v)) {
      mark(v);
      ASSERT_GT(v, last_own);
      last_own = v;
    }
  }
  done.store(true, std::memory_order_release);
  while (ring.pop(v)) mark(v);
  for (auto& t : thieves) t.join();
  for (std::size_t i = 1; i <= kItems; ++i) ASSERT_EQ(seen[i].load(), 1) << "value " << i;
}

// Mark assists' pacing (src/gc/collector.cpp, Go's gcControllerState.revise and
// bgScanCredit): the rate an allocating goroutine pays in scan work per byte, and the
// background credit it spends first. The rate's properties (rapidcheck) and the credit
// under concurrent earning and spending (stress). The effect on a whole program is
// measured, not tested: binary-trees' assist time in gctrace (docs/benchmarks.md).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gc/internal.hpp"

namespace detail = gort::gc::detail;

namespace {

constexpr std::int64_t kMiB = 1 << 20;

struct PacerState {
  std::int64_t expected, done, goal, live;
};

rc::Gen<PacerState> pacer_states() {
  return rc::gen::apply(
      [](std::int64_t expected, std::int64_t done_permille, std::int64_t goal,
         std::int64_t live_permille) {
        return PacerState{expected, expected * done_permille / 1000, goal,
                          goal * live_permille / 1000};
      },
      rc::gen::inRange<std::int64_t>(kMiB, 4096 * kMiB), rc::gen::inRange<std::int64_t>(0, 2000),
      rc::gen::inRange<std::int64_t>(kMiB, 8192 * kMiB), rc::gen::inRange<std::int64_t>(0, 1500));
}

double rate(const PacerState& p) {
  return detail::assist_work_per_byte(p.expected, p.done, p.goal, p.live);
}

}  // namespace

// The work left, spread over the heap left: what the background has done is not asked of
// assists again, and the closer the heap is to the goal the more each byte costs.
RC_GTEST_PROP(GcAssist, TheRateFallsWithWorkDoneAndRisesWithTheHeap, ()) {
  const PacerState p = *pacer_states();
  const double r = rate(p);
  RC_ASSERT(r > 0.0);
  if (p.done < p.expected) {
    // At most the work left over the heap left (the room is floored at 64 KiB).
    RC_ASSERT(r <= static_cast<double>(p.expected - p.done) / (64 << 10) + 1e-9);
    const std::int64_t more = *rc::gen::inRange<std::int64_t>(1, p.expected - p.done + 1);
    if (p.done + more < p.expected)
      RC_ASSERT(rate({p.expected, p.done + more, p.goal, p.live}) < r);
  }
  const std::int64_t grown = *rc::gen::inRange<std::int64_t>(1, kMiB);
  RC_ASSERT(rate({p.expected, p.done, p.goal, p.live + grown}) >= r);
}

// Marking well under the goal costs about the expected work over the runway (Go's
// assistWorkPerByte at mark start); past the expected work the rate switches to the whole
// live heap over the room to 1.1x the goal, and never to zero while work may remain.
TEST(GcAssist, RateAtMarkStartAndPastTheExpectedWork) {
  EXPECT_DOUBLE_EQ(detail::assist_work_per_byte(20 * kMiB, 0, 42 * kMiB, 32 * kMiB), 2.0);
  EXPECT_DOUBLE_EQ(detail::assist_work_per_byte(20 * kMiB, 15 * kMiB, 42 * kMiB, 32 * kMiB), 0.5);
  // 30 MiB scanned of 20 expected, live 40 MiB, goal 40 MiB: (40 - 30) / (44 - 40).
  EXPECT_DOUBLE_EQ(detail::assist_work_per_byte(20 * kMiB, 30 * kMiB, 40 * kMiB, 40 * kMiB), 2.5);
  // Past even the hard goal: the room is floored at 64 KiB, not zero or negative.
  EXPECT_DOUBLE_EQ(detail::assist_work_per_byte(20 * kMiB, 10 * kMiB, 40 * kMiB, 50 * kMiB),
                   static_cast<double>(10 * kMiB) / (64 << 10));
  // GOGC off (an infinite goal) does not overflow.
  EXPECT_GE(detail::assist_work_per_byte(20 * kMiB, 30 * kMiB, INT64_MAX, 40 * kMiB), 0.0);
}

// Background markers add credit while assists spend it: nothing is spent twice or
// overdrawn, whatever the interleaving.
TEST(GcAssist, BackgroundCreditIsNeverOverdrawn) {
  constexpr int kEarners = 2, kSpenders = 3, kRounds = 200000;
  detail::g_background_credit.store(0);
  std::atomic<std::int64_t> spent{0};
  std::atomic<bool> negative{false};
  std::vector<std::thread> threads;
  for (int e = 0; e < kEarners; ++e)
    threads.emplace_back([] {
      for (int i = 0; i < kRounds; ++i) detail::g_background_credit.fetch_add(3);
    });
  for (int s = 0; s < kSpenders; ++s)
    threads.emplace_back([&] {
      std::int64_t mine = 0;
      for (int i = 0; i < kRounds; ++i) {
        const std::int64_t want = 1 + i % 7;
        const std::int64_t got = detail::spend_background_credit(want);
        if (got < 0 || got > want) negative = true;
        if (detail::g_background_credit.load(std::memory_order_relaxed) < 0) negative = true;
        mine += got;
      }
      spent += mine;
    });
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(negative.load());
  EXPECT_EQ(spent.load() + detail::g_background_credit.load(),
            std::int64_t{3} * kEarners * kRounds);
  detail::g_background_credit.store(0);
}

// Context: cancellation, deadlines, values, propagation and resource release.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "gort/gort.hpp"
#include "runtime/sched.hpp"
#include "runtime/timer.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto kLate = gort::test::kTsan ? 2000ms : 500ms;

bool is_done(const gort::Context& ctx) {
  bool done = false;
  gort::select(gort::on_recv(ctx.done(), [&](std::optional<std::monostate>) { done = true; }),
               gort::on_default([] {}));
  return done;
}

std::int64_t pending_timer() {
  return gort::runtime::earliest_timer(*gort::runtime::current_sched());
}

const gort::ContextKey<std::string> kUser;
const gort::ContextKey<std::string> kRequest;  // same type, different key
const gort::ContextKey<int> kDepth;

TEST(Context, BackgroundIsNeverDone) {
  gort::Context bg = gort::background();
  EXPECT_FALSE(bg.done());  // the nil channel
  EXPECT_FALSE(bg.err());
  EXPECT_FALSE(bg.deadline().has_value());
  EXPECT_EQ(bg.value(kUser), nullptr);
  EXPECT_FALSE(gort::todo().done());
}

TEST(Context, CancelClosesDoneAndSetsErr) {
  gort::run([] {
    auto [ctx, cancel] = gort::with_cancel(gort::background());
    EXPECT_FALSE(is_done(ctx));
    EXPECT_FALSE(ctx.err());
    cancel();
    EXPECT_TRUE(is_done(ctx));
    EXPECT_EQ(ctx.err(), gort::ContextError::canceled);
    EXPECT_EQ(ctx.err().message(), "context canceled");
    cancel();  // idempotent
    EXPECT_EQ(ctx.err(), gort::ContextError::canceled);
  });
}

TEST(Context, CancellingAParentCancelsEveryDescendant) {
  gort::run([] {
    auto [root, cancel_root] = gort::with_cancel(gort::background());
    auto [child, cancel_child] = gort::with_cancel(root);
    gort::Context valued = gort::with_value(child, kDepth, 2);
    auto [grandchild, cancel_grandchild] = gort::with_cancel(valued);
    auto [sibling, cancel_sibling] = gort::with_cancel(root);

    cancel_child();  // a child's cancel goes down, never up
    EXPECT_TRUE(is_done(child));
    EXPECT_TRUE(is_done(grandchild));
    EXPECT_TRUE(is_done(valued));
    EXPECT_FALSE(is_done(root));
    EXPECT_FALSE(is_done(sibling));

    cancel_root();
    EXPECT_TRUE(is_done(sibling));
    EXPECT_EQ(sibling.err(), gort::ContextError::canceled);
  });
}

TEST(Context, ChildOfACancelledParentStartsCancelled) {
  gort::run([] {
    auto [parent, cancel] = gort::with_timeout(gort::background(), 0ns);
    EXPECT_EQ(parent.err(), gort::ContextError::deadline_exceeded);
    auto [child, cancel_child] = gort::with_cancel(parent);
    EXPECT_TRUE(is_done(child));
    EXPECT_EQ(child.err(), gort::ContextError::deadline_exceeded);  // the parent's reason
  });
}

TEST(Context, TimeoutFiresWithDeadlineExceeded) {
  gort::run([] {
    const auto t0 = gort::now();
    auto [ctx, cancel] = gort::with_timeout(gort::background(), 20ms);
    ASSERT_TRUE(ctx.deadline().has_value());
    EXPECT_GE(*ctx.deadline(), t0 + 20ms);
    gort::Chan<int> never = gort::make_chan<int>();
    std::size_t chosen = gort::select(
        gort::on_recv(never, [](std::optional<int>) {}),
        gort::on_recv(ctx.done(), [](std::optional<std::monostate> v) { EXPECT_FALSE(v); }));
    EXPECT_EQ(chosen, 1u);
    EXPECT_GE(gort::now() - t0, 20ms);
    EXPECT_LT(gort::now() - t0, 20ms + kLate);
    EXPECT_EQ(ctx.err(), gort::ContextError::deadline_exceeded);
    EXPECT_EQ(ctx.err().message(), "context deadline exceeded");
    cancel();  // after the deadline: changes nothing
    EXPECT_EQ(ctx.err(), gort::ContextError::deadline_exceeded);
  });
}

TEST(Context, DeadlineTimerCancelsChildren) {
  gort::run([] {
    auto [parent, cancel] = gort::with_timeout(gort::background(), 10ms);
    auto [child, cancel_child] = gort::with_cancel(gort::with_value(parent, kDepth, 1));
    child.done().recv();
    EXPECT_EQ(child.err(), gort::ContextError::deadline_exceeded);
    EXPECT_EQ(child.deadline(), parent.deadline());  // inherited
  });
}

TEST(Context, EarlierParentDeadlineWins) {
  gort::run([] {
    auto [parent, cancel] = gort::with_timeout(gort::background(), 10ms);
    auto [child, cancel_child] = gort::with_timeout(parent, 1h);
    EXPECT_EQ(child.deadline(), parent.deadline());
    child.done().recv();
    EXPECT_EQ(child.err(), gort::ContextError::deadline_exceeded);
  });
}

TEST(Context, PastDeadlineIsDoneAtOnce) {
  gort::run([] {
    auto [ctx, cancel] = gort::with_deadline(gort::background(), gort::now() - 1s);
    EXPECT_TRUE(is_done(ctx));
    EXPECT_EQ(ctx.err(), gort::ContextError::deadline_exceeded);
    EXPECT_EQ(pending_timer(), 0);  // no timer was needed
  });
}

TEST(Context, HugeTimeoutDoesNotOverflow) {
  gort::run([] {
    auto [ctx, cancel] = gort::with_timeout(gort::background(), std::chrono::nanoseconds::max());
    EXPECT_FALSE(is_done(ctx));
    cancel();
  });
}

TEST(Context, CancelReleasesTheTimer) {
  gort::run([] {
    auto [ctx, cancel] = gort::with_timeout(gort::background(), 1h);
    EXPECT_NE(pending_timer(), 0);
    cancel();
    EXPECT_EQ(pending_timer(), 0);
  });
}

TEST(Context, ParentCancelReleasesChildTimers) {
  gort::run([] {
    auto [parent, cancel] = gort::with_cancel(gort::background());
    auto [child, cancel_child] = gort::with_timeout(parent, 1h);
    EXPECT_NE(pending_timer(), 0);
    cancel();
    EXPECT_EQ(child.err(), gort::ContextError::canceled);
    EXPECT_EQ(pending_timer(), 0);
  });
}

TEST(Context, AbandonedContextIsFreedWithItsTimer) {
  gort::run([] {
    auto [parent, cancel] = gort::with_cancel(gort::background());
    auto tracker = std::make_shared<int>(0);
    {
      const gort::ContextKey<std::shared_ptr<int>> key;
      auto [child, cancel_child] = gort::with_timeout(parent, 1h);
      gort::Context holder = gort::with_value(child, key, tracker);
      EXPECT_EQ(tracker.use_count(), 2);
      EXPECT_NE(pending_timer(), 0);
    }
    // Neither cancelled nor expired, but unreachable: freed (Go would keep it until the
    // parent is cancelled or the timer fires).
    EXPECT_EQ(tracker.use_count(), 1);
    EXPECT_EQ(pending_timer(), 0);
    cancel();
  });
}

TEST(Context, ValuesAreFoundThroughTheChain) {
  gort::Context a = gort::with_value(gort::background(), kUser, std::string("ann"));
  auto [b, cancel] = gort::with_cancel(a);
  gort::Context c = gort::with_value(b, kRequest, std::string("r-1"));
  gort::Context d = gort::with_value(c, kUser, std::string("bob"));  // shadows
  ASSERT_NE(c.value(kUser), nullptr);
  EXPECT_EQ(*c.value(kUser), "ann");
  EXPECT_EQ(*c.value(kRequest), "r-1");
  EXPECT_EQ(*d.value(kUser), "bob");
  EXPECT_EQ(a.value(kRequest), nullptr);  // same type, other key
  EXPECT_EQ(d.value(kDepth), nullptr);
  cancel();
}

TEST(Context, CancelWakesEveryWaiter) {
  gort::run(
      [] {
        auto [ctx, cancel] = gort::with_cancel(gort::background());
        constexpr int kWaiters = 100;
        gort::WaitGroup started, finished;
        started.add(kWaiters);
        finished.add(kWaiters);
        std::atomic<int> saw_cancel{0};
        for (int i = 0; i < kWaiters; ++i) {
          gort::go([&, c = ctx] {
            started.done();
            c.done().recv();
            if (c.err() == gort::ContextError::canceled) saw_cancel.fetch_add(1);
            finished.done();
          });
        }
        started.wait();
        cancel();
        finished.wait();
        EXPECT_EQ(saw_cancel.load(), kWaiters);
      },
      gort::Options{.procs = 2});
}

// Timeouts, explicit cancels and parent cancels racing on two Ps: every context ends up
// done exactly once with one of the legitimate reasons, and no timer is left behind.
TEST(Context, CancelRacesWithDeadlines) {
  gort::run(
      [] {
        const int rounds = static_cast<int>(gort::test::scaled(2000));
        gort::WaitGroup wg;
        wg.add(2);
        for (int w = 0; w < 2; ++w) {
          gort::go([&, w] {
            for (int r = 0; r < rounds; ++r) {
              auto [parent, cancel_parent] = gort::with_cancel(gort::background());
              auto [ctx, cancel] =
                  gort::with_timeout(parent, std::chrono::microseconds((r * 13 + w) % 40));
              if (r % 3 == 0) cancel();
              if (r % 3 == 1) cancel_parent();
              ctx.done().recv();  // exactly one reason ends it, by the deadline at the latest
              const std::error_code e = ctx.err();
              EXPECT_TRUE(e == gort::ContextError::canceled ||
                          e == gort::ContextError::deadline_exceeded);
              if (r % 3 == 2) {
                EXPECT_EQ(e, gort::ContextError::deadline_exceeded);
              }
              cancel_parent();
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(pending_timer(), 0);
      },
      gort::Options{.procs = 2});
}

TEST(Context, TimeoutOutsideTheRuntimeIsAPanic) {
  EXPECT_THROW(gort::with_timeout(gort::background(), 1s), gort::Panic);
  // Cancellation alone needs no runtime.
  auto [ctx, cancel] = gort::with_cancel(gort::background());
  cancel();
  EXPECT_EQ(ctx.err(), gort::ContextError::canceled);
}

}  // namespace

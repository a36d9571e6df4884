// errgroup: first error, context cancellation, exceptions, limits.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

#include "gort/gort.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

TEST(ErrGroup, AllSucceed) {
  gort::run([] {
    gort::ErrGroup g;
    std::atomic<int> ran{0};
    for (int i = 0; i < 20; ++i) g.go([&] { ran.fetch_add(1); });
    for (int i = 0; i < 20; ++i)
      g.go([&]() -> std::error_code {
        ran.fetch_add(1);
        return {};
      });
    EXPECT_FALSE(g.wait());
    EXPECT_EQ(ran.load(), 40);
  });
}

TEST(ErrGroup, FirstErrorWinsAndCancelsTheContext) {
  gort::run([] {
    auto [g, ctx] = gort::ErrGroup::with_context(gort::background());
    std::atomic<int> saw_cancel{0};
    for (int i = 0; i < 4; ++i) {
      g.go([&, c = ctx]() -> std::error_code {
        c.done().recv();  // blocks until a sibling fails
        saw_cancel.fetch_add(1);
        return c.err();
      });
    }
    g.go([]() -> std::error_code { return std::make_error_code(std::errc::io_error); });
    const std::error_code err = g.wait();
    EXPECT_EQ(err, std::errc::io_error);  // the siblings' canceled errors came later
    EXPECT_EQ(saw_cancel.load(), 4);
    EXPECT_EQ(ctx.err(), gort::ContextError::canceled);
  });
}

TEST(ErrGroup, WaitCancelsTheContextEvenOnSuccess) {
  gort::run([] {
    auto [g, ctx] = gort::ErrGroup::with_context(gort::background());
    g.go([] {});
    EXPECT_FALSE(g.wait());
    EXPECT_EQ(ctx.err(), gort::ContextError::canceled);
  });
}

TEST(ErrGroup, ExceptionIsRethrownByWait) {
  gort::run([] {
    auto [g, ctx] = gort::ErrGroup::with_context(gort::background());
    g.go([]() -> std::error_code { throw std::runtime_error("task failed"); });
    g.go([c = ctx] { c.done().recv(); });  // released by the failure's cancel
    try {
      g.wait();
      ADD_FAILURE() << "wait() did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "task failed");
    }
  });
}

TEST(ErrGroup, LimitBoundsActiveGoroutines) {
  gort::run(
      [] {
        constexpr int kLimit = 3;
        gort::ErrGroup g;
        g.set_limit(kLimit);
        std::atomic<int> active{0}, max_active{0};
        // The first goroutines hold their slots until the limit is reached, so the test
        // sees the limit reached (not just respected) whatever the scheduling.
        gort::Chan<std::monostate> gate = gort::make_chan<std::monostate>();
        gort::go([&, gate] {
          while (active.load() < kLimit) gort::sleep(100us);
          gate.close();
        });
        for (int i = 0; i < 20; ++i) {
          g.go([&, gate] {
            const int now = active.fetch_add(1) + 1;
            int m = max_active.load();
            while (now > m && !max_active.compare_exchange_weak(m, now)) {
            }
            gate.recv();
            gort::yield();
            active.fetch_sub(1);
          });
        }
        EXPECT_FALSE(g.wait());
        EXPECT_EQ(max_active.load(), kLimit);
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

TEST(ErrGroup, TryGoRespectsTheLimit) {
  gort::run([] {
    gort::ErrGroup g;
    g.set_limit(1);
    gort::Chan<int> release = gort::make_chan<int>();
    EXPECT_TRUE(g.try_go([release] { release.recv(); }));
    EXPECT_FALSE(g.try_go([] {}));
    EXPECT_THROW(g.set_limit(3), gort::Panic);  // goroutines active
    release.send(1);
    g.wait();
    EXPECT_TRUE(g.try_go([] {}));
    g.wait();
  });
}

}  // namespace

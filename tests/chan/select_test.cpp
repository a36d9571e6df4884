// select: readiness, uniform choice, default, nil channels, duplicates, closed channels,
// lock ordering.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cmath>

#include "gort/gort.hpp"
#include "test_util.hpp"

TEST(Select, DefaultWhenNothingIsReady) {
  gort::run([] {
    auto ch = gort::make_chan<int>();
    bool defaulted = false;
    const std::size_t i = gort::select(gort::on_recv(ch, [](std::optional<int>) { FAIL(); }),
                                       gort::on_default([&] { defaulted = true; }));
    EXPECT_EQ(i, 1u);
    EXPECT_TRUE(defaulted);
  });
}

TEST(Select, RunsTheReadyCaseOnly) {
  gort::run([] {
    auto a = gort::make_chan<int>(1), b = gort::make_chan<int>(1);
    b.send(42);
    int got = 0;
    for (int round = 0; round < 100; ++round) {
      const std::size_t i =
          gort::select(gort::on_recv(a, [](std::optional<int>) { FAIL() << "a was not ready"; }),
                       gort::on_recv(b, [&](std::optional<int> v) { got = *v; }));
      EXPECT_EQ(i, 1u);
      EXPECT_EQ(got, 42);
      b.send(42);
    }
  });
}

TEST(Select, SendCase) {
  gort::run([] {
    auto ch = gort::make_chan<std::string>(1);
    bool sent = false;
    gort::select(gort::on_send(ch, "hi", [&] { sent = true; }));
    EXPECT_TRUE(sent);
    EXPECT_EQ(ch.recv(), "hi");
    // Full: the send case is not ready; the default runs and the value is discarded.
    ch.send("x");
    EXPECT_EQ(gort::select(gort::on_send(ch, "y", [] { FAIL(); }), gort::on_default([] {})), 1u);
    EXPECT_EQ(ch.recv(), "x");
  });
}

TEST(Select, BlocksUntilACaseIsReady) {
  gort::run(
      [] {
        auto a = gort::make_chan<int>(), b = gort::make_chan<int>();
        gort::go([b] { b.send(9); });
        int got = 0;
        EXPECT_EQ(gort::select(gort::on_recv(a, [](std::optional<int>) { FAIL(); }),
                               gort::on_recv(b, [&](std::optional<int> v) { got = *v; })),
                  1u);
        EXPECT_EQ(got, 9);
        // A blocked select completed by a receiver of its send case.
        gort::go([a] { EXPECT_EQ(a.recv(), 5); });
        EXPECT_EQ(gort::select(gort::on_send(a, 5, [] {}),
                               gort::on_recv(b, [](std::optional<int>) { FAIL(); })),
                  0u);
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

TEST(Select, ClosedChannelIsReadyForReceive) {
  gort::run([] {
    auto ch = gort::make_chan<int>();
    ch.close();
    bool closed_seen = false;
    gort::select(gort::on_recv(ch, [&](std::optional<int> v) { closed_seen = !v; }));
    EXPECT_TRUE(closed_seen);
  });
}

TEST(Select, SendOnClosedChannelPanics) {
  gort::run([] {
    auto ch = gort::make_chan<int>(1);
    ch.close();
    EXPECT_THROW(gort::select(gort::on_send(ch, 1, [] {})), gort::Panic);
  });
}

TEST(Select, CloseWakesABlockedSelect) {
  gort::run(
      [] {
        auto a = gort::make_chan<int>(), b = gort::make_chan<int>();
        gort::go([a] {
          for (int i = 0; i < 10; ++i) gort::yield();
          a.close();
        });
        bool closed = false;
        EXPECT_EQ(gort::select(gort::on_recv(a, [&](std::optional<int> v) { closed = !v; }),
                               gort::on_recv(b, [](std::optional<int>) { FAIL(); })),
                  0u);
        EXPECT_TRUE(closed);
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

TEST(Select, NilChannelsAreNeverReady) {
  gort::run([] {
    gort::Chan<int> nil;
    auto ready = gort::make_chan<int>(1);
    ready.send(1);
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(gort::select(gort::on_recv(nil, [](std::optional<int>) { FAIL(); }),
                             gort::on_send(nil, 1, [] { FAIL(); }),
                             gort::on_recv(ready, [](std::optional<int>) {})),
                2u);
      ready.send(1);
    }
    EXPECT_EQ(gort::select(gort::on_recv(nil, [](std::optional<int>) {}), gort::on_default([] {})),
              1u);
  });
}

TEST(Select, SameChannelInSeveralCases) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        std::array<int, 3> hits{};
        gort::WaitGroup sender;
        sender.add(1);
        gort::go([ch, &sender] {
          for (int i = 0; i < 3000; ++i) ch.send(i);
          sender.done();
        });
        for (int i = 0; i < 3000; ++i)
          hits[gort::select(gort::on_recv(ch, [](std::optional<int>) {}),
                            gort::on_recv(ch, [](std::optional<int>) {}),
                            gort::on_recv(ch, [](std::optional<int>) {}))]++;
        sender.wait();
        for (int h : hits) EXPECT_GT(h, 500);
      },
      gort::Options{.procs = 2});
}

TEST(Select, UniformAmongReadyCases) {
  // Four always-ready cases; chi-square with 3 degrees of freedom: 16.27 is the 0.1% point.
  gort::run([] {
    std::array<gort::Chan<int>, 4> chans;
    for (auto& c : chans) c = gort::make_chan<int>(1);
    constexpr int kRounds = 40000;
    std::array<int, 4> hits{};
    for (auto& c : chans) c.send(0);
    for (int r = 0; r < kRounds; ++r) {
      const std::size_t i = gort::select(gort::on_recv(chans[0], [](std::optional<int>) {}),
                                         gort::on_recv(chans[1], [](std::optional<int>) {}),
                                         gort::on_recv(chans[2], [](std::optional<int>) {}),
                                         gort::on_recv(chans[3], [](std::optional<int>) {}));
      hits[i]++;
      chans[i].send(0);
    }
    double chi2 = 0;
    for (int h : hits) chi2 += std::pow(h - kRounds / 4.0, 2) / (kRounds / 4.0);
    EXPECT_LT(chi2, 16.27) << hits[0] << " " << hits[1] << " " << hits[2] << " " << hits[3];
  });
}

TEST(SelectStress, OppositeOrdersDoNotDeadlock) {
  // Two goroutines select over the same channels listed in opposite orders while others
  // feed both: channels are locked in one global (address) order, so no lock cycle forms.
  static const int rounds = static_cast<int>(gort::test::scaled(20000));
  gort::run(
      [] {
        auto a = gort::make_chan<int>(), b = gort::make_chan<int>();
        gort::WaitGroup wg;
        std::atomic<int> received{0};
        auto feeder = [&](gort::Chan<int> ch) {
          for (int i = 0; i < rounds; ++i) ch.send(i);
          wg.done();
        };
        wg.add(4);
        gort::go(feeder, a);
        gort::go(feeder, b);
        gort::go([&] {
          for (int i = 0; i < rounds; ++i)
            gort::select(gort::on_recv(a, [&](std::optional<int>) { received++; }),
                         gort::on_recv(b, [&](std::optional<int>) { received++; }));
          wg.done();
        });
        gort::go([&] {
          for (int i = 0; i < rounds; ++i)
            gort::select(gort::on_recv(b, [&](std::optional<int>) { received++; }),
                         gort::on_recv(a, [&](std::optional<int>) { received++; }));
          wg.done();
        });
        wg.wait();
        EXPECT_EQ(received.load(), 2 * rounds);
      },
      gort::Options{.procs = 2});
}

TEST(SelectDeathTest, EmptySelectBlocksForever) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(gort::run([] { gort::select(); }), ::testing::ExitedWithCode(2),
              "goroutine 1 \\[select \\(no cases\\)\\]");
}

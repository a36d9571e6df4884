// Channels: Go's semantics (the spec and runtime/chan.go), including panics and blocking.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gort/gort.hpp"
#include "test_util.hpp"

namespace {

// Counts copies and moves, to check that values are moved, never copied.
struct Tracked {
  static inline std::atomic<int> copies{0};
  int v;
  explicit Tracked(int x) : v(x) {}
  Tracked(const Tracked& o) : v(o.v) { copies.fetch_add(1); }
  Tracked(Tracked&& o) noexcept : v(o.v) {}
  Tracked& operator=(const Tracked&) = delete;
};

struct NoDefault {
  explicit NoDefault(std::string s) : text(std::move(s)) {}
  std::string text;
};

template <class F>
std::string panic_message(F&& f) {
  try {
    f();
  } catch (const gort::Panic& e) {
    return e.what();
  }
  return "";
}

}  // namespace

class ChanProcs : public ::testing::TestWithParam<int> {};

TEST_P(ChanProcs, UnbufferedHandsOffInOrder) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        EXPECT_EQ(ch.cap(), 0u);
        gort::go([ch] {
          for (int i = 0; i < 1000; ++i) ch.send(i);
          ch.close();
        });
        int expect = 0;
        for (int v : ch) EXPECT_EQ(v, expect++);
        EXPECT_EQ(expect, 1000);
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = GetParam()});
}

TEST_P(ChanProcs, BufferedKeepsFifoAndDrainsAfterClose) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>(3);
        ch.send(1);
        ch.send(2);
        EXPECT_EQ(ch.len(), 2u);
        EXPECT_EQ(ch.cap(), 3u);
        ch.close();
        EXPECT_EQ(ch.recv(), 1);
        EXPECT_EQ(ch.recv(), 2);
        EXPECT_EQ(ch.recv(), std::nullopt);
        EXPECT_EQ(ch.recv(), std::nullopt) << "closed and drained stays so";
      },
      gort::Options{.procs = GetParam()});
}

TEST_P(ChanProcs, ManyProducersManyConsumersEveryValueOnce) {
  gort::run(
      [] {
        constexpr int kProducers = 4, kPerProducer = 5000;
        for (std::size_t cap : {0u, 1u, 64u}) {
          auto ch = gort::make_chan<int>(cap);
          std::vector<std::atomic<int>> seen(kProducers * kPerProducer);
          gort::WaitGroup producers, consumers;
          for (int p = 0; p < kProducers; ++p) {
            producers.add(1);
            gort::go([&, p] {
              for (int i = 0; i < kPerProducer; ++i) ch.send(p * kPerProducer + i);
              producers.done();
            });
          }
          for (int c = 0; c < 3; ++c) {
            consumers.add(1);
            gort::go([&] {
              for (int v : ch) seen[static_cast<std::size_t>(v)].fetch_add(1);
              consumers.done();
            });
          }
          producers.wait();
          ch.close();
          consumers.wait();
          for (auto& s : seen) ASSERT_EQ(s.load(), 1);
        }
      },
      gort::Options{.procs = GetParam()});
}

INSTANTIATE_TEST_SUITE_P(Procs, ChanProcs, ::testing::Values(1, 2, 8));

TEST(Chan, Panics) {
  gort::run([] {
    auto ch = gort::make_chan<int>(1);
    ch.close();
    EXPECT_EQ(panic_message([&] { ch.send(1); }), "send on closed channel");
    EXPECT_EQ(panic_message([&] { ch.close(); }), "close of closed channel");
    gort::Chan<int> nil;
    EXPECT_EQ(panic_message([&] { nil.close(); }), "close of nil channel");
  });
}

TEST(Chan, CloseWakesBlockedSendersWithAPanicAndReceiversWithNothing) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        std::atomic<int> sender_panics{0}, receiver_nothing{0};
        gort::WaitGroup done;
        for (int i = 0; i < 3; ++i) {
          done.add(1);
          gort::go([&] {
            if (panic_message([&] { ch.send(7); }) == "send on closed channel")
              sender_panics.fetch_add(1);
            done.done();
          });
        }
        auto ch2 = gort::make_chan<int>();
        for (int i = 0; i < 3; ++i) {
          done.add(1);
          gort::go([&] {
            if (!ch2.recv()) receiver_nothing.fetch_add(1);
            done.done();
          });
        }
        for (int i = 0; i < 50; ++i) gort::yield();  // let them block
        ch.close();
        ch2.close();
        done.wait();
        EXPECT_EQ(sender_panics.load(), 3);
        EXPECT_EQ(receiver_nothing.load(), 3);
      },
      gort::Options{.procs = 2});
}

TEST(Chan, MoveOnlyAndNonDefaultConstructibleElements) {
  gort::run([] {
    auto ch = gort::make_chan<std::unique_ptr<int>>(2);
    ch.send(std::make_unique<int>(5));
    auto got = ch.recv();
    ASSERT_TRUE(got && *got);
    EXPECT_EQ(**got, 5);

    auto ch2 = gort::make_chan<NoDefault>();
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([ch2, &wg] {
      ch2.send(NoDefault("hello"));
      wg.done();
    });
    EXPECT_EQ(ch2.recv()->text, "hello");
    wg.wait();
  });
}

TEST(Chan, ValuesAreMovedNeverCopied) {
  Tracked::copies = 0;
  gort::run(
      [] {
        for (std::size_t cap : {0u, 4u}) {
          auto ch = gort::make_chan<Tracked>(cap);
          gort::go([ch] {
            for (int i = 0; i < 100; ++i) ch.send(Tracked(i));
            ch.close();
          });
          int sum = 0;
          for (auto& t : ch) sum += t.v;
          EXPECT_EQ(sum, 4950);
          gort::test::wait_for_other_goroutines();
        }
      },
      gort::Options{.procs = 2});
  EXPECT_EQ(Tracked::copies.load(), 0);
}

// Trivially copyable elements are copied as bytes (fixed-size copies for 4, 8 and 16
// bytes, memcpy otherwise); every size must arrive intact, through the buffer (wrapping
// around it), from a blocked sender, and to a blocked receiver.
template <class T>
void check_trivial_elements(T (*make)(int)) {
  for (std::size_t cap : {0u, 3u}) {
    auto ch = gort::make_chan<T>(cap);
    gort::go([ch, make] {
      for (int i = 0; i < 50; ++i) ch.send(make(i));
      ch.close();
    });
    int i = 0;
    for (const T& v : ch) {
      EXPECT_TRUE(v == make(i)) << "element " << i << " of " << sizeof(T) << " bytes";
      ++i;
      if (i % 7 == 0) gort::yield();  // let the sender fill the buffer and block
    }
    EXPECT_EQ(i, 50);
    gort::test::wait_for_other_goroutines();
  }
}

TEST(Chan, TriviallyCopyableElementsOfEverySize) {
  struct Pair {
    long a, b;
    bool operator==(const Pair&) const = default;
  };
  struct Three {
    char c[3];
    bool operator==(const Three&) const = default;
  };
  struct Forty {
    long v[5];
    bool operator==(const Forty&) const = default;
  };
  gort::run(
      [] {
        check_trivial_elements<int>([](int i) { return i * 7; });
        check_trivial_elements<long>([](int i) { return i * 1'000'000'007L; });
        check_trivial_elements<Pair>([](int i) { return Pair{i, -i}; });
        check_trivial_elements<Three>([](int i) {
          return Three{{static_cast<char>(i), static_cast<char>(i + 1), static_cast<char>(i + 2)}};
        });
        check_trivial_elements<Forty>([](int i) { return Forty{{i, i + 1, i + 2, i + 3, i + 4}}; });
      },
      gort::Options{.procs = 2});
}

TEST(Chan, BufferedElementsAreDestroyedWithTheChannel) {
  auto counter = std::make_shared<int>(0);
  gort::run([&] {
    auto ch = gort::make_chan<std::shared_ptr<int>>(4);
    ch.send(counter);
    ch.send(counter);
    EXPECT_EQ(counter.use_count(), 3);
  });
  EXPECT_EQ(counter.use_count(), 1);
}

TEST(Chan, HandleSemantics) {
  gort::run([] {
    auto a = gort::make_chan<int>(1);
    auto b = a;
    gort::Chan<int> nil;
    EXPECT_TRUE(a == b);
    EXPECT_FALSE(a == gort::make_chan<int>(1));
    EXPECT_FALSE(static_cast<bool>(nil));
    EXPECT_EQ(nil.len(), 0u);
    EXPECT_EQ(nil.cap(), 0u);
    b.send(3);  // a const handle captured by value can send too
    const auto c = a;
    EXPECT_EQ(c.recv(), 3);
  });
}

TEST(Chan, WaitingReceiversAreServedFifo) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        auto order = gort::make_chan<int>(10);
        gort::WaitGroup wg;
        for (int i = 0; i < 5; ++i) {
          wg.add(1);
          gort::go([&, i] {
            ch.recv();
            order.send(i);
            wg.done();
          });
          for (int k = 0; k < 20; ++k) gort::yield();  // i blocks before i+1 starts
        }
        for (int i = 0; i < 5; ++i) {
          ch.send(0);
          EXPECT_EQ(order.recv(), i);
        }
        wg.wait();
      },
      gort::Options{.procs = 1});
}

TEST(Chan, PlainThreadsCanSendAndReceive) {
  auto ch = gort::make_chan<int>();
  std::thread t([ch] {
    for (int i = 0; i < 100; ++i) ch.send(i);
    ch.close();
  });
  int sum = 0;
  for (int v : ch) sum += v;
  t.join();
  EXPECT_EQ(sum, 4950);
}

TEST(ChanDeathTest, NilChannelBlocksForever) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(gort::run([] { gort::Chan<int>().recv(); }), ::testing::ExitedWithCode(2),
              "all goroutines are asleep - deadlock!\n\ngoroutine 1 \\[chan receive \\(nil "
              "chan\\)\\]");
  EXPECT_EXIT(gort::run([] { gort::make_chan<int>().send(1); }), ::testing::ExitedWithCode(2),
              "goroutine 1 \\[chan send\\]");
}

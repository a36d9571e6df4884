// Classic Go programs rewritten with gort, checked against their known output.
#include <gtest/gtest.h>

#include <vector>

#include "gort/gort.hpp"
#include "test_util.hpp"

// The concurrent prime sieve (go.dev/doc/play/sieve.go): a chain of filter goroutines,
// here with a quit channel so that every goroutine ends before main returns (goroutines
// abandoned by main are never unwound, so what their frames own would leak).
// Under TSan the first 300 primes (61 s for 1000 there: the work grows with the square of
// the count); the same program otherwise.
TEST(GoPrograms, PrimeSieveFirstThousandPrimes) {
  const int count = gort::test::kTsan ? 300 : 1000;
  std::vector<int> primes;
  gort::run(
      [&] {
        auto quit = gort::make_chan<int>();
        gort::WaitGroup wg;
        auto generate = [&](gort::Chan<int> ch) {
          for (int i = 2;; ++i) {
            bool stop = false;
            gort::select(gort::on_send(ch, i, [] {}),
                         gort::on_recv(quit, [&](std::optional<int>) { stop = true; }));
            if (stop) break;
          }
          wg.done();
        };
        auto filter = [&](gort::Chan<int> in, gort::Chan<int> out, int prime) {
          for (bool stop = false; !stop;) {
            gort::select(gort::on_recv(in,
                                       [&](std::optional<int> i) {
                                         if (*i % prime == 0) return;
                                         gort::select(gort::on_send(out, *i, [] {}),
                                                      gort::on_recv(quit, [&](std::optional<int>) {
                                                        stop = true;
                                                      }));
                                       }),
                         gort::on_recv(quit, [&](std::optional<int>) { stop = true; }));
          }
          wg.done();
        };
        auto ch = gort::make_chan<int>();
        wg.add(1);
        gort::go(generate, ch);
        for (int i = 0; i < count; ++i) {
          int prime = *ch.recv();
          primes.push_back(prime);
          auto next = gort::make_chan<int>();
          wg.add(1);
          gort::go(filter, ch, next, prime);
          ch = next;
        }
        quit.close();
        wg.wait();
      },
      gort::Options{.procs = 2});
  ASSERT_EQ(primes.size(), static_cast<std::size_t>(count));
  EXPECT_EQ(primes[0], 2);
  EXPECT_EQ(primes[99], 541);
  EXPECT_EQ(primes[299], 1987);
  if (count == 1000) {
    EXPECT_EQ(primes[999], 7919);
  }
}

// A pipeline with fan-out and fan-in (the Go blog's "Pipelines and cancellation").
TEST(GoPrograms, PipelineFanOutFanIn) {
  long total = 0;
  gort::run(
      [&] {
        auto gen = [](int n) {
          auto out = gort::make_chan<int>();
          gort::go([out, n] {
            for (int i = 1; i <= n; ++i) out.send(i);
            out.close();
          });
          return out;
        };
        auto sq = [](gort::Chan<int> in) {
          auto out = gort::make_chan<int>();
          gort::go([in, out] {
            for (int v : in) out.send(v * v);
            out.close();
          });
          return out;
        };
        auto merge = [](std::vector<gort::Chan<int>> cs) {
          auto out = gort::make_chan<int>(16);
          auto wg = std::make_shared<gort::WaitGroup>();
          wg->add(static_cast<int>(cs.size()));
          for (auto& c : cs)
            gort::go([c, out, wg] {
              for (int v : c) out.send(v);
              wg->done();
            });
          gort::go([wg, out] {
            wg->wait();
            out.close();
          });
          return out;
        };
        auto in = gen(1000);
        std::vector<gort::Chan<int>> workers;
        for (int i = 0; i < 4; ++i) workers.push_back(sq(in));
        for (int v : merge(workers)) total += v;
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
  EXPECT_EQ(total, 333833500L);  // sum of squares 1..1000
}

// The worker pool from the API contract's example.
TEST(GoPrograms, WorkerPoolWithResults) {
  const int rc = gort::run([] {
    auto jobs = gort::make_chan<int>(100);
    auto results = gort::make_chan<int>(100);
    gort::WaitGroup wg;
    for (int w = 0; w < 4; ++w) {
      wg.add(1);
      gort::go([&] {
        for (int j : jobs) results.send(j * 2);
        wg.done();
      });
    }
    for (int i = 0; i < 10; ++i) jobs.send(i);
    jobs.close();
    wg.wait();
    results.close();
    int sum = 0;
    for (int r : results) sum += r;
    return sum == 90 ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
}

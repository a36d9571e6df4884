// Channel and mutex benchmarks: unbuffered ping-pong, buffered producer/consumer, a
// two-channel select and a mutex alone and under contention, the gort-only Google Benchmark
// counterparts of bench/compare/'s channel workloads (which compare against Go and Boost.Fiber).
//   build/release/bench/bench_chan --benchmark_min_time=0.5
// ns_per_op is per round trip (ping-pong) or per item (buffered, select); items/s is its
// inverse.
#include <benchmark/benchmark.h>

#include <atomic>
#include <mutex>
#include <optional>

#include "bench_util.hpp"
#include "gort/gort.hpp"

namespace {

using gort::bench::report_per_op;

// Unbuffered a -> b round trips between the benchmark's goroutine and one echo goroutine
// that lives across iterations, so an iteration is only the rendezvous (two parks and two
// wake-ups per round trip). Arg: procs.
void BM_ChanPingPong(benchmark::State& state) {
  constexpr long kTrips = 10'000;
  gort::bench::run(
      [&] {
        auto a = gort::make_chan<long>(), b = gort::make_chan<long>();
        gort::go([a, b] {
          for (long v : a) b.send(v + 1);
        });
        for (auto _ : state) {
          for (long i = 0; i < kTrips; ++i) {
            a.send(i);
            if (b.recv() != i + 1) state.SkipWithError("wrong value");
          }
        }
        a.close();
      },
      gort::Options{.procs = static_cast<int>(state.range(0))});
  report_per_op(state, kTrips);
}
BENCHMARK(BM_ChanPingPong)->Arg(1)->Arg(2)->ArgName("procs")->UseRealTime();

// Capacity-1024 channel, Args: producers, consumers on 2 Ps. Each iteration starts the
// goroutines, moves kItems items and closes the channel (8 spawns per 100,000 items).
void BM_ChanBuffered(benchmark::State& state) {
  constexpr long kItems = 100'000;
  const int prod = static_cast<int>(state.range(0)), cons = static_cast<int>(state.range(1));
  gort::bench::run(
      [&] {
        for (auto _ : state) {
          auto ch = gort::make_chan<long>(1024);
          gort::WaitGroup sent, received;
          std::atomic<long> total{0};
          sent.add(prod);
          received.add(cons);
          for (int c = 0; c < cons; ++c) {
            gort::go([&, ch] {
              long sum = 0;
              for (long v : ch) sum += v;
              total.fetch_add(sum);
              received.done();
            });
          }
          for (int p = 0; p < prod; ++p) {
            gort::go([&, ch] {
              for (long i = 0; i < kItems / prod; ++i) ch.send(1);
              sent.done();
            });
          }
          sent.wait();
          ch.close();
          received.wait();
          if (total.load() != kItems) state.SkipWithError("lost items");
        }
      },
      gort::Options{.procs = 2});
  report_per_op(state, kItems);
}
BENCHMARK(BM_ChanBuffered)
    ->Args({1, 1})
    ->Args({4, 4})
    ->ArgNames({"prod", "cons"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Two producers on their own unbuffered channels, one consumer selecting over both until
// both are closed, nil-ing each closed channel (as Go does); 2 Ps. Per item received.
void BM_Select2Chan(benchmark::State& state) {
  constexpr long kPerProducer = 10'000;
  gort::bench::run(
      [&] {
        for (auto _ : state) {
          auto producer = [](gort::Chan<long> ch) {
            for (long i = 0; i < kPerProducer; ++i) ch.send(i);
            ch.close();
          };
          gort::Chan<long> a = gort::make_chan<long>(), b = gort::make_chan<long>();
          gort::go(producer, a);
          gort::go(producer, b);
          long n = 0;
          auto take = [&](gort::Chan<long>& ch) {
            return [&](std::optional<long> v) {
              if (v) {
                ++n;
              } else {
                ch = gort::Chan<long>();
              }
            };
          };
          while (a || b) gort::select(gort::on_recv(a, take(a)), gort::on_recv(b, take(b)));
          if (n != 2 * kPerProducer) state.SkipWithError("lost items");
        }
      },
      gort::Options{.procs = 2});
  report_per_op(state, 2.0 * kPerProducer);
}
BENCHMARK(BM_Select2Chan)->UseRealTime()->Unit(benchmark::kMillisecond);

// gort::Mutex: `goroutines` goroutines on 2 Ps each take and release one mutex kOps /
// goroutines times around an increment. Arg 1: the uncontended fast path (one CAS and one
// atomic add); 100: bench/compare's mutex_contended (spin, park, hand-off). Per
// lock+unlock.
void BM_MutexLockUnlock(benchmark::State& state) {
  constexpr long kOps = 200'000;
  const int goroutines = static_cast<int>(state.range(0));
  gort::bench::run(
      [&] {
        for (auto _ : state) {
          gort::Mutex mu;
          gort::WaitGroup wg;
          long counter = 0;
          wg.add(goroutines);
          for (int g = 0; g < goroutines; ++g) {
            gort::go([&] {
              for (long i = 0; i < kOps / goroutines; ++i) {
                std::scoped_lock l(mu);
                ++counter;
              }
              wg.done();
            });
          }
          wg.wait();
          if (counter != kOps / goroutines * goroutines) state.SkipWithError("lost increments");
        }
      },
      gort::Options{.procs = 2});
  report_per_op(state, static_cast<double>(kOps / goroutines * goroutines));
}
BENCHMARK(BM_MutexLockUnlock)
    ->Arg(1)
    ->Arg(100)
    ->ArgName("goroutines")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  return gort::bench::bench_main(argc, argv);
}

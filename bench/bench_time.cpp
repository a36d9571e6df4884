// Timer and context benchmarks (gort only; bench/compare/'s `timer` suite compares sleeping
// goroutines with Go and Boost.Fiber).
//   build/release/bench/bench_time --benchmark_min_time=0.5
// ns_per_op is per operation named by the benchmark.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <vector>

#include "bench_util.hpp"
#include "gort/gort.hpp"

namespace {

using namespace std::chrono_literals;
using gort::bench::report_per_op;

// Arming and disarming a timer far in the future: two heap operations under the timer's
// and the P's heap lock, no firing. The cost every Context with a deadline pays.
void BM_TimerResetStop(benchmark::State& state) {
  constexpr long kOps = 10'000;
  gort::bench::run(
      [&] {
        gort::Timer t(1h);
        for (auto _ : state) {
          for (long i = 0; i < kOps; ++i) {
            t.reset(1h);
            t.stop();
          }
        }
      },
      gort::Options{.procs = 1});
  report_per_op(state, kOps);
}
BENCHMARK(BM_TimerResetStop)->UseRealTime();

// The same with Arg(0) other timers pending in the heap (heap depth matters).
void BM_TimerResetStopDeepHeap(benchmark::State& state) {
  constexpr long kOps = 10'000;
  gort::bench::run(
      [&] {
        std::vector<gort::Timer> others;
        for (long i = 0; i < state.range(0); ++i)
          others.emplace_back(std::chrono::hours(1) + std::chrono::microseconds(i));
        gort::Timer t(1h);
        for (auto _ : state) {
          for (long i = 0; i < kOps; ++i) {
            t.reset(std::chrono::hours(1) + std::chrono::microseconds(i % 1000));
            t.stop();
          }
        }
        for (gort::Timer& o : others) o.stop();
      },
      gort::Options{.procs = 1});
  report_per_op(state, kOps);
}
BENCHMARK(BM_TimerResetStopDeepHeap)->Arg(1000)->Arg(100'000)->UseRealTime();

// sleep(1ns) in a loop on 1 P: park, arm, the scheduler finds the timer due, fire, ready,
// resume. The fixed cost of a sleep, without the sleeping.
void BM_SleepMinimal(benchmark::State& state) {
  constexpr long kOps = 10'000;
  gort::bench::run(
      [&] {
        for (auto _ : state)
          for (long i = 0; i < kOps; ++i) gort::sleep(1ns);
      },
      gort::Options{.procs = 1});
  report_per_op(state, kOps);
}
BENCHMARK(BM_SleepMinimal)->UseRealTime();

// with_cancel + cancel on a cancellable parent: node allocation, registration with the
// parent, close of the done channel, unregistration.
void BM_ContextWithCancel(benchmark::State& state) {
  constexpr long kOps = 10'000;
  gort::bench::run(
      [&] {
        auto [parent, cancel_parent] = gort::with_cancel(gort::background());
        for (auto _ : state) {
          for (long i = 0; i < kOps; ++i) {
            auto [ctx, cancel] = gort::with_cancel(parent);
            cancel();
          }
        }
        cancel_parent();
      },
      gort::Options{.procs = 1});
  report_per_op(state, kOps);
}
BENCHMARK(BM_ContextWithCancel)->UseRealTime();

// with_timeout + cancel: the above plus arming and disarming the deadline timer.
void BM_ContextWithTimeout(benchmark::State& state) {
  constexpr long kOps = 10'000;
  gort::bench::run(
      [&] {
        for (auto _ : state) {
          for (long i = 0; i < kOps; ++i) {
            auto [ctx, cancel] = gort::with_timeout(gort::background(), 1h);
            cancel();
          }
        }
      },
      gort::Options{.procs = 1});
  report_per_op(state, kOps);
}
BENCHMARK(BM_ContextWithTimeout)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

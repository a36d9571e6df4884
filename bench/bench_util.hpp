// Helpers shared by the Google Benchmark suites.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace gort::bench {

// Reports items/s and ns_per_op for ops_per_iteration operations per benchmark iteration.
inline void report_per_op(benchmark::State& state, double ops_per_iteration) {
  const double ops = static_cast<double>(state.iterations()) * ops_per_iteration;
  state.SetItemsProcessed(static_cast<std::int64_t>(ops));
  state.counters["ns_per_op"] =
      benchmark::Counter(ops, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace gort::bench

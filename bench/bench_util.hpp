// Helpers shared by the Google Benchmark suites.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>

#include "gort/trace.hpp"

namespace gort::bench {

// Reports items/s and ns_per_op for ops_per_iteration operations per benchmark iteration.
inline void report_per_op(benchmark::State& state, double ops_per_iteration) {
  const double ops = static_cast<double>(state.iterations()) * ops_per_iteration;
  state.SetItemsProcessed(static_cast<std::int64_t>(ops));
  state.counters["ns_per_op"] =
      benchmark::Counter(ops, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// main() of the suites. With GORT_BENCH_TRACE=<file> every benchmark runs under the
// execution tracer, writing its JSON to file (/dev/null to measure only the cost):
//   GORT_BENCH_TRACE=/dev/null build/release/bench/bench_chan
inline int bench_main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const char* path = std::getenv("GORT_BENCH_TRACE");
  std::ofstream trace_out;
  if (path != nullptr) {
    trace_out.open(path);
    gort::trace::start(trace_out);
  }
  benchmark::RunSpecifiedBenchmarks();
  if (path != nullptr) gort::trace::stop();
  benchmark::Shutdown();
  return 0;
}

}  // namespace gort::bench

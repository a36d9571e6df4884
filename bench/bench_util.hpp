// Helpers shared by the Google Benchmark suites.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>

#include "gort/gort.hpp"
#include "gort/pprof.hpp"
#include "gort/trace.hpp"

namespace gort::bench {

// Reports items/s and ns_per_op for ops_per_iteration operations per benchmark iteration.
inline void report_per_op(benchmark::State& state, double ops_per_iteration) {
  const double ops = static_cast<double>(state.iterations()) * ops_per_iteration;
  state.SetItemsProcessed(static_cast<std::int64_t>(ops));
  state.counters["ns_per_op"] =
      benchmark::Counter(ops, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// gort::run for the suites. With GORT_BENCH_CPUPROFILE=<file> the body runs under the CPU
// profiler (GORT_BENCH_CPUPROFILE_HZ, default 100), to measure its overhead; the profile
// is written after the body, outside the timed loop:
//   GORT_BENCH_CPUPROFILE=/dev/null build/release/bench/bench_chan
template <class F>
void run(F&& body, gort::Options opts = {}) {
  const char* path = std::getenv("GORT_BENCH_CPUPROFILE");
  if (path == nullptr) {
    gort::run(std::forward<F>(body), opts);
    return;
  }
  const char* hz = std::getenv("GORT_BENCH_CPUPROFILE_HZ");
  gort::run(
      [&] {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        gort::pprof::start_cpu_profile(out, hz != nullptr ? std::atoi(hz) : 100);
        body();
        gort::pprof::stop_cpu_profile();
      },
      opts);
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

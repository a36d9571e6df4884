// Scheduler benchmarks: goroutine spawn/join, yield ping-pong, and the raw context switch
// (the physical floor) next to Boost.Context's fcontext and a std::thread baseline.
//   build/release/bench/bench_sched --benchmark_min_time=0.5
// Items/s is goroutines (spawn), yields, or switches per second; ns_per_op is its inverse.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <thread>

#include "bench_util.hpp"
#include "gort/gort.hpp"
#include "runtime/context.hpp"

#if GORT_BENCH_BOOST_CONTEXT
#include <boost/context/detail/fcontext.hpp>
#endif

extern "C" void* bench_switch_context_nofp(void** save_sp, void* load_sp, void* arg);

namespace {

using gort::bench::report_per_op;

// ---- Goroutines -----------------------------------------------------------------------

// go + WaitGroup.done per goroutine, joined in batches of 10,000 (as Go's "go wg.Done()").
void BM_SpawnJoin(benchmark::State& state) {
  const int procs = static_cast<int>(state.range(0));
  constexpr int kBatch = 10'000;
  gort::bench::run(
      [&] {
        for (auto _ : state) {
          gort::WaitGroup wg;
          for (int i = 0; i < kBatch; ++i) {
            wg.add(1);
            gort::go([&wg] { wg.done(); });
          }
          wg.wait();
        }
      },
      gort::Options{.procs = procs});
  report_per_op(state, kBatch);
}
BENCHMARK(BM_SpawnJoin)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Two goroutines yielding to each other on one P: each yield is one switch.
void BM_YieldPingPong(benchmark::State& state) {
  constexpr int kYields = 100'000;
  gort::bench::run(
      [&] {
        for (auto _ : state) {
          gort::WaitGroup wg;
          wg.add(2);
          for (int k = 0; k < 2; ++k)
            gort::go([&wg] {
              for (int i = 0; i < kYields; ++i) gort::yield();
              wg.done();
            });
          wg.wait();
        }
      },
      gort::Options{.procs = 1});
  report_per_op(state, 2.0 * kYields);
}
BENCHMARK(BM_YieldPingPong)->UseRealTime()->Unit(benchmark::kMillisecond);

// The no-runtime baseline: one OS thread per task.
void BM_ThreadSpawnJoin(benchmark::State& state) {
  for (auto _ : state) {
    std::thread t([] { benchmark::DoNotOptimize(0); });
    t.join();
  }
  report_per_op(state, 1);
}
BENCHMARK(BM_ThreadSpawnJoin)->UseRealTime();

// ---- Raw context switch: the physical floor -------------------------------------------

struct RawStack {
  static constexpr std::size_t kSize = 64 * 1024;
  void* mem = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ~RawStack() { munmap(mem, kSize); }
  void* top() const { return static_cast<char*>(mem) + kSize; }
};

void* g_main_sp;
void* g_co_sp;

using SwitchFn = void* (*)(void**, void*, void*);
template <SwitchFn Switch>
void co_loop(void*) {
  for (;;) Switch(&g_co_sp, g_main_sp, nullptr);
}

// One iteration = there and back = 2 switches.
template <SwitchFn Switch>
void BM_RawSwitch(benchmark::State& state) {
  RawStack stack;
  g_co_sp = gort::runtime::make_context(stack.top(), co_loop<Switch>, nullptr);
  for (auto _ : state) Switch(&g_main_sp, g_co_sp, nullptr);
  report_per_op(state, 2);
}
BENCHMARK_TEMPLATE(BM_RawSwitch, gort_switch_context)->Name("BM_RawSwitch/gort");
BENCHMARK_TEMPLATE(BM_RawSwitch, gort_switch_context_symmetric)
    ->Name("BM_RawSwitch/gort_symmetric");
BENCHMARK_TEMPLATE(BM_RawSwitch, bench_switch_context_nofp)
    ->Name("BM_RawSwitch/gort_without_fp_control");

#if GORT_BENCH_BOOST_CONTEXT
namespace bctx = boost::context::detail;
void boost_loop(bctx::transfer_t t) {
  for (;;) t = bctx::jump_fcontext(t.fctx, nullptr);
}
void BM_RawSwitchBoostFcontext(benchmark::State& state) {
  RawStack stack;
  bctx::fcontext_t co = bctx::make_fcontext(stack.top(), RawStack::kSize, boost_loop);
  for (auto _ : state) co = bctx::jump_fcontext(co, nullptr).fctx;
  report_per_op(state, 2);
}
BENCHMARK(BM_RawSwitchBoostFcontext)->Name("BM_RawSwitch/boost_fcontext");
#endif

}  // namespace

int main(int argc, char** argv) {
  return gort::bench::bench_main(argc, argv);
}

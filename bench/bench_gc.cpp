// Collected-heap microbenchmarks: the costs that gc::make, gc::Member and gc::Ptr add to a
// program's fast paths, and the cost of a whole cycle on a small heap. The side-by-side
// comparison with Go, Boehm GC and new/delete is bench/compare/gc.sh.
//   build/release/bench/bench_gc --benchmark_min_time=0.5
// Every benchmark runs inside gort::run (the collector scans goroutine stacks; allocation
// and the barriers are meant to be used from goroutines). ns_per_op is per allocation,
// store, copy or collection; items/s is its inverse.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

#include "bench_util.hpp"
#include "gort/gc.hpp"
#include "gort/gort.hpp"

namespace {

namespace gc = gort::gc;
using gort::bench::report_per_op;

template <std::size_t N>
struct Blob {  // N bytes, no Members: the allocator's pointer-free path
  std::byte data[N];
};

struct Node {  // two references, as a binary-trees node
  gc::Member<Node> left, right;
  void trace(gc::Visitor& v) const {
    v.visit(left);
    v.visit(right);
  }
};

// Allocation throughput of N-byte objects that die at once: gc::make plus the collector's
// share (cycles run as the pacer decides, GOGC from the environment), on the default Ps.
template <std::size_t N>
void BM_Alloc(benchmark::State& state) {
  constexpr long kBatch = 10'000;
  gort::bench::run([&] {
    for (auto _ : state) {
      for (long i = 0; i < kBatch; ++i) {
        gc::Ptr<Blob<N>> p = gc::make<Blob<N>>();
        benchmark::DoNotOptimize(p.get());
      }
    }
  });
  report_per_op(state, kBatch);
}
BENCHMARK(BM_Alloc<16>)->Name("BM_Alloc/16")->UseRealTime();
BENCHMARK(BM_Alloc<64>)->Name("BM_Alloc/64")->UseRealTime();
BENCHMARK(BM_Alloc<256>)->Name("BM_Alloc/256")->UseRealTime();

// As BM_Alloc, for a node with two Members (the type is traced; the stores go through the
// write barrier): one tree node per allocation, children linked as binary-trees does.
void BM_AllocNode(benchmark::State& state) {
  constexpr long kBatch = 10'000;
  gort::bench::run([&] {
    for (auto _ : state) {
      gc::Ptr<Node> prev = gc::make<Node>();
      for (long i = 1; i < kBatch; ++i) {
        gc::Ptr<Node> n = gc::make<Node>();
        n->left = prev;
        prev = n;
      }
      benchmark::DoNotOptimize(prev.get());
    }
  });
  report_per_op(state, kBatch);
}
BENCHMARK(BM_AllocNode)->UseRealTime();

// Member assignment with the barrier off: the collector is disabled (set_percent(-1)) so
// no cycle is marking, and every store takes the barrier's "not marking" path. Stores
// alternate between two targets so each one changes the slot.
void BM_MemberStore(benchmark::State& state) {
  constexpr long kStores = 10'000;
  gort::bench::run([&] {
    const int old_percent = gc::set_percent(-1);
    gc::Ptr<Node> holder = gc::make<Node>();
    gc::Ptr<Node> a = gc::make<Node>(), b = gc::make<Node>();
    for (auto _ : state) {
      for (long i = 0; i < kStores; i += 2) {
        holder->left = a;
        holder->left = b;
      }
      benchmark::ClobberMemory();
    }
    gc::set_percent(old_percent);
  });
  report_per_op(state, kStores);
}
BENCHMARK(BM_MemberStore)->UseRealTime();

// Ptr copy + destruction where the Ptr lives on the goroutine stack: no count is taken
// (the stack is scanned instead).
void BM_PtrCopyStack(benchmark::State& state) {
  constexpr long kCopies = 10'000;
  gort::bench::run([&] {
    gc::Ptr<Node> p = gc::make<Node>();
    for (auto _ : state) {
      for (long i = 0; i < kCopies; ++i) {
        gc::Ptr<Node> q = p;
        benchmark::DoNotOptimize(&q);
      }
    }
  });
  report_per_op(state, kCopies);
}
BENCHMARK(BM_PtrCopyStack)->UseRealTime();

// Ptr copy + destruction where the Ptr lives in a std::vector (malloc'd memory): each
// copy takes a count on the object and its destruction drops it. The vector's capacity
// is reserved, so no reallocation is timed.
void BM_PtrCopyVector(benchmark::State& state) {
  constexpr long kCopies = 10'000;
  gort::bench::run([&] {
    gc::Ptr<Node> p = gc::make<Node>();
    std::vector<gc::Ptr<Node>> v;
    v.reserve(kCopies);
    for (auto _ : state) {
      for (long i = 0; i < kCopies; ++i) v.push_back(p);
      v.clear();
    }
  });
  report_per_op(state, kCopies);
}
BENCHMARK(BM_PtrCopyVector)->UseRealTime();

// A complete binary tree of 2^(depth+1)-1 nodes.
gc::Ptr<Node> tree(int depth) {
  gc::Ptr<Node> n = gc::make<Node>();
  if (depth > 0) {
    n->left = tree(depth - 1);
    n->right = tree(depth - 1);
  }
  return n;
}

// gc::collect() (a whole cycle, mark and sweep) with a small live heap: a complete binary
// tree of 2^(depth+1)-1 nodes held by one Ptr, and no garbage besides. Arg: depth
// (10: 2,047 nodes, 32 KiB; 16: 131,071 nodes, 2 MiB).
void BM_Collect(benchmark::State& state) {
  const auto depth = static_cast<int>(state.range(0));
  gort::bench::run([&] {
    gc::Ptr<Node> root = tree(depth);
    gc::collect();
    for (auto _ : state) gc::collect();
    benchmark::DoNotOptimize(root.get());
  });
  report_per_op(state, 1);
}
BENCHMARK(BM_Collect)
    ->Arg(10)
    ->Arg(16)
    ->ArgName("depth")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// gc::collect() with a 32 MiB live tree (depth 20: 2,097,151 nodes of 16 bytes) on 1 or 2
// Ps and nothing else running: every P is idle, so the Ps mark it together (idle-mode
// workers, src/gc/worker.cpp) while the collector coordinates. The ratio of the two rows
// is the marking's parallel speedup; with GODEBUG=gcworkers=0 the collector marks alone.
// bench/compare/gc.sh (part forcedgc) runs the same against Go.
void BM_CollectLargeOnPs(benchmark::State& state) {
  gort::bench::run(
      [&] {
        gc::Ptr<Node> root = tree(20);
        gc::collect();
        for (auto _ : state) gc::collect();
        benchmark::DoNotOptimize(root.get());
      },
      gort::Options{.procs = static_cast<int>(state.range(0))});
  report_per_op(state, 1);
}
BENCHMARK(BM_CollectLargeOnPs)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("procs")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

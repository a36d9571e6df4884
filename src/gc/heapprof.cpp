// Heap profile records (see heapprof.hpp). Sampling is per thread: each mutator counts
// down the bytes it allocates and samples when the count crosses zero, which costs the
// allocation fast path one subtraction. A sampled object carries kSampled in its header;
// a table maps it to its record until the sweep frees it. Records are kept per distinct
// stack, cumulatively, as Go's buckets are.
#include "gc/heapprof.hpp"

#include <cmath>
#include <map>
#include <random>
#include <unordered_map>

#include "gc/internal.hpp"
#include "runtime/lock.hpp"
#include "runtime/mprof.hpp"

namespace gort::gc::detail {

std::atomic<std::int64_t> g_memprofile_rate{512 * 1024};

namespace {

constexpr int kMaxDepth = 64;

struct Table {
  runtime::Lock lock;
  std::map<std::vector<std::uintptr_t>, std::size_t> by_stack GORT_GUARDED_BY(lock);
  std::vector<HeapRecord> records GORT_GUARDED_BY(lock);
  std::unordered_map<std::uintptr_t, std::size_t> sampled GORT_GUARDED_BY(lock);  // cell
};

Table& table() {
  static auto* t = new Table();  // never destroyed: sweeps may run until the process ends
  return *t;
}

}  // namespace

std::int64_t next_sample_distance() {
  const std::int64_t rate = g_memprofile_rate.load(std::memory_order_relaxed);
  if (rate <= 0) return INT64_MAX;
  if (rate == 1) return 0;
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::exponential_distribution<double> d(1.0 / static_cast<double>(rate));
  return static_cast<std::int64_t>(d(rng));
}

void sample_allocation(std::uintptr_t cell, std::size_t bytes, int skip) {
  std::uintptr_t pcs[kMaxDepth];
  const int n = runtime::capture_stack(pcs, kMaxDepth, skip + 1);
  header_of_cell(cell)->state.fetch_or(kSampled, std::memory_order_relaxed);
  Table& t = table();
  runtime::LockGuard l(t.lock);
  std::vector<std::uintptr_t> stack(pcs, pcs + n);
  auto [it, fresh] = t.by_stack.emplace(std::move(stack), t.records.size());
  if (fresh) t.records.push_back(HeapRecord{it->first, 0, 0, 0, 0});
  HeapRecord& r = t.records[it->second];
  ++r.allocs;
  r.alloc_bytes += static_cast<std::int64_t>(bytes);
  t.sampled[cell] = it->second;
}

void sampled_free(std::uintptr_t cell, std::size_t bytes) {
  Table& t = table();
  runtime::LockGuard l(t.lock);
  auto it = t.sampled.find(cell);
  if (it == t.sampled.end()) return;
  HeapRecord& r = t.records[it->second];
  ++r.frees;
  r.free_bytes += static_cast<std::int64_t>(bytes);
  t.sampled.erase(it);
}

std::vector<HeapRecord> heap_records() {
  Table& t = table();
  runtime::LockGuard l(t.lock);
  return t.records;
}

}  // namespace gort::gc::detail

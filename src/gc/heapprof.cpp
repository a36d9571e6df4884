// Heap profile records (see heapprof.hpp). Sampling is per thread: each mutator counts
// down the bytes it allocates and samples when the count crosses zero, which costs the
// allocation fast path one subtraction. A sampled object carries kSampled in its state word;
// a table maps it to its record until the sweep frees it. Records are kept per distinct
// stack, cumulatively, as Go's buckets are.
#include "gc/heapprof.hpp"

#include <algorithm>
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

struct Counts {
  std::int64_t allocs = 0, alloc_bytes = 0, frees = 0, free_bytes = 0;
  void add(const Counts& o) {
    allocs += o.allocs;
    alloc_bytes += o.alloc_bytes;
    frees += o.frees;
    free_bytes += o.free_bytes;
  }
};

// A stack's counts as published (`active`: as of the last completed cycle) and as still
// accumulating, in three slots indexed by cycle as in Go's memRecord: allocations of
// cycle C go to slot C+2, the frees of the sweep after C's mark to slot C+1. At each mark
// termination slot C+1 (the cycle before's allocations, now marked or not) is published;
// when that sweep is done, slot C+2 (allocations marked in it, and its frees) is.
// So an allocation appears once a collection had the chance to free it: a profile taken
// between cycles is not skewed toward fresh garbage.
struct Record {
  Counts active;
  Counts future[3];
};

struct Table {
  runtime::Lock lock;
  std::map<std::vector<std::uintptr_t>, std::size_t> by_stack GORT_GUARDED_BY(lock);
  std::vector<std::vector<std::uintptr_t>> stacks GORT_GUARDED_BY(lock);
  std::vector<Record> records GORT_GUARDED_BY(lock);
  std::unordered_map<std::uintptr_t, std::size_t> sampled GORT_GUARDED_BY(lock);  // cell
  std::uint32_t cycle GORT_GUARDED_BY(lock) = 0;
};

Table& table() {
  static auto* t = new Table();  // never destroyed: sweeps may run until the process ends
  return *t;
}

// Publishes slot `index` of every record. Caller holds t.lock.
void publish(Table& t, std::uint32_t index) GORT_REQUIRES(t.lock) {
  for (Record& r : t.records) {
    r.active.add(r.future[index % 3]);
    r.future[index % 3] = Counts{};
  }
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
  if (Span* s = heap().pages.span_of(cell))  // just allocated: always found
    s->ensure_states()[s->index_of(cell)].fetch_or(kSampled, std::memory_order_relaxed);
  Table& t = table();
  runtime::LockGuard l(t.lock);
  std::vector<std::uintptr_t> stack(pcs, pcs + n);
  auto [it, fresh] = t.by_stack.emplace(std::move(stack), t.records.size());
  if (fresh) {
    t.stacks.push_back(it->first);
    t.records.emplace_back();
  }
  Counts& c = t.records[it->second].future[(t.cycle + 2) % 3];
  ++c.allocs;
  c.alloc_bytes += static_cast<std::int64_t>(bytes);
  t.sampled[cell] = it->second;
}

void sampled_free(std::uintptr_t cell, std::size_t bytes) {
  Table& t = table();
  runtime::LockGuard l(t.lock);
  auto it = t.sampled.find(cell);
  if (it == t.sampled.end()) return;
  Counts& c = t.records[it->second].future[(t.cycle + 1) % 3];
  ++c.frees;
  c.free_bytes += static_cast<std::int64_t>(bytes);
  t.sampled.erase(it);
}

void heap_profile_next_cycle() {
  Table& t = table();
  runtime::LockGuard l(t.lock);
  ++t.cycle;
  publish(t, t.cycle);
}

void heap_profile_swept() {
  Table& t = table();
  runtime::LockGuard l(t.lock);
  publish(t, t.cycle + 1);
}

std::vector<HeapRecord> heap_records() {
  Table& t = table();
  runtime::LockGuard l(t.lock);
  const bool none_published = std::all_of(t.records.begin(), t.records.end(), [](const Record& r) {
    return r.active.allocs == 0 && r.active.frees == 0;
  });
  if (none_published) {
    // No cycle yet (or GOGC=off from the start): publish everything, as Go does, so the
    // profile is not empty.
    for (std::uint32_t i = 0; i < 3; ++i) publish(t, i);
  }
  std::vector<HeapRecord> out;
  out.reserve(t.records.size());
  for (std::size_t i = 0; i < t.records.size(); ++i) {
    const Counts& c = t.records[i].active;
    if (c.allocs == 0 && c.frees == 0) continue;  // nothing published yet
    out.push_back(HeapRecord{t.stacks[i], c.allocs, c.alloc_bytes, c.frees, c.free_bytes});
  }
  return out;
}

}  // namespace gort::gc::detail

// The page heap and the size-class table (see heap.hpp for the layout and invariants).
//
// Free page runs are kept in two ordered sets under one lock: by address (to coalesce a
// freed span with its neighbours) and by (length, address) for best fit, which keeps
// large holes for large requests and is what Go's treap-based heap did before its radix
// page allocator (Go 1.14). Spans are taken and returned at most once per refill or
// sweep, so the lock is not on any per-object path.
#include "gc/heap.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <new>

#include "base/fatal.hpp"
#include "gc/sanitizer.hpp"
#include "os/os.hpp"

namespace gort::gc::detail {

namespace {

// The arena's reservation: as large as the kernel grants, from 64 GiB down to 1 GiB
// (qemu-user and small address-space limits grant less). Lazily committed.
constexpr std::size_t kMaxArena = std::size_t{64} << 30;
constexpr std::size_t kMinArena = std::size_t{1} << 30;
// Pages free for at least this long are given back to the OS by the scavenger.
constexpr std::int64_t kScavengeAgeNs = 500'000'000;

constexpr SizeClassTable build_size_classes() {
  SizeClassTable t;
  auto add = [&t](std::uint32_t cell) {
    std::uint32_t pages = 1;
    while ((pages * kPageSize) % cell > pages * kPageSize / 8) ++pages;
    t.classes[t.count] =
        SizeClass{cell, pages, static_cast<std::uint32_t>(pages * kPageSize / cell)};
    ++t.count;
  };
  for (std::uint32_t c = 8; c <= 256; c += (c < 32 ? 8 : 16)) add(c);
  for (std::uint32_t c = 256; c < kMaxSmallCell;) {
    const std::uint32_t step = std::max<std::uint32_t>(16, std::bit_floor(c) / 8);
    c += step;
    add(c);
  }
  int sc = 0;
  for (std::size_t i = 0; i < t.by_size.size(); ++i) {
    while (t.classes[sc].cell < i * 8) ++sc;
    t.by_size[i] = static_cast<std::uint8_t>(sc);
  }
  return t;
}

}  // namespace

// Built at compile time: a function-local static cost a guard check on every allocation
// (3% of binary-trees' profile).
constinit const SizeClassTable g_size_classes = build_size_classes();

std::uint32_t swept_index(std::uint32_t sweepgen) {
  return (sweepgen / 2) % 2;
}
std::uint32_t unswept_index(std::uint32_t sweepgen) {
  return 1 - swept_index(sweepgen);
}

// ---- SpanList -----------------------------------------------------------------------

void SpanList::push(Span* s) {
  s->prev = nullptr;
  s->next = head_;
  if (head_ != nullptr) head_->prev = s;
  head_ = s;
}

void SpanList::remove(Span* s) {
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    head_ = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
}

Span* SpanList::pop() {
  Span* s = head_;
  if (s != nullptr) remove(s);
  return s;
}

// ---- Span side tables ---------------------------------------------------------------

namespace {

// The table in `slot`, or a new one of `cells` entries, each `fill`, published with a
// CAS: release, so that the filled table is seen whole; acquire, so that a loser sees the
// winner's.
template <class T>
std::atomic<T>* ensure_table(std::atomic<std::atomic<T>*>& slot, std::uint32_t cells, T fill) {
  if (std::atomic<T>* t = slot.load(std::memory_order_acquire)) return t;
  auto* fresh = new std::atomic<T>[cells];
  for (std::uint32_t i = 0; i < cells; ++i) fresh[i].store(fill, std::memory_order_relaxed);
  std::atomic<T>* expected = nullptr;
  if (slot.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return fresh;
  delete[] fresh;
  return expected;
}

// Frees a span's side tables when its pages go back to the page heap. Nobody reads them
// then: the span holds no object, and marking (which looks up spans from stale words)
// never runs while spans are freed (every span is swept before a cycle starts).
void drop_side_tables(Span* s) {
  delete[] s->types.exchange(nullptr, std::memory_order_relaxed);
  delete[] s->states.exchange(nullptr, std::memory_order_relaxed);
  s->type.store(0, std::memory_order_relaxed);
}

}  // namespace

std::atomic<std::uint16_t>* Span::ensure_types() {
  return ensure_table(types, cells,
                      static_cast<std::uint16_t>(type.load(std::memory_order_relaxed)));
}

std::atomic<std::uint32_t>* Span::ensure_states() {
  return ensure_table(states, cells, std::uint32_t{0});
}

// ---- PageHeap -----------------------------------------------------------------------

PageHeap::PageHeap() {
  std::size_t size = kMaxArena;
  void* arena = nullptr;
  while (size >= kMinArena && (arena = os::reserve_lazy(size)) == nullptr) size /= 2;
  if (arena == nullptr) base::fatal("gc: cannot reserve address space for the heap");
  // Objects are small and scattered: huge pages would commit 2 MiB per touched region.
  // (reserve_lazy already advises against them.)
  base_ = reinterpret_cast<std::uintptr_t>(arena);
  end_ = base_ + size;
  // Grey work entries carry a type id in an address's top 16 bits (mark.cpp).
  if (end_ > kMaxHeapAddress) base::fatal("gc: the heap's arena lies above 2^48");
  bump_ = base_;
  const std::size_t map_bytes = (size >> kPageShift) * sizeof(std::atomic<Span*>);
  void* map = os::reserve_lazy(map_bytes);
  if (map == nullptr) base::fatal("gc: cannot reserve the heap's page map");
  page_map_ = static_cast<std::atomic<Span*>*>(map);  // zero pages: all null
  // Not poisoned here for ASan: poisoning 64 GiB writes 8 GiB of shadow. Spans are
  // poisoned when they are carved (alloc_span), cells unpoisoned when allocated.
}

std::uint32_t PageHeap::next_sweepgen() {
  runtime::LockGuard l(lock_);
  unswept_.store(static_cast<std::int64_t>(inuse_spans_.load(std::memory_order_relaxed)),
                 std::memory_order_relaxed);
  const std::uint32_t sg = sweepgen_.load(std::memory_order_relaxed) + 2;
  sweepgen_.store(sg, std::memory_order_release);
  return sg;
}

void PageHeap::insert_run(std::uintptr_t start, Run r) {
  runs_.emplace(start, r);
  by_size_.emplace(r.npages, start);
}

void PageHeap::erase_run(std::map<std::uintptr_t, Run>::iterator it) {
  by_size_.erase({it->second.npages, it->first});
  runs_.erase(it);
}

std::uintptr_t PageHeap::take_pages(std::uint32_t npages, bool* zeroed) {
  auto best = by_size_.lower_bound({npages, 0});
  if (best != by_size_.end()) {
    const std::uintptr_t start = best->second;
    auto it = runs_.find(start);
    Run r = it->second;
    erase_run(it);
    if (r.npages > npages)
      insert_run(start + std::uintptr_t{npages} * kPageSize,
                 Run{r.npages - npages, r.released, r.freed_at});
    if (r.released) released_.fetch_sub(std::size_t{npages} * kPageSize, std::memory_order_relaxed);
    *zeroed = r.released;
    return start;
  }
  const std::size_t bytes = std::size_t{npages} * kPageSize;
  if (end_ - bump_ < bytes) return 0;
  const std::uintptr_t start = bump_;
  bump_ += bytes;
  sys_.fetch_add(bytes, std::memory_order_relaxed);
  *zeroed = true;
  return start;
}

Span* PageHeap::new_span_struct() {
  if (!spare_spans_.empty()) {
    Span* s = spare_spans_.back();
    spare_spans_.pop_back();
    return s;
  }
  return new Span();
}

void PageHeap::set_page_map(Span* s, Span* value) {
  const std::size_t first = (s->base - base_) >> kPageShift;
  for (std::uint32_t i = 0; i < s->npages; ++i)
    page_map_[first + i].store(value, std::memory_order_release);
}

Span* PageHeap::alloc_span(std::uint32_t npages, int sc, std::uint32_t cell) {
  Span* s;
  bool zeroed = false;
  {
    runtime::LockGuard l(lock_);
    const std::uintptr_t start = take_pages(npages, &zeroed);
    if (start == 0) return nullptr;
    s = new_span_struct();
    s->base = start;
    s->npages = npages;
    s->sweepgen.store(sweepgen_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    inuse_spans_.fetch_add(1, std::memory_order_relaxed);
  }
  s->size_class = sc;
  s->cell = cell;
  s->index_magic = sc < 0 ? 0 : cell_index_magic(cell);
  s->cells = sc < 0 ? 1 : static_cast<std::uint32_t>(std::size_t{npages} * kPageSize / cell);
  // Each bitmap fills whole cache lines of its own: the allocating core writes the alloc
  // bits while markers on other cores set mark bits, and sharing a line made each of those
  // marks take the line from the allocator.
  const std::uint32_t words = ((s->cells + 63) / 64 + 7) & ~7u;
  if (words > s->words || s->alloc_bits == nullptr) {
    if (s->alloc_bits != nullptr) ::operator delete[](s->alloc_bits, std::align_val_t{64});
    s->alloc_bits = new (std::align_val_t{64}) std::atomic<std::uint64_t>[2 * std::size_t{words}];
  }
  s->words = std::max(words, s->words);
  s->mark_bits = s->alloc_bits + s->words;
  for (std::uint32_t i = 0; i < 2 * s->words; ++i)
    s->alloc_bits[i].store(0, std::memory_order_relaxed);
  s->freeindex = 0;
  s->alloc_cache = 0;
  s->alloc_count.store(0, std::memory_order_relaxed);
  s->needs_bg_sweep.store(false, std::memory_order_relaxed);
  s->next = s->prev = nullptr;
  // Recycled pages hold old objects: the allocator zeroes cells it hands out, except in
  // pages the kernel gives back zeroed.
  s->zeroed = zeroed;
  inuse_.fetch_add(std::size_t{npages} * kPageSize, std::memory_order_relaxed);
  san::poison(reinterpret_cast<void*>(s->base), std::size_t{npages} * kPageSize);
  s->state.store(sc < 0 ? SpanState::kLarge : SpanState::kSmall, std::memory_order_release);
  set_page_map(s, s);
  return s;
}

void PageHeap::free_span(Span* s) {
  s->state.store(SpanState::kFree, std::memory_order_release);
  set_page_map(s, nullptr);
  const std::size_t bytes = std::size_t{s->npages} * kPageSize;
  san::poison(reinterpret_cast<void*>(s->base), bytes);
  inuse_.fetch_sub(bytes, std::memory_order_relaxed);
  drop_side_tables(s);
  runtime::LockGuard l(lock_);
  inuse_spans_.fetch_sub(1, std::memory_order_relaxed);
  std::uintptr_t start = s->base;
  Run run{s->npages, false, os::nanotime()};
  // Coalesce with the runs just below and just above. A merged run counts as not released
  // (the scavenger may release it again: harmless).
  auto next = runs_.find(start + bytes);
  if (next != runs_.end()) {
    if (next->second.released)
      released_.fetch_sub(std::size_t{next->second.npages} * kPageSize, std::memory_order_relaxed);
    run.npages += next->second.npages;
    erase_run(next);
  }
  auto below = runs_.lower_bound(start);
  if (below != runs_.begin()) {
    --below;
    if (below->first + std::uintptr_t{below->second.npages} * kPageSize == start) {
      if (below->second.released)
        released_.fetch_sub(std::size_t{below->second.npages} * kPageSize,
                            std::memory_order_relaxed);
      start = below->first;
      run.npages += below->second.npages;
      erase_run(below);
    }
  }
  insert_run(start, run);
  spare_spans_.push_back(s);
}

std::size_t PageHeap::scavenge(std::size_t max_bytes) {
  const std::int64_t now = os::nanotime();
  std::size_t done = 0;
  runtime::LockGuard l(lock_);
  for (auto& [start, run] : runs_) {
    if (done >= max_bytes) break;
    if (run.released || now - run.freed_at < kScavengeAgeNs) continue;
    const std::size_t bytes = std::size_t{run.npages} * kPageSize;
    os::decommit(reinterpret_cast<void*>(start), bytes);
    run.released = true;
    released_.fetch_add(bytes, std::memory_order_relaxed);
    done += bytes;
  }
  return done;
}

constinit std::atomic<Heap*> g_heap{nullptr};

Heap& init_heap() {
  static Heap* h = [] {
    auto* fresh = new Heap();
    g_heap.store(fresh, std::memory_order_release);
    return fresh;
  }();
  return *h;
}

}  // namespace gort::gc::detail

// The collected heap's memory: size classes, spans, the page heap and the central lists
// (Go's sizeclasses.go, mheap.go, mcentral.go, mspan). The essay on the whole collector is
// docs/design/gc.md; this header holds the data structures every part of it shares.
//
// Layout. One contiguous reservation (the arena, lazily committed) holds every object, so
// "does this word point into the heap" is one subtraction and compare, which conservative
// stack scanning does for every word. The arena is cut into 8 KiB pages; a span is a run
// of pages holding objects of one size class (small spans) or one large object. A page
// map (one Span* per page, itself a lazily committed reservation) maps any address inside
// the arena to its span in O(1).
//
// Objects. An object fills its cell from the first byte: there is no per-object header
// (an 8-byte one made binary-trees' 16-byte nodes 24-byte cells, 1.5x the memory Go
// uses). What a header held lives beside the span, as Go keeps its heap bits:
//   * the type id (for trace and destroy): Span::type, the one type of every object in the
//     span, until a second type is allocated there; then Span::types, one id per cell;
//   * the state word (the count of Ptrs holding it from outside goroutine stacks, and
//     flags): Span::states, one per cell, created on the span's first counted Ptr,
//     finalizer or heap-profile sample. A span without it holds no such object.
// Both tables are created outside busy sections with a CAS (whoever loses frees its copy)
// and freed with the span. A cell is allocated iff its bit in the span's alloc bits is
// set; marking sets the mark bit. Sweeping makes the mark bits the new alloc bits.
//
// Sweep generations (Go's mspan.sweepgen). The heap's sweepgen grows by 2 at the end of
// each mark phase. For a span: sweepgen == heap - 2: needs sweeping; heap - 1: being
// swept; heap: swept and usable. A sweeper claims a span by CAS from heap - 2 to heap - 1.
// Spans sit in per-class central lists (partial: some free cell; full: none), two of each
// indexed by sweepgen parity exactly as in Go: bumping the heap's sweepgen turns the
// "swept" lists into the "unswept" ones without touching a span.
//
// Invariants.
//   * A span in an MCache is swept and in no central list; its alloc bits and freeindex
//     belong to the cache's owner (mcache.cpp). Every other span is in exactly one central
//     list (small) or the large list, or free in the page heap.
//   * Mark bits are all zero at the start of a mark phase: every span is swept before the
//     next cycle starts (collector.cpp, finish_sweep).
//   * Alloc and mark bit words are atomics: the owner writes alloc bits while the collector
//     reads them (conservative lookups), and marking sets mark bits from several threads.
//   * A cell's type is readable once its alloc bit is seen (acquire): the owner records it
//     (Span::type while the span is empty, or types[i]) before the releasing store of the
//     bit, and a types table is filled with Span::type before it is published. Span::type
//     never changes while the span holds an object.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "base/annotations.hpp"
#include "runtime/lock.hpp"

namespace gort::gc::detail {

inline constexpr std::size_t kPageShift = 13;
inline constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;
inline constexpr std::size_t kMaxSmallCell = 32 * 1024;
// Every heap address is below this (checked when the arena is reserved).
inline constexpr std::uintptr_t kMaxHeapAddress = std::uintptr_t{1} << 48;

// ---- Object state -------------------------------------------------------------------

// A cell's state word: bits 0..27 count of holding Ptrs; the flags below.
inline constexpr std::uint32_t kCountMask = (1u << 28) - 1;
inline constexpr std::uint32_t kInRootLog = 1u << 28;     // listed in a root log (roots.cpp)
inline constexpr std::uint32_t kHasFinalizer = 1u << 29;  // in the finalizer table
inline constexpr std::uint32_t kSampled = 1u << 30;       // in the heap profile (heapprof.cpp)

// ---- Size classes -------------------------------------------------------------------

// Cell sizes spaced at most 12.5% apart, as Go's table (sizeclasses.go's
// generator uses the same bound); each class's span has the fewest pages that waste at most
// 1/8 of the span at its tail.
struct SizeClass {
  std::uint32_t cell = 0;
  std::uint32_t pages = 0;
  std::uint32_t cells = 0;  // per span
};
inline constexpr int kMaxClasses = 96;
struct SizeClassTable {
  int count = 0;
  std::array<SizeClass, kMaxClasses> classes{};
  std::array<std::uint8_t, kMaxSmallCell / 8 + 1> by_size{};  // (cell + 7) / 8 -> class
};
extern const SizeClassTable g_size_classes;  // heap.cpp
inline const SizeClassTable& size_classes() {
  return g_size_classes;
}
inline int class_of_cell(std::size_t cell) {
  return size_classes().by_size[(cell + 7) / 8];
}

// ---- Spans --------------------------------------------------------------------------

// Go's divMul: offset / cell == (offset * magic) >> 32 for every offset inside a span of
// a small class (checked for every class and offset by gc_layout_test).
constexpr std::uint32_t cell_index_magic(std::uint32_t cell) {
  return UINT32_MAX / cell + 1;
}

enum class SpanState : std::uint8_t { kFree, kSmall, kLarge };

// Fields the collector reads come first; the ones the owner writes on every allocation
// sit on their own cache line, so that marking (which reads the spans of objects just
// allocated) does not pull that line away from the allocating core at each allocation (a
// precaution, like MCache's alignment, internal.hpp; no difference measured by itself).
struct alignas(64) Span {
  std::uintptr_t base = 0;
  std::uint32_t npages = 0;
  std::uint32_t cell = 0;   // bytes per cell (the whole span for a large object)
  std::uint32_t cells = 0;  // cells in the span
  std::uint32_t words = 0;  // 64-bit words allocated per bitmap (whole lines; may be unused)
  // index_of's reciprocal of cell (cell_index_magic); 0 for a large span (one cell).
  std::uint32_t index_magic = 0;
  int size_class = -1;  // -1: large
  std::atomic<SpanState> state{SpanState::kFree};
  std::atomic<std::uint32_t> sweepgen{0};
  // Set when an object with a destructor or a finalizer is allocated in the span: only the
  // background sweeper sweeps such spans (destructors must not run inside an allocation).
  std::atomic<bool> needs_bg_sweep{false};
  std::atomic<std::uint64_t>* alloc_bits = nullptr;
  std::atomic<std::uint64_t>* mark_bits = nullptr;
  // The type of every object in the span while types is null (0: none allocated yet).
  // Written by the owner only while the span is empty (see the invariants above).
  std::atomic<std::uint32_t> type{0};
  // Per-cell type ids, once the span holds objects of two types (0: abandoned, no type).
  std::atomic<std::atomic<std::uint16_t>*> types{nullptr};
  // Per-cell state words (above), once one is not zero; null: all zero.
  std::atomic<std::atomic<std::uint32_t>*> states{nullptr};
  Span* next = nullptr;  // central list links (guarded by the list's lock)
  Span* prev = nullptr;

  // The owner's line.
  // Go's allocCache: bit k set means cell freeindex + k is free, for the cells from
  // freeindex to the end of its bitmap word; every cell below freeindex is allocated. A
  // zero cache is reloaded from the next bitmap word with a free cell (alloc.cpp). Owner
  // only; sweep resets both.
  alignas(64) std::uint64_t alloc_cache = 0;
  std::uint32_t freeindex = 0;
  // Allocated cells: written by the owner (recomputed by sweep), read by stats() under
  // the owning cache's lock, hence atomic (relaxed).
  std::atomic<std::uint32_t> alloc_count{0};
  // alloc_count when the span entered its cache: the cache counts the difference as its
  // allocations when the span leaves it (Go's allocCountBeforeCache), not one by one.
  std::uint32_t cached_count = 0;
  bool zeroed = false;  // fresh from the OS: cells need no zeroing until reused

  // Acquire: pairs with the allocator's publishing release, so a cell seen allocated has
  // its type recorded.
  bool allocated(std::uint32_t i) const {
    return (alloc_bits[i / 64].load(std::memory_order_acquire) >> (i % 64)) & 1;
  }
  bool marked(std::uint32_t i) const {
    return (mark_bits[i / 64].load(std::memory_order_relaxed) >> (i % 64)) & 1;
  }
  // Sets the mark bit; true if it was clear (the caller greys the object).
  bool try_mark(std::uint32_t i) {
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    if (mark_bits[i / 64].load(std::memory_order_relaxed) & bit) return false;
    return (mark_bits[i / 64].fetch_or(bit, std::memory_order_relaxed) & bit) == 0;
  }
  // The type of allocated cell i (call after seeing its alloc bit).
  std::uint32_t type_of(std::uint32_t i) const {
    const std::atomic<std::uint16_t>* t = types.load(std::memory_order_acquire);
    return t != nullptr ? t[i].load(std::memory_order_relaxed)
                        : type.load(std::memory_order_relaxed);
  }
  // The span's type table, created from Span::type if missing. Outside busy sections
  // (it may allocate); any thread.
  std::atomic<std::uint16_t>* ensure_types();
  // The span's state table, created zeroed if missing. Outside busy sections; any thread.
  std::atomic<std::uint32_t>* ensure_states();
  std::uintptr_t cell_addr(std::uint32_t i) const { return base + std::uintptr_t{i} * cell; }
  // The cell holding addr (any address inside the span). A multiplication by a reciprocal
  // rather than a division: the 64-bit div was a sixth of shade's time.
  std::uint32_t index_of(std::uintptr_t addr) const {
    return static_cast<std::uint32_t>((std::uint64_t{addr - base} * index_magic) >> 32);
  }
  std::uint32_t allocated_cells() const { return alloc_count.load(std::memory_order_relaxed); }
  bool is_full() const { return allocated_cells() == cells; }
  // The bitmap words that hold the span's cells.
  std::uint32_t used_words() const { return (cells + 63) / 64; }
};

// An intrusive doubly linked list of spans.
class SpanList {
 public:
  bool empty() const { return head_ == nullptr; }
  void push(Span* s);
  void remove(Span* s);
  Span* pop();

 private:
  Span* head_ = nullptr;
};

// ---- The page heap ------------------------------------------------------------------

class PageHeap {
 public:
  PageHeap();
  // The arena's bounds, fixed at construction.
  std::uintptr_t arena_base() const { return base_; }
  std::uintptr_t arena_end() const { return end_; }
  bool in_arena(std::uintptr_t a) const { return a - base_ < end_ - base_; }

  // The span holding addr (an in-use one), or null.
  Span* span_of(std::uintptr_t addr) const {
    if (!in_arena(addr)) return nullptr;
    Span* s = page_map_[(addr - base_) >> kPageShift].load(std::memory_order_acquire);
    if (s == nullptr || s->state.load(std::memory_order_relaxed) == SpanState::kFree)
      return nullptr;
    return s;
  }

  // A span of npages for size class sc (-1: one large object of `cell` bytes), swept for
  // the current generation. Null when the arena is exhausted.
  Span* alloc_span(std::uint32_t npages, int sc, std::uint32_t cell) GORT_EXCLUDES(lock_);
  // Returns s's pages (all its cells are free).
  void free_span(Span* s) GORT_EXCLUDES(lock_);

  // Gives pages free for a while back to the OS; returns bytes released.
  std::size_t scavenge(std::size_t max_bytes) GORT_EXCLUDES(lock_);

  std::size_t sys_bytes() const { return sys_.load(std::memory_order_relaxed); }
  std::size_t released_bytes() const { return released_.load(std::memory_order_relaxed); }
  std::size_t inuse_bytes() const { return inuse_.load(std::memory_order_relaxed); }
  std::size_t inuse_spans() const { return inuse_spans_.load(std::memory_order_relaxed); }

  // The current sweep generation (see the top of this file).
  std::uint32_t sweepgen() const { return sweepgen_.load(std::memory_order_acquire); }
  // Ends a mark phase: every in-use span now needs sweeping. Returns the new generation.
  std::uint32_t next_sweepgen() GORT_EXCLUDES(lock_);
  // Spans of the previous generation still to sweep; a sweeper calls swept_one() after each.
  std::int64_t unswept() const { return unswept_.load(std::memory_order_acquire); }
  void swept_one() { unswept_.fetch_sub(1, std::memory_order_acq_rel); }

 private:
  struct Run {
    std::uint32_t npages;
    bool released;  // pages given back to the OS (they read as zero when touched again)
    std::int64_t freed_at;
  };
  std::uintptr_t take_pages(std::uint32_t npages, bool* zeroed) GORT_REQUIRES(lock_);
  void insert_run(std::uintptr_t start, Run r) GORT_REQUIRES(lock_);
  void erase_run(std::map<std::uintptr_t, Run>::iterator it) GORT_REQUIRES(lock_);
  Span* new_span_struct() GORT_REQUIRES(lock_);
  void set_page_map(Span* s, Span* value);

  std::uintptr_t base_ = 0, end_ = 0;
  std::atomic<Span*>* page_map_ = nullptr;
  runtime::Lock lock_;
  std::uintptr_t bump_ GORT_GUARDED_BY(lock_) = 0;             // arena below is in use or free runs
  std::map<std::uintptr_t, Run> runs_ GORT_GUARDED_BY(lock_);  // by address
  std::set<std::pair<std::uint32_t, std::uintptr_t>> by_size_ GORT_GUARDED_BY(lock_);
  std::vector<Span*> spare_spans_ GORT_GUARDED_BY(lock_);
  std::atomic<std::size_t> sys_{0}, released_{0}, inuse_{0}, inuse_spans_{0};
  // Written under lock_ (so a new span gets either generation consistently with the
  // unswept count), read anywhere.
  std::atomic<std::uint32_t> sweepgen_{2};
  std::atomic<std::int64_t> unswept_{0};
};

// ---- Central lists ------------------------------------------------------------------

struct Central {
  runtime::Lock lock;
  // [sweepgen / 2 % 2]: swept; the other: unswept (see the top of this file).
  SpanList partial[2] GORT_GUARDED_BY(lock);
  SpanList full[2] GORT_GUARDED_BY(lock);
};

// ---- Heap-wide state ----------------------------------------------------------------

struct Heap {
  PageHeap pages;
  std::array<Central, kMaxClasses> central;
  Central large;  // large spans: full[] lists only
  // Bytes in cells handed to caches and large objects (Go's heapLive): grows at each
  // cache refill by the span's free bytes, shrinks when a cache returns unused cells, and
  // is reset to the marked bytes at the end of each cycle.
  std::atomic<std::int64_t> live_bytes{0};
  // Large objects allocated (small ones are counted by their cache: MCache), and all
  // objects freed by sweeps.
  std::atomic<std::uint64_t> large_mallocs{0}, large_bytes{0};
  std::atomic<std::uint64_t> frees{0}, freed_bytes{0};
};
// The heap, created on first use (init_heap) and never destroyed: objects may outlive
// main (held by globals), and threads may still allocate while static destructors run.
extern std::atomic<Heap*> g_heap;
Heap& init_heap();
inline Heap& heap() {
  Heap* h = g_heap.load(std::memory_order_acquire);
  return h != nullptr ? *h : init_heap();
}

std::uint32_t swept_index(std::uint32_t sweepgen);    // the swept lists' index
std::uint32_t unswept_index(std::uint32_t sweepgen);  // the unswept lists' index

}  // namespace gort::gc::detail

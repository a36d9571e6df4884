// Allocation: caches, refills and the public allocate() (Go's malloc.go and mcache.go).
//
// The fast path takes no lock. A goroutine on a P allocates from the P's cache inside a
// runtime section (so sysmon cannot hand the P to another thread meanwhile, sched.hpp); a
// thread without a P (a plain thread, or a goroutine whose P sysmon took) uses its own
// thread cache. Either way the cell is taken inside a busy section (mutator.cpp): its
// colour depends on the phase (black while marking, as Go allocates black), and the
// collector may revoke caches at the end of marking (the epoch check below).
//
// A cell is published in this order: its type (recorded in the span, heap.hpp) and
// zeroing, mark bit (black allocation), alloc bit (release). A collector that sees the
// alloc bit (acquire) sees the type.
//
// Refill (a cache's span is full) goes to the central lists: a swept span with free cells,
// else it sweeps unswept spans of the class (only those without destructors or
// finalizers: those run on the background sweeper, never inside an allocation), else it
// takes a new span from the page heap. Heap growth is where the pacer's trigger is checked.
#include <cstring>
#include <new>

#include "base/fatal.hpp"
#include "gc/heapprof.hpp"
#include "gc/internal.hpp"
#include "gc/sanitizer.hpp"
#include "runtime/sched.hpp"

namespace gort::gc::detail {

std::atomic<std::uint32_t> g_cache_epoch{1};
std::atomic<std::int64_t> g_large_black_bytes{0};
constinit std::atomic<const TypeInfo*> g_types[kMaxTypes];

namespace {

runtime::Lock g_types_lock;
std::uint32_t g_next_type GORT_GUARDED_BY(g_types_lock) = 1;  // 0: no type

runtime::Lock g_caches_lock;
MCache* g_all_caches GORT_GUARDED_BY(g_caches_lock) = nullptr;
std::vector<MCache*> g_spare_caches GORT_GUARDED_BY(g_caches_lock);

// Assist debt (bytes allocated while marking) above which a goroutine does mark work.
constexpr std::int64_t kAssistChunk = 64 * 1024;

// Loads the span's alloc cache from the first bitmap word at or after freeindex's with a
// free cell (none: freeindex = cells). Called when the cache is empty: the cells from
// freeindex to the end of its word are allocated, so the search starts at the next word
// boundary (at freeindex itself when it is one). Owner only.
__attribute__((noinline)) void reload_alloc_cache(Span* s) {
  for (std::uint32_t w = (s->freeindex + 63) / 64; w < s->used_words(); ++w) {
    std::uint64_t free = ~s->alloc_bits[w].load(std::memory_order_relaxed);
    const std::uint32_t beyond = (w + 1) * 64 > s->cells ? (w + 1) * 64 - s->cells : 0;
    free &= ~std::uint64_t{0} >> beyond;  // cells past the span's end are not free
    if (free != 0) {
      s->freeindex = w * 64;
      s->alloc_cache = free;
      return;
    }
  }
  s->freeindex = s->cells;
}

// Whether the span has a free cell in its alloc cache, reloading an empty one if kReload.
template <bool kReload>
inline bool has_free(Span* s) {
  if (s->alloc_cache != 0) [[likely]]
    return true;
  if (!kReload) return false;
  reload_alloc_cache(s);
  return s->alloc_cache != 0;
}

// The next free cell's index, after has_free; take it with take_free (owner only).
inline std::uint32_t next_free(const Span* s) {
  return s->freeindex + static_cast<std::uint32_t>(__builtin_ctzll(s->alloc_cache));
}

// Takes cell i, next_free's answer, out of the alloc cache.
inline void take_free(Span* s, std::uint32_t i) {
  s->alloc_cache = (s->alloc_cache >> (i - s->freeindex)) >> 1;  // (a shift by 64 is undefined)
  s->freeindex = i + 1;
}

// A reused cell may still be read by a marker that traced its previous object (atomic
// loads of its Members, ordered before the reuse by the handshake and sweep,
// which TSan does not follow through fibers): under TSan the cell is zeroed with atomic
// stores, which it pairs with those loads; elsewhere with memset.
__attribute__((always_inline)) inline void zero_cell(std::uintptr_t cell, std::size_t bytes) {
#if GORT_TSAN
  for (std::size_t off = 0; off < bytes; off += 8)
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(cell + off))
        .store(0, std::memory_order_relaxed);
#else
  // The classes up to 64 bytes (the common case) are cleared with constant-size memsets,
  // which the compiler turns into a few stores in line. A call to memset cost 5% of
  // binary-trees (16-byte cells), and a loop is no better: GCC makes it a rep stos.
  void* p = reinterpret_cast<void*>(cell);
  switch (bytes) {
    case 8:
      std::memset(p, 0, 8);
      return;
    case 16:
      std::memset(p, 0, 16);
      return;
    case 24:
      std::memset(p, 0, 24);
      return;
    case 32:
      std::memset(p, 0, 32);
      return;
    case 48:
      std::memset(p, 0, 48);
      return;
    case 64:
      std::memset(p, 0, 64);
      return;
    default:
      std::memset(p, 0, bytes);
  }
#endif
}

// Makes a free cell ready for its object: unpoisoned, zero-filled.
__attribute__((always_inline)) inline void prepare_cell(std::uintptr_t cell, std::size_t bytes,
                                                        bool zeroed) {
  san::unpoison(reinterpret_cast<void*>(cell), bytes);
  if (!zeroed) zero_cell(cell, bytes);
}

// Publishes cell i of s as allocated (black while marking). Owner of s only.
__attribute__((always_inline)) inline void publish(Span* s, std::uint32_t i, bool black) {
  if (black) s->try_mark(i);
  auto& word = s->alloc_bits[i / 64];
  // Release: the type record and zeroing happen before a collector sees the cell
  // allocated.
  word.store(word.load(std::memory_order_relaxed) | (std::uint64_t{1} << (i % 64)),
             std::memory_order_release);
}

// Records the type of a new object in cell i of s; false if the span first needs a type
// table (it holds objects of another type and has none). Owner of s, in a busy section.
__attribute__((always_inline)) inline bool record_type(Span* s, std::uint32_t i,
                                                       std::uint32_t type) {
  if (std::atomic<std::uint16_t>* types = s->types.load(std::memory_order_acquire)) {
    types[i].store(static_cast<std::uint16_t>(type), std::memory_order_relaxed);
    return true;
  }
  if (s->type.load(std::memory_order_relaxed) == type) return true;
  if (s->allocated_cells() != 0) return false;
  // A cached span with no object is fresh from the page heap: no reader looks at its
  // type until a cell's alloc bit is set.
  s->type.store(type, std::memory_order_relaxed);
  return true;
}

// take_cell's answers when the span needs a side table first (never a cell: cells are
// aligned).
constexpr std::uintptr_t kNeedsTypeTable = 1;
constexpr std::uintptr_t kNeedsStateTable = 2;

// The newborn object in cell i of s gets its first count, for the Ptr that make() will
// build on a thread whose registers no scan reads (MutatorState::precounted): the same
// steps as retain (roots.cpp), inside the allocation's busy section, so that no cycle can
// end between the allocation and the count. The cell is black if marking: no shade.
void precount(MutatorState* ms, Span* s, std::atomic<std::uint32_t>* states, std::uint32_t i) {
  const std::uintptr_t cell = s->cell_addr(i);
  const std::uint32_t old = states[i].fetch_add(1, std::memory_order_seq_cst);
  if ((old & kInRootLog) == 0 &&
      (states[i].fetch_or(kInRootLog, std::memory_order_seq_cst) & kInRootLog) == 0) {
    runtime::LockGuard l(ms->lock);
    ms->root_log.push_back(reinterpret_cast<const void*>(cell));
  }
  ms->precounted.push_back(reinterpret_cast<const void*>(cell));
}

// Takes a cell from the cache's span of class sc; 0 if the span is full or missing,
// kNeedsTypeTable or kNeedsStateTable if it must get a side table first. Inside a busy
// section, by the cache's owner. marking: the phase is kMark. counted: the object gets
// its first count (precount; null ms: it does not).
// kReload: reload an empty alloc cache (else answer 0).
template <bool kReload = true>
std::uintptr_t take_cell(MCache* c, int sc, std::uint32_t type, bool dtor, bool marking,
                         MutatorState* counted) {
  Span* s = c->spans[sc];
  if (s == nullptr || !has_free<kReload>(s)) return 0;
  const bool black = marking && marks_span(s);
  const std::uint32_t i = next_free(s);
  std::atomic<std::uint32_t>* states = nullptr;
  if (counted != nullptr) [[unlikely]] {
    states = s->states.load(std::memory_order_acquire);
    if (states == nullptr) return kNeedsStateTable;
  }
  if (!record_type(s, i, type)) return kNeedsTypeTable;
  const std::uintptr_t cell = s->cell_addr(i);
  prepare_cell(cell, s->cell, s->zeroed);
  if (dtor) s->needs_bg_sweep.store(true, std::memory_order_relaxed);
  publish(s, i, black);
  take_free(s, i);
  s->alloc_count.store(s->allocated_cells() + 1, std::memory_order_relaxed);
  if (black) c->black_bytes += s->cell;
  if (counted != nullptr) [[unlikely]]
    precount(counted, s, states, i);
  return cell;
}

// Gives the cache's span of class sc the side table take_cell asked for (kNeedsTypeTable
// or kNeedsStateTable). Under the cache's lock, so that the span cannot leave the cache,
// be swept or be freed meanwhile.
void add_side_table(MCache* c, int sc, std::uintptr_t which) {
  runtime::LockGuard l(c->lock);
  Span* s = c->spans[sc];
  if (s == nullptr) return;
  if (which == kNeedsTypeTable) {
    s->ensure_types();
  } else {
    s->ensure_states();
  }
}

// The allocations made from c's span s since it entered c.
std::uint32_t allocated_while_cached(const Span* s) {
  return s->allocated_cells() - s->cached_count;
}

// A span that leaves cache c: its unused cells no longer count as live, and its
// allocations count as c's. Under c's lock.
void uncache(MCache* c, Span* s) {
  const std::uint32_t n = allocated_while_cached(s);
  c->mallocs.store(c->mallocs.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  c->alloc_bytes.store(c->alloc_bytes.load(std::memory_order_relaxed) + std::uint64_t{n} * s->cell,
                       std::memory_order_relaxed);
  const std::int64_t unused = static_cast<std::int64_t>(s->cells - s->allocated_cells());
  heap().live_bytes.fetch_sub(unused * s->cell, std::memory_order_relaxed);
  return_span(s);
}

// Gives c a span of class sc with a free cell. False when the heap is exhausted.
bool refill(MCache* c, int sc) {
  runtime::LockGuard l(c->lock);
  if (c->epoch.load(std::memory_order_relaxed) != g_cache_epoch.load(std::memory_order_acquire))
    flush_cache(c);
  if (Span* old = c->spans[sc]) {
    if (!old->is_full()) return true;  // someone else's flush raced us: nothing to do
    c->spans[sc] = nullptr;
    uncache(c, old);
  }
  Span* s = take_swept_span(sc);
  if (s == nullptr) {
    const SizeClass& k = size_classes().classes[sc];
    s = heap().pages.alloc_span(k.pages, sc, k.cell);
    if (s == nullptr) return false;
  }
  c->spans[sc] = s;
  s->cached_count = s->allocated_cells();
  const std::int64_t fresh = static_cast<std::int64_t>(s->cells - s->cached_count);
  const std::int64_t live =
      heap().live_bytes.fetch_add(fresh * s->cell, std::memory_order_relaxed) + fresh * s->cell;
  maybe_trigger(live);
  return true;
}

// Heap profile sampling and mark assists, after an allocation (outside any section), when
// count_allocation finds one due. Not inlined, so that the sampled stack has a fixed
// shape: this, then the allocator's frames (skip of them in all), then the caller.
__attribute__((noinline)) void allocation_slow_path(MutatorState* ms, std::uintptr_t cell,
                                                    std::size_t bytes, bool black, int skip) {
  if (ms->sample_countdown < 0) {
    sample_allocation(cell, bytes, skip);
    ms->sample_countdown = next_sample_distance();
  }
  if (black) {
    ms->assist_debt += static_cast<std::int64_t>(bytes);
    if (ms->assist_debt > kAssistChunk) assist(ms);
  }
}

// Counts an allocation towards the next heap profile sample and, if it was black, towards
// the thread's assist debt. Inlined: most allocations only move the sample countdown.
__attribute__((always_inline)) inline void count_allocation(MutatorState* ms, std::uintptr_t cell,
                                                            std::size_t bytes, bool black,
                                                            int skip) {
  ms->sample_countdown -= static_cast<std::int64_t>(bytes);
  if (ms->sample_countdown < 0 || black) [[unlikely]]
    allocation_slow_path(ms, cell, bytes, black, skip);
}

[[noreturn]] void out_of_memory() {
  throw std::bad_alloc();
}

// The span of a large object was taken from the page heap before its object was zeroed,
// and marking may have ended since, moving the sweep generation. Left at the old
// generation, the span would be swept with the finished cycle's marks, in which the new
// object is white: freed while its caller holds it. A span with no object yet has
// nothing to sweep, so it joins the current generation, and counts as swept for the
// generation that counted it among its unswept spans (at most one generation can pass:
// the next cycle's sweep termination waits for that count). Called in the busy section
// after the phase is read: seeing the phase a cycle set implies seeing the generation it
// set before it (g_phase is seq_cst, next_sweepgen's store release).
void adopt_current_generation(Span* s) {
  const std::uint32_t sg = heap().pages.sweepgen();
  if (s->sweepgen.load(std::memory_order_relaxed) == sg) return;
  s->sweepgen.store(sg, std::memory_order_relaxed);
  heap().pages.swept_one();
}

__attribute__((noinline)) void* allocate_large(std::size_t size, std::uint32_t type, bool dtor,
                                               int skip) {
  const std::size_t bytes = (size + kPageSize - 1) & ~(kPageSize - 1);
  if (bytes > heap().pages.arena_end() - heap().pages.arena_base()) out_of_memory();
  const auto npages = static_cast<std::uint32_t>(bytes / kPageSize);
  Span* s = heap().pages.alloc_span(npages, -1, static_cast<std::uint32_t>(bytes));
  if (s == nullptr) {
    collect();  // the arena is full of garbage, perhaps
    s = heap().pages.alloc_span(npages, -1, static_cast<std::uint32_t>(bytes));
    if (s == nullptr) out_of_memory();
  }
  // The object's only reference until it is returned: the stack scan that roots it must
  // see this address (a conservative scan cannot follow s, a Span outside the heap).
  const std::uintptr_t cell = s->base;
  MutatorState* ms = mutator();
  prepare_cell(cell, s->cell, s->zeroed);
  s->type.store(type, std::memory_order_relaxed);  // fresh span: read after the alloc bit
  if (dtor) s->needs_bg_sweep.store(true, std::memory_order_relaxed);
  s->alloc_count.store(1, std::memory_order_relaxed);
  // Without a goroutine, the object is counted (precount); its span is not yet published.
  runtime::M* m = runtime::current_m();
  std::atomic<std::uint32_t>* states =
      m == nullptr || m->curg == nullptr ? s->ensure_states() : nullptr;
  bool black;
  {
    Busy busy(ms);
    const bool marking = current_phase() == kMark;
    adopt_current_generation(s);
    black = marking && marks_span(s);
    publish(s, 0, black);
    if (states != nullptr) precount(ms, s, states, 0);
  }
  if (black) g_large_black_bytes.fetch_add(s->cell, std::memory_order_relaxed);
  return_span(s);
  const std::int64_t live =
      heap().live_bytes.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed) +
      static_cast<std::int64_t>(bytes);
  maybe_trigger(live);
  wait_for_marking_past_goal();
  heap().large_mallocs.fetch_add(1, std::memory_order_relaxed);
  heap().large_bytes.fetch_add(bytes, std::memory_order_relaxed);
  count_allocation(ms, cell, bytes, black, skip);
  // Kept in a register or a stack slot across every call above, where a scan finds it,
  // rather than reloaded from s.
  asm volatile("" : : "r"(cell) : "memory");
  return reinterpret_cast<void*>(cell);
}

}  // namespace

std::uint32_t register_type(const TypeInfo* info) {
  runtime::LockGuard l(g_types_lock);
  if (g_next_type >= kMaxTypes) base::fatal("gc: too many collected types (65535)");
  const std::uint32_t id = g_next_type++;
  g_types[id].store(info, std::memory_order_release);
  return id;
}

MCache* new_cache() {
  runtime::LockGuard l(g_caches_lock);
  MCache* c;
  if (!g_spare_caches.empty()) {
    c = g_spare_caches.back();
    g_spare_caches.pop_back();
  } else {
    c = new MCache();
    c->next_all = g_all_caches;
    g_all_caches = c;
  }
  c->epoch.store(g_cache_epoch.load(std::memory_order_acquire), std::memory_order_relaxed);
  return c;
}

void renew_cache(MCache* c) {
  runtime::LockGuard l(c->lock);
  flush_cache(c);  // empty since its thread's exit: this brings its epoch up to date
}

MCache* p_cache(runtime::P* p) {
  if (p->gc_cache == nullptr) p->gc_cache = new_cache();
  return static_cast<MCache*>(p->gc_cache);
}

void release_p_cache(runtime::P* p) {
  auto* c = static_cast<MCache*>(p->gc_cache);
  if (c == nullptr) return;
  p->gc_cache = nullptr;
  {
    runtime::LockGuard l(c->lock);
    flush_cache(c);
  }
  runtime::LockGuard l(g_caches_lock);
  g_spare_caches.push_back(c);
}

void flush_cache(MCache* c) {
  for (Span*& s : c->spans) {
    if (s != nullptr) uncache(c, s);
    s = nullptr;
  }
  c->epoch.store(g_cache_epoch.load(std::memory_order_acquire), std::memory_order_release);
}

std::int64_t flush_all_caches() {
  std::int64_t black = 0;
  runtime::LockGuard l(g_caches_lock);
  for (MCache* c = g_all_caches; c != nullptr; c = c->next_all) {
    runtime::LockGuard cl(c->lock);
    if (c->epoch.load(std::memory_order_relaxed) != g_cache_epoch.load(std::memory_order_relaxed))
      flush_cache(c);
    black += c->black_bytes;
    c->black_bytes = 0;
  }
  return black + g_large_black_bytes.exchange(0, std::memory_order_relaxed);
}

void cache_totals(std::uint64_t* mallocs, std::uint64_t* bytes) {
  *mallocs = heap().large_mallocs.load(std::memory_order_relaxed);
  *bytes = heap().large_bytes.load(std::memory_order_relaxed);
  runtime::LockGuard l(g_caches_lock);
  for (MCache* c = g_all_caches; c != nullptr; c = c->next_all) {
    runtime::LockGuard cl(c->lock);  // its spans stay in it
    *mallocs += c->mallocs.load(std::memory_order_relaxed);
    *bytes += c->alloc_bytes.load(std::memory_order_relaxed);
    for (const Span* s : c->spans) {
      if (s == nullptr) continue;
      *mallocs += allocated_while_cached(s);
      *bytes += std::uint64_t{allocated_while_cached(s)} * s->cell;
    }
  }
}

void return_span(Span* s) {
  const std::uint32_t sg = heap().pages.sweepgen();
  Central& c = s->size_class < 0 ? heap().large : heap().central[s->size_class];
  // A span cached since before the last generation bump still needs sweeping for it.
  const std::uint32_t idx =
      s->sweepgen.load(std::memory_order_relaxed) == sg ? swept_index(sg) : unswept_index(sg);
  runtime::LockGuard l(c.lock);
  if (s->size_class >= 0 && !s->is_full()) {
    c.partial[idx].push(s);
  } else {
    c.full[idx].push(s);
  }
}

namespace {

// A small allocation, every case: a cell of class sc from the cache, refilled as needed;
// null when the heap is exhausted. It reads its thread-locals directly
// (runtime::current_m_in_leaf): it never switches goroutines (sections never block,
// refills and assists block the thread at most) and is not inlined. skip: the frames
// above the heap profile's sample point that are the allocator's own
// (allocation_slow_path, this, and the callers up to the user's code).
__attribute__((noinline)) void* allocate_small_anyhow(int sc, std::uint32_t type, bool dtor,
                                                      int skip) {
  MutatorState* ms = mutator_in_leaf();
  runtime::M* m = runtime::current_m_in_leaf();
  const bool on_goroutine = m != nullptr && m->curg != nullptr;
  for (;;) {
    if (on_goroutine) runtime::enter_runtime(m);
    MCache* c = ms->cache;
    if (on_goroutine && m->p != nullptr) {
      c = static_cast<MCache*>(m->p->gc_cache);
      if (c == nullptr) [[unlikely]]
        c = p_cache(m->p);
    }
    std::uintptr_t cell = 0;
    bool black = false;
    // Without a goroutine, no scan reads this thread's registers: the object is counted.
    MutatorState* counted = on_goroutine ? nullptr : ms;
    enter_busy(ms);
    // The phase is read before the epoch. The collector revokes caches (epoch) and then
    // turns marking off, with no stop between the two. Read the other way round, an
    // allocation could see the old epoch (its cached span still valid) and then the phase
    // already off, and take a white cell from a span about to be swept with the finished
    // cycle's marks: freed while reachable. Seeing the phase off now implies seeing the
    // new epoch (seq_cst load, then a load ordered after it), so such a cache is refilled.
    const bool marking = current_phase() == kMark;
    // Acquire: pairs with flush_cache's release, so a cache the collector flushed is seen
    // empty.
    if (c->epoch.load(std::memory_order_acquire) == g_cache_epoch.load(std::memory_order_relaxed)) {
      black = marking;
      cell = take_cell(c, sc, type, dtor, black, counted);
    }
    exit_busy(ms);
    bool refilled = true;
    if (cell == kNeedsTypeTable || cell == kNeedsStateTable) {
      add_side_table(c, sc, cell);
      cell = 0;
    } else if (cell == 0) {
      refilled = refill(c, sc);
    }
    if (on_goroutine) runtime::exit_runtime(m);
    if (cell != 0) {
      count_allocation(ms, cell, size_classes().classes[sc].cell, black, skip);
      return reinterpret_cast<void*>(cell);
    }
    if (!refilled) return nullptr;
    wait_for_marking_past_goal();
  }
}

// Every small allocation allocate's fast path does not finish, with a collection when the
// heap is exhausted. A separate frame: allocate reads thread-locals directly, and the
// collection may resume this goroutine on another thread.
__attribute__((noinline)) void* allocate_small_slow(int sc, std::uint32_t type, bool dtor) {
  // A heap profile sample's stack: allocation_slow_path, allocate_small_anyhow, this,
  // allocate, then the caller.
  constexpr int kSkip = 4;
  void* obj = allocate_small_anyhow(sc, type, dtor, kSkip);
  if (obj == nullptr) [[unlikely]] {
    collect();  // the arena is full of garbage, perhaps
    obj = allocate_small_anyhow(sc, type, dtor, kSkip);
    if (obj == nullptr) out_of_memory();
  }
  asm volatile("" ::: "memory");  // not a tail call: this frame is in the sample's stack
  return obj;
}

}  // namespace

// The common case of a small allocation is done here, in the function that make() calls,
// to keep it short (binary-trees spends half its time here): a goroutine on a P whose
// cache's span of class sc has a free cell in its alloc cache. Anything else (no P, a
// revoked cache, a full span, a side table to create, a plain thread) goes to
// allocate_small_slow. The same protocol as allocate_small_anyhow: runtime section, busy
// section, phase before epoch (see there). A leaf for runtime::current_m_in_leaf: the
// calls after which the goroutine may run on another thread read no thread-local here.
__attribute__((noinline)) void* allocate(std::size_t size, std::uint32_t type, bool dtor) {
  if (size > kMaxSmallCell) [[unlikely]] {
    // A heap profile sample's stack: allocation_slow_path, allocate_large, this, then the
    // caller.
    void* obj = allocate_large(size, type, dtor, 3);
    asm volatile("" ::: "memory");  // not a tail call: this frame is in the sample's stack
    return obj;
  }
  const int sc = class_of_cell(size);
  MutatorState* ms = t_mutator_state;
  runtime::M* m = runtime::current_m_in_leaf();
  if (ms != nullptr && m != nullptr && m->curg != nullptr) [[likely]] {
    runtime::enter_runtime(m);
    runtime::P* p = m->p;
    auto* c = p != nullptr ? static_cast<MCache*>(p->gc_cache) : nullptr;
    std::uintptr_t cell = 0;
    bool marking = false;
    if (c != nullptr) [[likely]] {
      enter_busy(ms);
      marking = current_phase() == kMark;
      if (c->epoch.load(std::memory_order_acquire) == g_cache_epoch.load(std::memory_order_relaxed))
          [[likely]]
        cell = take_cell<false>(c, sc, type, dtor, marking, nullptr);
      exit_busy(ms);
    }
    runtime::exit_runtime(m);
    if (cell > kNeedsStateTable) [[likely]] {
      // A sample's stack: allocation_slow_path, this, then the caller.
      count_allocation(ms, cell, size_classes().classes[sc].cell, marking, 2);
      return reinterpret_cast<void*>(cell);
    }
  }
  void* obj = allocate_small_slow(sc, type, dtor);
  asm volatile("" ::: "memory");  // not a tail call: this frame is in the sample's stack
  return obj;
}

void abandon(void* obj) noexcept {
  const auto addr = reinterpret_cast<std::uintptr_t>(obj);
  Span* s = heap().pages.span_of(addr);  // held by the caller: allocated, not freed
  if (s == nullptr) base::fatal("gc: abandon of memory outside the collected heap");
  // Type 0: garbage without trace or destructor (its constructor did not finish).
  s->ensure_types()[s->index_of(addr)].store(0, std::memory_order_relaxed);
  if (take_precount(obj)) unhold(obj);
}

}  // namespace gort::gc::detail

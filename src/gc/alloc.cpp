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

// The next free cell's index, or cells if none (owner only).
std::uint32_t next_free(Span* s) {
  for (std::uint32_t w = s->freeindex / 64; w < s->words; ++w) {
    std::uint64_t free = ~s->alloc_bits[w].load(std::memory_order_relaxed);
    if (w == s->freeindex / 64) free &= ~std::uint64_t{0} << (s->freeindex % 64);
    if (free != 0) {
      const std::uint32_t i = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(free));
      if (i >= s->cells) break;
      s->freeindex = i;
      return i;
    }
  }
  s->freeindex = s->cells;
  return s->cells;
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
void publish(Span* s, std::uint32_t i, bool black) {
  if (black) s->try_mark(i);
  auto& word = s->alloc_bits[i / 64];
  // Release: the type record and zeroing happen before a collector sees the cell
  // allocated.
  word.store(word.load(std::memory_order_relaxed) | (std::uint64_t{1} << (i % 64)),
             std::memory_order_release);
}

// Records the type of a new object in cell i of s; false if the span first needs a type
// table (it holds objects of another type and has none). Owner of s, in a busy section.
bool record_type(Span* s, std::uint32_t i, std::uint32_t type) {
  if (std::atomic<std::uint16_t>* types = s->types.load(std::memory_order_acquire)) {
    types[i].store(static_cast<std::uint16_t>(type), std::memory_order_relaxed);
    return true;
  }
  if (s->type.load(std::memory_order_relaxed) == type) return true;
  if (s->alloc_count != 0) return false;
  // A cached span with no object is fresh from the page heap: no reader looks at its
  // type until a cell's alloc bit is set.
  s->type.store(type, std::memory_order_relaxed);
  return true;
}

// take_cell's answer when the span needs a type table (never a cell: cells are aligned).
constexpr std::uintptr_t kNeedsTypeTable = 1;

// Takes a cell from the cache's span of class sc; 0 if the span is full or missing,
// kNeedsTypeTable if it must get a type table first. Inside a busy section, by the
// cache's owner. marking: the phase is kMark.
std::uintptr_t take_cell(MCache* c, int sc, std::uint32_t type, bool dtor, bool marking) {
  Span* s = c->spans[sc];
  if (s == nullptr) return 0;
  const bool black = marking && marks_span(s);
  const std::uint32_t i = next_free(s);
  if (i == s->cells) return 0;
  if (!record_type(s, i, type)) return kNeedsTypeTable;
  const std::uintptr_t cell = s->cell_addr(i);
  prepare_cell(cell, s->cell, s->zeroed);
  if (dtor) s->needs_bg_sweep.store(true, std::memory_order_relaxed);
  publish(s, i, black);
  s->freeindex = i + 1;
  ++s->alloc_count;
  if (black) c->black_bytes += s->cell;
  c->mallocs.store(c->mallocs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  c->alloc_bytes.store(c->alloc_bytes.load(std::memory_order_relaxed) + s->cell,
                       std::memory_order_relaxed);
  return cell;
}

// Gives the cache's span of class sc a type table (take_cell asked for one). Under the
// cache's lock, so that the span cannot leave the cache, be swept or be freed meanwhile.
void add_type_table(MCache* c, int sc) {
  runtime::LockGuard l(c->lock);
  if (Span* s = c->spans[sc]) s->ensure_types();
}

// A span that leaves a cache: its unused cells no longer count as live.
void uncache(Span* s) {
  const std::int64_t unused = static_cast<std::int64_t>(s->cells - s->alloc_count);
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
    uncache(old);
  }
  Span* s = take_swept_span(sc);
  if (s == nullptr) {
    const SizeClass& k = size_classes().classes[sc];
    s = heap().pages.alloc_span(k.pages, sc, k.cell);
    if (s == nullptr) return false;
  }
  c->spans[sc] = s;
  const std::int64_t fresh = static_cast<std::int64_t>(s->cells - s->alloc_count);
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
  s->alloc_count = 1;
  bool black;
  {
    Busy busy(ms);
    const bool marking = current_phase() == kMark;
    adopt_current_generation(s);
    black = marking && marks_span(s);
    publish(s, 0, black);
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
    if (s != nullptr) uncache(s);
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
    *mallocs += c->mallocs.load(std::memory_order_relaxed);
    *bytes += c->alloc_bytes.load(std::memory_order_relaxed);
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

// A small allocation: a cell of class sc from the cache, refilled as needed; null when the
// heap is exhausted. The fast path of binary-trees-like programs, so it reads its
// thread-locals directly (runtime::current_m_in_leaf): it never switches goroutines
// (sections never block, refills and assists block the thread at most) and is not
// inlined. skip: the frames above the heap profile's sample point that are the
// allocator's own (allocation_slow_path, this, and the callers up to the user's code).
__attribute__((noinline)) void* allocate_small(int sc, std::uint32_t type, bool dtor, int skip) {
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
      cell = take_cell(c, sc, type, dtor, black);
    }
    exit_busy(ms);
    bool refilled = true;
    if (cell == kNeedsTypeTable) {
      add_type_table(c, sc);
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

}  // namespace

void* allocate(std::size_t size, std::uint32_t type, bool dtor) {
  // A heap profile sample's stack: allocation_slow_path, allocate_small or allocate_large,
  // this, then the caller, so neither call may be a tail call (which would remove this
  // frame).
  constexpr int kSkip = 3;
  if (size > kMaxSmallCell) {
    void* obj = allocate_large(size, type, dtor, kSkip);
    asm volatile("" ::: "memory");  // not a tail call: this frame is in the sample's stack
    return obj;
  }
  const int sc = class_of_cell(size);
  void* obj = allocate_small(sc, type, dtor, kSkip);
  if (obj == nullptr) [[unlikely]] {
    collect();  // the arena is full of garbage, perhaps (may resume on another thread)
    obj = allocate_small(sc, type, dtor, kSkip);
    if (obj == nullptr) out_of_memory();
  }
  return obj;
}

void abandon(void* obj) noexcept {
  const auto addr = reinterpret_cast<std::uintptr_t>(obj);
  Span* s = heap().pages.span_of(addr);  // held by the caller: allocated, not freed
  if (s == nullptr) base::fatal("gc: abandon of memory outside the collected heap");
  // Type 0: garbage without trace or destructor (its constructor did not finish).
  s->ensure_types()[s->index_of(addr)].store(0, std::memory_order_relaxed);
}

}  // namespace gort::gc::detail

// Sweeping (Go's mgcsweep.go): after marking, every span is swept once before the next
// cycle marks. Sweeping a span frees its unmarked cells (running destructors, queueing
// finalizers) and makes the mark bits the new alloc bits.
//
// Who sweeps. The collector's thread sweeps in the background right after marking ends;
// an allocator that needs a span sweeps spans of its class on the way (lazy sweeping),
// except spans holding objects with destructors or finalizers (Span::needs_bg_sweep):
// user code never runs inside an allocation. A sweeper owns the span it claimed: it took
// it out of an unswept central list under the list's lock and set sweepgen = heap - 1.
//
// Destructors run on the background sweeper's thread, in no particular order among the
// objects of one cycle; the objects their Members point to may already be destroyed.
#include <bit>
#include <thread>

#include "gc/heapprof.hpp"
#include "gc/internal.hpp"
#include "gc/sanitizer.hpp"
#include "runtime/gc_hooks.hpp"

namespace gort::gc::detail {

namespace {

// Frees the dead cell i of s (or resurrects it for its finalizer: returns false).
// states: the span's state table (null: every state is 0). A span with neither a state
// table nor destructors is swept without touching its objects' memory.
bool free_cell(Span* s, std::atomic<std::uint32_t>* states, std::uint32_t i, bool with_user_code) {
  const std::uintptr_t cell = s->cell_addr(i);
  const std::uint32_t state = states != nullptr ? states[i].load(std::memory_order_relaxed) : 0;
  if (with_user_code) {
    if ((state & kHasFinalizer) != 0 && queue_finalizer(cell)) return false;
    const TypeInfo* t = type_info(s->type_of(i));
    if (t != nullptr && t->destroy != nullptr) t->destroy(reinterpret_cast<void*>(cell));
  }
  if ((state & kSampled) != 0) sampled_free(cell, s->cell);
  if (states != nullptr) states[i].store(0, std::memory_order_relaxed);  // clean for reuse
  san::poison(reinterpret_cast<void*>(cell), s->cell);
  return true;
}

// Claims a span of an unswept list of c (or null). The generation is read under the
// list's lock: read before it, it could be a generation that has since ended, whose
// unswept lists are the new generation's swept ones, and a span already swept (and
// perhaps being marked again) would be swept a second time. Read under it, every span on
// the list was counted unswept in this generation, so the generation cannot move (sweep
// termination waits for that count) until this span is swept.
Span* claim_unswept(Central& c, bool with_user_code) {
  runtime::LockGuard l(c.lock);
  const std::uint32_t sg = heap().pages.sweepgen();
  const std::uint32_t u = unswept_index(sg);
  for (SpanList* list : {&c.partial[u], &c.full[u]}) {
    if (list->empty()) continue;
    Span* s = list->pop();
    if (!with_user_code && s->needs_bg_sweep.load(std::memory_order_relaxed)) {
      list->push(s);  // left for the background sweeper (it pops from the head too)
      continue;
    }
    s->sweepgen.store(sg - 1, std::memory_order_relaxed);
    return s;
  }
  return nullptr;
}

void put_swept(Span* s) {
  return_span(s);  // sweepgen == heap: goes to a swept list
}

}  // namespace

bool sweep_span(Span* s, bool with_user_code, bool keep_empty) {
  runtime::san::tsan_acquire(&runtime::gc_hooks::g_tsan_reuse_sync);  // see gc_hooks.hpp
  const std::uint32_t sg = heap().pages.sweepgen();
  std::int64_t freed = 0;
  std::uint32_t live = 0;
  std::atomic<std::uint32_t>* states = s->states.load(std::memory_order_acquire);
  // Without states, destructors or poisoning, a dead cell needs nothing but counting.
  const bool per_cell =
      san::kPoisons || states != nullptr || s->needs_bg_sweep.load(std::memory_order_relaxed);
  for (std::uint32_t w = 0; w < s->used_words(); ++w) {
    std::uint64_t mark = s->mark_bits[w].load(std::memory_order_relaxed);
    std::uint64_t dead = s->alloc_bits[w].load(std::memory_order_relaxed) & ~mark;
    if (!per_cell) {
      freed += std::popcount(dead);
      dead = 0;
    }
    while (dead != 0) {
      const int b = std::countr_zero(dead);
      dead &= dead - 1;
      if (free_cell(s, states, w * 64 + static_cast<std::uint32_t>(b), with_user_code)) {
        ++freed;
      } else {
        mark |= std::uint64_t{1} << b;  // resurrected for its finalizer
      }
    }
    s->alloc_bits[w].store(mark, std::memory_order_relaxed);
    s->mark_bits[w].store(0, std::memory_order_relaxed);
    live += static_cast<std::uint32_t>(std::popcount(mark));
  }
  s->alloc_count.store(live, std::memory_order_relaxed);
  s->freeindex = 0;
  s->alloc_cache = 0;
  if (freed != 0) s->zeroed = false;
  heap().frees.fetch_add(static_cast<std::uint64_t>(freed), std::memory_order_relaxed);
  heap().freed_bytes.fetch_add(static_cast<std::uint64_t>(freed) * s->cell,
                               std::memory_order_relaxed);
  // Release: the bitmaps are rewritten before anyone sees the span swept.
  s->sweepgen.store(sg, std::memory_order_release);
  // An empty span leaves the in-use count before it counts as swept: counted swept first,
  // it could let the next cycles run while this thread is descheduled, be counted in use
  // (so unswept) when marking ends, and then be freed without that count ever coming
  // down: sweep termination would wait for it forever.
  const bool freed_span = live == 0 && !keep_empty;
  if (freed_span) heap().pages.free_span(s);
  heap().pages.swept_one();
  return !freed_span;
}

Span* take_swept_span(int sc) {
  Central& c = heap().central[sc];
  {
    // A span swept in a generation that ends meanwhile is flushed from the cache that
    // takes it (the cache epoch moves with the generation).
    runtime::LockGuard l(c.lock);
    if (Span* s = c.partial[swept_index(heap().pages.sweepgen())].pop()) return s;
  }
  for (int budget = 0; budget < 64; ++budget) {
    Span* s = claim_unswept(c, false);
    if (s == nullptr) return nullptr;
    // An emptied span is kept for this class rather than freed to the page heap and
    // replaced by a span taken from it (both under the page heap's lock).
    sweep_span(s, false, true);
    if (!s->is_full()) return s;
    put_swept(s);
  }
  return nullptr;
}

namespace {
// The background sweeper's position: classes before it have no unswept span left that
// it may sweep. Only the collector's thread sweeps with user code, so no lock.
int g_cursor = -1;
std::uint32_t g_cursor_gen = 0;
}  // namespace

bool sweep_one() {
  const std::uint32_t sg = heap().pages.sweepgen();
  if (g_cursor_gen != sg) {
    g_cursor_gen = sg;
    g_cursor = -1;
  }
  for (const int n = size_classes().count; g_cursor < n; ++g_cursor) {
    Central& c = g_cursor < 0 ? heap().large : heap().central[g_cursor];
    Span* s = claim_unswept(c, true);
    if (s == nullptr) continue;
    if (sweep_span(s, true)) put_swept(s);
    return true;
  }
  return false;
}

void finish_sweep() {
  for (;;) {
    while (sweep_one()) {
    }
    // Spans claimed by allocators are being swept right now: wait for them.
    if (heap().pages.unswept() <= 0) return;
    g_cursor = -1;
    std::this_thread::yield();
  }
}

}  // namespace gort::gc::detail

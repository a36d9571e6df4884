// Roots and barriers: Ptr counts, Member stores, finalizers.
//
// Ptr. A Ptr on the stack of the goroutine that made it is found by scanning that stack,
// so it costs nothing but the check of where it lives. Anywhere else (a vector, a global,
// a malloc'd object, another goroutine's stack, a plain thread's stack) it holds a count
// in the object's state word (its span's state table, heap.hpp). Counted objects are
// roots. To find them without walking the heap, an object whose count leaves zero is
// appended once to its thread's root log (kInRootLog says it is listed); the collector
// merges the logs into the root set while it marks, greying every listed object with a
// count and dropping the others. Dropping races with a new count: the collector clears
// kInRootLog, then re-reads the count; the mutator raises the count, then sets kInRootLog
// and logs the object if the bit was clear. Either the collector sees the count or the
// mutator re-logs (Dekker, both seq_cst).
//
// The barriers. While the collector marks, a Member store shades the pointer it
// overwrites (Yuasa's deletion barrier: what was reachable when marking began stays
// marked) and the pointer it stores (Dijkstra's insertion barrier: a goroutine whose stack
// is not yet scanned may store a pointer only its stack holds); this is Go's hybrid
// barrier, which lets each stack be scanned once, without a final rescan. Count changes
// shade their object for the same reasons (a count is a root edge created or deleted),
// and so does a Ptr written into another goroutine's stack. Allocation is black.
//
// Finalizers (Go's runtime.SetFinalizer). The table maps objects to functions. While
// marking, the collector marks what each such object references but not the object
// itself; if the sweep finds the object unmarked, it queues the finalizer with a count on
// the object (so it and its referents stay alive until the finalizer has run) and removes
// it from the table; the finalizer thread runs it and drops the count.
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/fatal.hpp"
#include "gc/internal.hpp"
#include "gort/runtime.hpp"
#include "runtime/sched.hpp"

namespace gort::gc::detail {

namespace {

runtime::Lock g_roots_lock;
// Never destroyed: threads of the collector use it until the process ends.
std::vector<const void*>& g_root_set() {
  static auto* v = new std::vector<const void*>();
  return *v;
}

struct Finalizer {
  void* obj;
  std::function<void(void*)> fn;
};
// Never destroyed: threads of the collector use it until the process ends.
std::mutex& g_fin_mu() {
  static auto* v = new std::mutex();
  return *v;
}
// Never destroyed: threads of the collector use it until the process ends.
std::unordered_map<std::uintptr_t, Finalizer>& g_finalizers() {
  static auto* v = new std::unordered_map<std::uintptr_t, Finalizer>();
  return *v;
}
// Never destroyed: threads of the collector use it until the process ends.
std::deque<Finalizer>& g_fin_queue() {
  static auto* v = new std::deque<Finalizer>();
  return *v;
}
// Never destroyed: threads of the collector use it until the process ends.
std::condition_variable& g_fin_cv() {
  static auto* v = new std::condition_variable();
  return *v;
}
bool g_fin_thread_started = false;  // guarded by g_fin_mu()

// The span and cell index holding obj (obj may point inside it: a Ptr<Base> to a Derived).
Span* span_of_object(const void* obj, std::uint32_t* index) {
  const auto a = reinterpret_cast<std::uintptr_t>(obj);
  Span* s = heap().pages.span_of(a);
  if (s == nullptr) base::fatal("gc: a Ptr to memory outside the collected heap");
  *index = s->index_of(a);
  return s;
}

// The state word of an object's cell, or null if its span has no state table (then no
// count or flag was ever set there).
std::atomic<std::uint32_t>* state_word(std::uintptr_t cell) {
  const Span* s = heap().pages.span_of(cell);
  if (s == nullptr) return nullptr;
  std::atomic<std::uint32_t>* states = s->states.load(std::memory_order_acquire);
  return states != nullptr ? &states[s->index_of(cell)] : nullptr;
}

// A leaf (runtime::current_m_in_leaf): its callers are leaves too.
bool on_own_stack(const void* where) {
  runtime::M* m = runtime::current_m_in_leaf();
  if (m == nullptr || m->curg == nullptr) return false;
  const auto a = reinterpret_cast<std::uintptr_t>(where);
  return a >= m->curg->stack.lo && a < m->curg->stack.hi;
}

void log_root(MutatorState* ms, std::uintptr_t cell) {
  runtime::LockGuard l(ms->lock);
  ms->root_log.push_back(reinterpret_cast<const void*>(cell));
}

[[noreturn]] void finalizer_thread_main() {
  for (;;) {
    Finalizer f;
    {
      std::unique_lock l(g_fin_mu());
      g_fin_cv().wait(l, [] { return !g_fin_queue().empty(); });
      f = std::move(g_fin_queue().front());
      g_fin_queue().pop_front();
    }
    try {
      f.fn(f.obj);
    } catch (const std::exception& e) {
      base::raw_write("panic in a finalizer: ");
      base::raw_write(e.what());
      base::raw_write("\n");
      base::fatal("gc: a finalizer threw");
    } catch (...) {
      base::fatal("gc: a finalizer threw");
    }
    f.fn = nullptr;
    unhold(f.obj);
  }
}

}  // namespace

// hold, note_stack_store and store_member run at every Ptr construction and Member store:
// they are leaves (runtime::current_m_in_leaf), never inlined, never switching goroutines.
__attribute__((noinline)) bool hold(const void* where, const void* obj) noexcept {
  if (on_own_stack(where)) return false;
  retain(obj);
  return true;
}

bool take_precount(const void* obj) noexcept {
  MutatorState* ms = mutator();
  std::vector<const void*>& pre = ms->precounted;
  for (auto it = pre.rbegin(); it != pre.rend(); ++it) {
    if (*it != obj) continue;
    pre.erase(std::next(it).base());
    return true;
  }
  return false;
}

void retain(const void* obj) noexcept {
  if (take_precount(obj)) return;  // make()'s Ptr: the allocation counted it already
  std::uint32_t i = 0;
  Span* s = span_of_object(obj, &i);
  std::atomic<std::uint32_t>& state = s->ensure_states()[i];  // outside the section: allocates
  MutatorState* ms = mutator();
  Busy busy(ms);
  const std::uint32_t old = state.fetch_add(1, std::memory_order_seq_cst);
  if ((old & kCountMask) == kCountMask) base::fatal("gc: too many Ptrs to one object (2^28)");
  if ((old & kInRootLog) == 0 &&
      (state.fetch_or(kInRootLog, std::memory_order_seq_cst) & kInRootLog) == 0)
    log_root(ms, s->cell_addr(i));
  if (current_phase() == kMark) barrier_shade(ms, obj);
}

void unhold(const void* obj) noexcept {
  std::uint32_t i = 0;
  const Span* s = span_of_object(obj, &i);
  std::atomic<std::uint32_t>* states = s->states.load(std::memory_order_acquire);
  if (states == nullptr) base::fatal("gc: a Ptr dropped a count it never held");
  MutatorState* ms = mutator();
  Busy busy(ms);
  states[i].fetch_sub(1, std::memory_order_relaxed);
  if (current_phase() == kMark) barrier_shade(ms, obj);
}

__attribute__((noinline)) void note_stack_store(const void* where, const void* obj) noexcept {
  if (on_own_stack(where)) return;
  MutatorState* ms = mutator_in_leaf();
  Busy busy(ms);
  if (current_phase() == kMark) barrier_shade(ms, obj);
}

__attribute__((noinline)) void store_member(const void** slot, const void* obj) noexcept {
  std::atomic_ref<const void*> ref(*slot);
  MutatorState* ms = mutator_in_leaf();
  enter_busy(ms);
  if (current_phase() == kMark) [[unlikely]] {
    if (const void* old = ref.load(std::memory_order_relaxed)) barrier_shade(ms, old);
    if (obj != nullptr) barrier_shade(ms, obj);
  }
  ref.store(obj, std::memory_order_release);  // see Member::get
  exit_busy(ms);
}

void adopt_roots(std::vector<const void*>& log) {
  runtime::LockGuard l(g_roots_lock);
  g_root_set().insert(g_root_set().end(), log.begin(), log.end());
  log.clear();
}

std::int64_t mark_counted_roots(Marker& mk) {
  std::int64_t greyed = 0;
  std::vector<const void*> listed;
  {
    runtime::LockGuard l(g_roots_lock);
    listed.swap(g_root_set());
  }
  for_each_mutator([&listed](MutatorState& ms) {
    runtime::LockGuard l(ms.lock);
    listed.insert(listed.end(), ms.root_log.begin(), ms.root_log.end());
    ms.root_log.clear();
  });
  std::vector<const void*> keep;
  keep.reserve(listed.size());
  for (const void* p : listed) {
    const auto cell = reinterpret_cast<std::uintptr_t>(p);
    std::atomic<std::uint32_t>* state = state_word(cell);
    if (state == nullptr) continue;  // never counted (cannot happen: listed after a count)
    if ((state->load(std::memory_order_seq_cst) & kCountMask) != 0) {
      mk.grey_addr(cell);
      ++greyed;
      keep.push_back(p);
      continue;
    }
    state->fetch_and(~kInRootLog, std::memory_order_seq_cst);
    if ((state->load(std::memory_order_seq_cst) & kCountMask) == 0) continue;  // dropped
    mk.grey_addr(cell);
    ++greyed;
    // Counted again meanwhile: keep it unless the mutator listed it anew.
    if ((state->fetch_or(kInRootLog, std::memory_order_seq_cst) & kInRootLog) == 0)
      keep.push_back(p);
  }
  runtime::LockGuard l(g_roots_lock);
  g_root_set().insert(g_root_set().end(), keep.begin(), keep.end());
  return greyed * static_cast<std::int64_t>(sizeof(void*));
}

void prune_roots() {
  auto alive = [](const void* p) {
    const auto cell = reinterpret_cast<std::uintptr_t>(p);
    Span* s = heap().pages.span_of(cell);
    return s != nullptr && s->marked(s->index_of(cell));
  };
  auto prune = [&alive](std::vector<const void*>& v) {
    std::erase_if(v, [&alive](const void* p) { return !alive(p); });
  };
  {
    runtime::LockGuard l(g_roots_lock);
    prune(g_root_set());
  }
  for_each_mutator([&prune](MutatorState& ms) {
    runtime::LockGuard l(ms.lock);
    prune(ms.root_log);
  });
}

void mark_finalizer_referents(Marker& mk) {
  std::vector<std::uintptr_t> cells;
  {
    std::lock_guard l(g_fin_mu());
    cells.reserve(g_finalizers().size());
    for (const auto& [cell, f] : g_finalizers()) cells.push_back(cell);
  }
  for (std::uintptr_t cell : cells) {
    const Span* s = heap().pages.span_of(cell);
    if (s == nullptr) continue;
    const TypeInfo* t = type_info(s->type_of(s->index_of(cell)));
    if (t != nullptr && t->trace != nullptr) t->trace(reinterpret_cast<const void*>(cell), mk);
  }
}

bool queue_finalizer(std::uintptr_t cell) {
  Finalizer f;
  {
    std::lock_guard l(g_fin_mu());
    auto it = g_finalizers().find(cell);
    if (it == g_finalizers().end()) return false;
    f = std::move(it->second);
    g_finalizers().erase(it);
  }
  state_word(cell)->fetch_and(~kHasFinalizer, std::memory_order_relaxed);  // set: has one
  retain(f.obj);  // alive (a root) until the finalizer has run
  std::lock_guard l(g_fin_mu());
  g_fin_queue().push_back(std::move(f));
  g_fin_cv().notify_one();
  return true;
}

void set_finalizer(const void* obj, std::function<void(void*)> fn) {
  if (obj == nullptr) throw Panic("gc::set_finalizer: null object");
  std::uint32_t i = 0;
  Span* s = span_of_object(obj, &i);
  const std::uintptr_t cell = s->cell_addr(i);
  std::atomic<std::uint32_t>& state = s->ensure_states()[i];
  {
    std::lock_guard l(g_fin_mu());
    if (fn == nullptr) {
      g_finalizers().erase(cell);
      state.fetch_and(~kHasFinalizer, std::memory_order_relaxed);
      return;
    }
    g_finalizers()[cell] = Finalizer{const_cast<void*>(obj), std::move(fn)};
    if (!g_fin_thread_started) {
      g_fin_thread_started = true;
      std::thread(finalizer_thread_main).detach();
    }
  }
  state.fetch_or(kHasFinalizer, std::memory_order_relaxed);
  s->needs_bg_sweep.store(true, std::memory_order_relaxed);
  // Set while marking: keep the object (and so its referents) for this cycle, since the
  // collector may have listed the finalizers already.
  MutatorState* ms = mutator();
  Busy busy(ms);
  if (current_phase() == kMark) barrier_shade(ms, obj);
}

}  // namespace gort::gc::detail

// Goroutine lifecycle and the public runtime API: run(), go(), yield(), counters.
//
// A goroutine's life: gfget() takes a free G (with its stack) from the P's cache, the
// global free list, or a new stack slot; spawn_begin() hands the caller storage for the
// closure (inline below the G when it fits, so a small goroutine allocates nothing);
// spawn_commit() builds the initial frame and queues the G in runnext. goroutine_entry()
// runs the closure, destroys it *on the goroutine* (its destructors may block), and
// switches to g0 for good with Action::kExit; g0 then returns the G to the free lists.
//
// Exceptions. goroutine_entry has no handler, and the trampoline below it ends the CFI
// chain, so an exception escaping a goroutine finds no handler: __cxa_throw calls
// std::terminate *before unwinding*, with the throwing frames still on the stack, and
// fault.cpp prints Go's "panic: ..." with that stack and exits with status 2.
#include <algorithm>
#include <cstdlib>
#include <new>
#include <numeric>
#include <thread>

#include "base/fatal.hpp"
#include "gort/runtime.hpp"
#include "runtime/context.hpp"
#include "runtime/fiber_sanitizer.hpp"
#include "runtime/gc_hooks.hpp"
#include "runtime/mprof.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/sched.hpp"
#include "trace/hooks.hpp"

namespace gort::runtime {

void install_fault_reporting() noexcept;  // fault.cpp
void restore_fault_reporting() noexcept;
void install_sigquit_dump() noexcept;  // sysmon.cpp
void restore_sigquit_dump() noexcept;

namespace {

std::atomic<bool> g_running{false};
std::atomic<std::uint64_t> g_unowned_created{0};  // goroutines made by threads without a P
std::atomic<std::uint64_t> g_unowned_exited{0};   // goroutines that exited without a P

constexpr int kGlobalFreeBatch = 32;  // Gs moved between a P and the global list at once

G* new_g(Sched& s) {
  Stack st = s.stacks.carve();
  auto top = st.hi - sizeof(G);
  top &= ~std::uintptr_t{alignof(G) - 1};
  G* gp = ::new (reinterpret_cast<void*>(top)) G();
  gp->stack = Stack{st.lo, top};
  LockGuard l(s.allg_lock);
  s.allg.push_back(gp);
  return gp;
}

void free_locals(G* gp) {
  if (gp->locals == nullptr) return;
  auto& e = gp->locals->entries;
  for (std::size_t i = e.size(); i-- > 0;)
    if (e[i].value != nullptr) e[i].destroy(e[i].value);
  delete gp->locals;
  gp->locals = nullptr;
}

// Runs on the goroutine after its body returned; never returns.
[[noreturn]] __attribute__((noinline)) void finish_goroutine(G* gp) {
  detail::destroy_closure(gp->fn);
  gp->fn = nullptr;
  if (gp->fn_heap != nullptr) {
    ::operator delete(gp->fn_heap, std::align_val_t(gp->fn_align));
    gp->fn_heap = nullptr;
  }
  free_locals(gp);
  trace::detail::go_end(gp->id);
  enter_runtime_to_switch(current_m());  // g0 takes the level over
  mcall(Action::kExit);
  base::fatal("runtime: dead goroutine resumed");
}

// First code of every goroutine (called by gort_context_trampoline). Deliberately not
// noexcept and without a handler: see the comment at the top of this file.
void goroutine_entry(void* arg) {
  G* gp = static_cast<G*>(arg);
  gp->saved_errno = 0;
  gp->asan_fake_stack = nullptr;
  finish_switch_in(gp);
  gp->fn->run();
  finish_goroutine(gp);
}

// Prepares gp's first frame below `floor` (the closure or the G), at a random offset.
void init_frame(G* gp, std::uintptr_t floor, std::uint32_t random) {
  const std::uintptr_t offset = (random % 16) * 64;  // 0..960: 16 distinct L1 set offsets
  gp->sp = make_context(reinterpret_cast<void*>(floor - offset), goroutine_entry, gp);
  gp->lowest_sp = reinterpret_cast<std::uintptr_t>(gp->sp);
}

Options resolve_options(const Options& in) {
  Options o = in;
  if (o.procs < 0) throw Panic("gort::run: Options::procs must be >= 0");
  if (o.procs == 0) {
    if (const char* env = std::getenv("GOMAXPROCS")) {
      char* end = nullptr;
      long v = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && v > 0) o.procs = static_cast<int>(v);
    }
    if (o.procs == 0) o.procs = os::usable_cpus();
  }
  o.procs = std::min(o.procs, 1024);
  o.stack_size = resolve_stack_size(o.stack_size);
  return o;
}

void wait_for_threads(Sched& s) {
  for (;;) {
    std::uint32_t n = s.live_threads.load(std::memory_order_acquire);
    if (n == 0) return;
    os::futex_wait(&s.live_threads, n);
  }
}

}  // namespace

// ---- Free Gs ------------------------------------------------------------------------

G* gfget(Sched& s, P* p) {
  if (p == nullptr) {
    {
      LockGuard l(s.gfree_lock);
      if (!s.gfree.empty()) {
        G* gp = s.gfree.back();
        s.gfree.pop_back();
        return gp;
      }
    }
    return new_g(s);
  }
  if (p->gfree_count == 0) {
    LockGuard l(s.gfree_lock);
    while (p->gfree_count < kGlobalFreeBatch && !s.gfree.empty()) {
      p->gfree[p->gfree_count++] = s.gfree.back();
      s.gfree.pop_back();
    }
  }
  if (p->gfree_count > 0) return p->gfree[--p->gfree_count];
  return new_g(s);
}

void gfput(Sched& s, P* p, G* gp) {
  // A goroutine seen deep in its stack returns those pages now (see stack.hpp).
  if (gp->lowest_sp < gp->stack.hi - StackArena::kKeepBytes) StackArena::trim(gp->stack);
  if (p == nullptr) {  // a goroutine that exited after sysmon took its P
    LockGuard l(s.gfree_lock);
    s.gfree.push_back(gp);
    return;
  }
  if (p->gfree_count == P::kLocalFreeMax) {
    LockGuard l(s.gfree_lock);
    // Oldest half to the global list, so Ps that spawn more than they retire get them.
    for (int i = 0; i < kGlobalFreeBatch; ++i) s.gfree.push_back(p->gfree[i]);
    for (int i = kGlobalFreeBatch; i < p->gfree_count; ++i)
      p->gfree[i - kGlobalFreeBatch] = p->gfree[i];
    p->gfree_count -= kGlobalFreeBatch;
  }
  p->gfree[p->gfree_count++] = gp;
}

void gdestroy(Sched& s, P* p, G* gp) {
  gp->status.store(GStatus::kDead, std::memory_order_relaxed);
  gp->m = nullptr;
  if (gp->lockedm != nullptr) {
    gp->lockedm->lockedg = nullptr;
    gp->lockedm = nullptr;
    gp->lock_depth = 0;
  }
  san::tsan_destroy_fiber(gp->tsan_fiber);
  gp->tsan_fiber = nullptr;
  gp->asan_fake_stack = nullptr;
  if (p != nullptr) {
    bump(p->counters.exited);
  } else {
    g_unowned_exited.fetch_add(1, std::memory_order_relaxed);
  }
  const bool was_main = gp->is_main;
  gp->is_main = false;
  gfput(s, p, gp);
  if (was_main) begin_exit(s);
}

std::uint64_t next_goid(Sched& s, P* p) {
  constexpr std::uint64_t kBatch = 16;  // Go's _GoidCacheBatch
  if (p == nullptr) return s.goid_gen.fetch_add(1, std::memory_order_relaxed) + 1;
  if (p->goid_next == p->goid_end) {
    p->goid_next = s.goid_gen.fetch_add(kBatch, std::memory_order_relaxed) + 1;
    p->goid_end = p->goid_next + kBatch;
  }
  return p->goid_next++;
}

Sched::Sched(const Options& resolved) : opts(resolved), stacks(resolved.stack_size) {
  gomaxprocs = resolved.procs;
  single_p = gomaxprocs == 1;
  for (int i = 0; i < gomaxprocs; ++i) {
    P* p = new P();
    p->id = i;
    allp.push_back(p);
  }
  for (int i = 1; i <= gomaxprocs; ++i)
    if (std::gcd(i, gomaxprocs) == 1) steal_strides.push_back(static_cast<std::uint32_t>(i));
  netpoll_init(*this);
  // At most this many goroutines run on without a P at once (sysmon.cpp, "Preemption").
  max_preempted_running = 4 * gomaxprocs;
  // Without the kernel's process-wide barrier sysmon cannot take a P safely (sysmon.cpp).
  preempt_enabled.store(resolved.preempt && os::process_barrier_init(), std::memory_order_relaxed);
}

Sched::~Sched() {
  netpoll_shutdown(*this);
  for (P* p : allp) delete p;
  LockGuard l(lock);
  for (M* m : allm) delete m;
}

}  // namespace gort::runtime

// ---- Public API ---------------------------------------------------------------------

namespace gort {

using namespace gort::runtime;

namespace detail {

namespace {
// A goroutine preempted by sysmon gets a P back here rather than spawning without one
// (through the global locks) until its next switch: a long `go` loop is the usual case.
// Not inside a blocking() call (oldp set), where the goroutine must not switch.
G* take_free_g(Sched& s, M* m) {
  if (m == nullptr) return gfget(s, nullptr);
  enter_runtime(m);
  if (m->p == nullptr && m->curg != nullptr && m->oldp == nullptr &&
      m->in_runtime.load(std::memory_order_relaxed) == 1)
    m = reacquire_p(m);
  G* gp = nullptr;
  try {
    gp = gfget(s, m->p);  // throws if no stack can be mapped
  } catch (...) {
    exit_runtime(m);
    throw;
  }
  exit_runtime(m);
  return gp;
}
}  // namespace

SpawnSlot spawn_begin(std::size_t size, std::size_t align) {
  Sched* s = current_sched();
  if (s == nullptr) throw Panic("gort::go called outside gort::run");
  G* gp = take_free_g(*s, current_m());
  san::asan_unpoison(reinterpret_cast<void*>(gp->stack.lo), gp->stack.hi - gp->stack.lo);
  void* storage;
  if (size <= kInlineClosureBytes && align <= alignof(G)) {
    storage = reinterpret_cast<void*>((gp->stack.hi - size) & ~(align - 1));
  } else {
    storage = ::operator new(size, std::align_val_t(align));
    gp->fn_heap = storage;
    gp->fn_align = align;
  }
  return SpawnSlot{storage, gp};
}

void spawn_commit(SpawnSlot slot, Closure* body) noexcept {
  Sched& s = *current_sched();
  G* gp = static_cast<G*>(slot.g);
  M* m = current_m();  // re-read: the closure's constructor may have switched threads
  RuntimeSection section(m);
  P* p = m != nullptr ? m->p : nullptr;
  gp->fn = body;
  const std::uintptr_t floor =
      gp->fn_heap != nullptr ? gp->stack.hi : reinterpret_cast<std::uintptr_t>(slot.storage);
  init_frame(gp, floor,
             m != nullptr ? static_cast<std::uint32_t>(m->rand.next())
                          : static_cast<std::uint32_t>(os::nanotime()));
  gp->id = next_goid(s, p);
  gp->gopc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  gp->labels = m != nullptr && m->curg != nullptr ? m->curg->labels : nullptr;
  gp->tsan_fiber = san::tsan_create_fiber();
  gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  if (p != nullptr) {
    bump(p->counters.created);
  } else {
    g_unowned_created.fetch_add(1, std::memory_order_relaxed);
  }
  trace::detail::go_create(gp->id);
  make_runnable(s, gp, true);
}

void spawn_abort(SpawnSlot slot) noexcept {
  G* gp = static_cast<G*>(slot.g);
  if (gp->fn_heap != nullptr) {
    ::operator delete(gp->fn_heap, std::align_val_t(gp->fn_align));
    gp->fn_heap = nullptr;
  }
  Sched& s = *current_sched();
  gp->status.store(GStatus::kDead, std::memory_order_relaxed);
  LockGuard l(s.gfree_lock);
  s.gfree.push_back(gp);
}

int run_main(Closure* body, const Options& opts) {
  if (current_m() != nullptr) {
    destroy_closure(body);
    throw Panic("gort::run called from inside a goroutine");
  }
  if (g_running.exchange(true, std::memory_order_acq_rel)) {
    destroy_closure(body);
    throw Panic("gort::run: the runtime is already running (one gort::run at a time)");
  }
  Options resolved;
  try {
    resolved = resolve_options(opts);
  } catch (...) {
    destroy_closure(body);
    g_running.store(false);
    throw;
  }
  auto* s = new Sched(resolved);
  gc_hooks::attach(s);
  g_unowned_created.store(0, std::memory_order_relaxed);
  g_unowned_exited.store(0, std::memory_order_relaxed);
  install_fault_reporting();
  {
    M m0;
    m0.rand = base::FastRand(static_cast<std::uint64_t>(os::nanotime()));
    m0.tid.store(os::thread_id(), std::memory_order_relaxed);
    cpu_profile_thread_start(m0.tid.load(std::memory_order_relaxed));
    set_current_m(&m0);
    set_current_sched(s);
    os::AltStack alt;
    start_m0(*s, &m0);
    thread_create_event(s);  // M0, made by run()'s caller
    G* g1 = gfget(*s, m0.p);
    g1->is_main = true;
    g1->gopc = 0;
    g1->labels = nullptr;
    g1->fn = body;
    init_frame(g1, g1->stack.hi, static_cast<std::uint32_t>(m0.rand.next()));
    g1->id = 1;
    g1->tsan_fiber = san::tsan_create_fiber();
    g1->status.store(GStatus::kRunnable, std::memory_order_relaxed);
    bump(m0.p->counters.created);
    put_runnable_on(*s, m0.p, g1);
    std::thread sysmon([s] { sysmon_main(*s); });
    install_sigquit_dump();
    schedule_loop(*s, &m0);
    restore_sigquit_dump();
    s->sysmon_note.wakeup();  // exiting is set: sysmon returns
    sysmon.join();
    wait_for_threads(*s);
    // Before M0 goes: the collector scans goroutine stacks holding the hook's lock and
    // may be signalling M0 (found in allm before we erase it below) for a stack scan;
    // detaching waits for that scan to finish, and no scan starts after it.
    gc_hooks::detach(s);
    {
      // M0 lives on this frame: take it out of allm before ~Sched deletes the rest.
      LockGuard l(s->lock);
      s->allm.erase(std::find(s->allm.begin(), s->allm.end(), &m0));
    }
    cpu_profile_thread_exit(m0.tid.load(std::memory_order_relaxed));  // the caller's thread
    set_current_m(nullptr);
  }
  // Armed timers are dropped unfired (a later run() may re-arm them).
  drop_timers(*s);
  // Abandoned goroutines: their TSan fibers go; their closures are leaked on purpose
  // (destroying captures of a goroutine stopped mid-flight could run arbitrary code);
  // their waiter records leave the semaphore table before their stacks are unmapped.
  sema_forget_goroutines();
  {
    LockGuard l(s->allg_lock);
    for (G* gp : s->allg) san::tsan_destroy_fiber(gp->tsan_fiber);
  }
  set_current_sched(nullptr);
  restore_fault_reporting();
  delete s;
  g_running.store(false, std::memory_order_release);
  return 0;
}

std::size_t gls_new_key() {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

static G* require_g(const char* what) {
  G* gp = current_g();
  if (gp == nullptr) throw Panic(std::string(what) + " used outside a goroutine");
  return gp;
}

void* gls_get(std::size_t key) {
  G* gp = require_g("gort::GoroutineLocal");
  if (gp->locals == nullptr || key >= gp->locals->entries.size()) return nullptr;
  return gp->locals->entries[key].value;
}

void gls_set(std::size_t key, void* value, void (*destroy)(void*)) {
  G* gp = require_g("gort::GoroutineLocal");
  if (gp->locals == nullptr) gp->locals = new GLocals();
  auto& e = gp->locals->entries;
  if (key >= e.size()) e.resize(key + 1);
  e[key] = GLocals::Entry{value, destroy};
}

}  // namespace detail

int num_goroutine() {
  Sched* s = current_sched();
  if (s == nullptr) return 0;
  std::uint64_t created = g_unowned_created.load(std::memory_order_relaxed);
  std::uint64_t exited = g_unowned_exited.load(std::memory_order_relaxed);
  for (P* p : s->allp) {
    created += p->counters.created.load(std::memory_order_relaxed);
    exited += p->counters.exited.load(std::memory_order_relaxed);
  }
  return created > exited ? static_cast<int>(created - exited) : 0;
}

int gomaxprocs() {
  Sched* s = current_sched();
  return s != nullptr ? s->gomaxprocs : 0;
}

std::uint64_t goid() {
  G* gp = current_g();
  return gp != nullptr ? gp->id : 0;
}

void lock_os_thread() {
  G* gp = detail::require_g("gort::lock_os_thread");
  M* m = current_m();
  ++gp->lock_depth;
  gp->lockedm = m;
  m->lockedg = gp;
}

void unlock_os_thread() {
  G* gp = current_g();
  if (gp == nullptr || gp->lock_depth == 0) return;
  if (--gp->lock_depth == 0) {
    gp->lockedm->lockedg = nullptr;
    gp->lockedm = nullptr;
  }
}

SchedStats sched_stats() {
  SchedStats st;
  Sched* s = current_sched();
  if (s == nullptr) return st;
  st.procs = s->gomaxprocs;
  {
    LockGuard l(s->lock);
    st.threads = s->mcount;
  }
  st.thread_wakeups = s->thread_wakeups.load(std::memory_order_relaxed);
  st.sysmon_retakes = s->sysmon_retakes.load(std::memory_order_relaxed);
  st.preemptions = s->preemptions.load(std::memory_order_relaxed);
  st.preemption_enabled = s->preempt_enabled.load(std::memory_order_relaxed);
  for (P* p : s->allp) {
    const PCounters& c = p->counters;
    ProcStats ps;
    ps.id = p->id;
    ps.goroutines_created = c.created.load(std::memory_order_relaxed);
    ps.switches = c.switches.load(std::memory_order_relaxed);
    ps.yields = c.yields.load(std::memory_order_relaxed);
    ps.parks = c.parks.load(std::memory_order_relaxed);
    ps.steals = c.steals.load(std::memory_order_relaxed);
    ps.stolen_goroutines = c.stolen.load(std::memory_order_relaxed);
    ps.spins = c.spins.load(std::memory_order_relaxed);
    ps.global_queue_gets = c.global_gets.load(std::memory_order_relaxed);
    st.goroutines_created += ps.goroutines_created;
    st.switches += ps.switches;
    st.yields += ps.yields;
    st.parks += ps.parks;
    st.steals += ps.steals;
    st.stolen_goroutines += ps.stolen_goroutines;
    st.spins += ps.spins;
    st.global_queue_gets += ps.global_queue_gets;
    st.per_proc.push_back(ps);
  }
  st.goroutines_created += g_unowned_created.load(std::memory_order_relaxed);
  st.yields += s->unowned_yields.load(std::memory_order_relaxed);
  st.parks += s->unowned_parks.load(std::memory_order_relaxed);
  st.goroutines = num_goroutine();
  return st;
}

}  // namespace gort

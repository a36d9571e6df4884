// Marking: greying, work buffers, draining, and scanning goroutine stacks (Go's mgcmark.go
// and mgcwork.go).
//
// Tri-color. White: mark bit clear. Grey: mark bit set, object in a work buffer (its
// Members not yet visited). Black: mark bit set and scanned. Objects whose type has no
// trace() are black as soon as they are marked. The invariant kept during marking is the
// weak tri-color one (no black object points to a white object that no grey object
// reaches); the write barrier (roots.cpp, store_member) shades both the overwritten and
// the new pointer, as Go's hybrid barrier (proposal 17503) does.
//
// Work buffers. Each marker (the collector, an assisting goroutine) fills a private
// buffer and trades full ones through a global list; write barriers fill their thread's
// buffer (mutator.cpp). Buffers live in memory mapped for them, never in malloc: the
// collector greys objects while a goroutine it stopped may hold malloc's lock.
//
// Goroutine stacks are scanned conservatively, each once per cycle: every aligned word in
// [sp, hi) that points into an allocated cell greys it. A stopped goroutine (runnable or
// waiting) is scanned without stopping anything: gc_hooks.hpp's generation word tells the
// collector afterwards whether the goroutine ran meanwhile (then the scan is retried, or
// the goroutine scanned itself when it resumed: self_scan). A running goroutine is stopped
// by a signal to its thread (below).
//
// Running goroutines. The collector sets M::gc_stop_target and sends os::stop_signal() to
// the M's thread. The handler runs on the goroutine's stack (no alternate stack). If the
// thread still runs that goroutine and is not inside a busy section, the handler scans
// the interrupted registers and [interrupted sp, hi) itself, publishes its greys, marks
// the stack scanned, answers "scanned" and returns: the goroutine stops for its own scan
// only. (The collector used to scan while the handler waited on a futex; then the stop
// lasted until the collector's thread got a CPU, up to 5 ms in binary-trees.) Scanning
// in a handler is safe because the pool lock and the page heap's lookups are the only
// shared state it touches, and a thread takes the pool lock only inside busy sections
// (where the handler declines) or on its way out (when it runs no goroutine). Otherwise
// the handler answers "retry" (the goroutine switched away, or is inside the allocator
// or a barrier). Under TSan, signals are delivered at the next intercepted call, so a
// goroutine in a pure compute loop is not scanned until it calls something; the
// collector keeps retrying.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/fatal.hpp"
#include "base/keep_errno.hpp"
#include "gc/internal.hpp"
#include "os/os.hpp"
#include "runtime/gc_hooks.hpp"
#include "runtime/sched.hpp"

namespace gort::runtime::gc_hooks {
std::atomic<std::uint32_t> g_scan_cycle{0};
}  // namespace gort::runtime::gc_hooks

namespace gort::gc::detail {

MutatorState* mutator_if_registered() noexcept;  // mutator.cpp

namespace {

// ---- Work buffer pool ---------------------------------------------------------------

runtime::Lock g_pool_lock;
WorkBuf* g_empty GORT_GUARDED_BY(g_pool_lock) = nullptr;
WorkBuf* g_full GORT_GUARDED_BY(g_pool_lock) = nullptr;
std::atomic<std::int64_t> g_nfull{0};

// Address space reserved for buffers, carved one buffer (one page) at a time. Building
// a whole 1 MiB chunk into the free list at once wrote to each of its 256 pages, and did
// so inside the barrier or allocation that found the pool empty: about 5 ms of page
// faults at a program's first cycle on this VM, a section the mark-start handshake waited
// for.
std::uintptr_t g_carve_next GORT_GUARDED_BY(g_pool_lock) = 0;
std::uintptr_t g_carve_end GORT_GUARDED_BY(g_pool_lock) = 0;

WorkBuf* carve_buf() GORT_REQUIRES(g_pool_lock) {
  static_assert(sizeof(WorkBuf) == 4096, "a buffer is one page");
  if (g_carve_next == g_carve_end) {
    constexpr std::size_t kChunk = 1 << 20;
    void* mem = os::reserve_lazy(kChunk);
    if (mem == nullptr) base::fatal("gc: out of memory for mark work buffers");
    g_carve_next = reinterpret_cast<std::uintptr_t>(mem);
    g_carve_end = g_carve_next + kChunk;
  }
  auto* b = ::new (reinterpret_cast<void*>(g_carve_next)) WorkBuf();
  g_carve_next += sizeof(WorkBuf);
  return b;
}

// ---- The attached runtime -----------------------------------------------------------

runtime::Lock g_sched_lock;
runtime::Sched* g_sched GORT_GUARDED_BY(g_sched_lock) = nullptr;

enum StopState : std::uint32_t { kStopIdle, kStopRequested, kStopScanned, kStopRetry };

// Scans [lo, hi): words of another goroutine's stack, read while it may run (a racy read
// the generation check makes harmless) and including ASan redzones, hence unsanitized.
#if defined(__clang__)
__attribute__((no_sanitize("address", "thread"), noinline))
#else
__attribute__((no_sanitize("address", "thread"), noipa))
#endif
void scan_words(std::uintptr_t lo, std::uintptr_t hi, Marker& mk) {
  const PageHeap& pages = heap().pages;
  lo = (lo + 7) & ~std::uintptr_t{7};
  for (std::uintptr_t p = lo; p + 8 <= hi; p += 8) {
    const std::uintptr_t w = *reinterpret_cast<const std::uintptr_t*>(p);
    if (pages.in_arena(w)) mk.grey_addr(w);
  }
}

void set_scanned(runtime::G* gp, std::uint32_t cycle) {
  runtime::san::tsan_release(&runtime::gc_hooks::g_tsan_reuse_sync);
  const std::uint64_t w = gp->gc_word.load(std::memory_order_relaxed);
  gp->gc_word.store((w & 0xFFFF'FFFFull) | (std::uint64_t{cycle} << runtime::gc_hooks::kCycleShift),
                    std::memory_order_release);
}

// The stop signal's scan, on the interrupted goroutine's own thread: its saved registers,
// then its stack from stack_low (the interrupted sp, less the x86-64 red zone, where leaf
// functions keep live values; the kernel puts the signal frame below it). The collector
// reads the results from m once it sees kStopScanned.
void scan_interrupted(runtime::M* m, runtime::G* gp, const std::uintptr_t* regs, int nregs,
                      std::uintptr_t stack_low) {
  const std::int64_t t0 = os::nanotime();
  const std::uintptr_t from = std::max(gp->stack.lo, stack_low);
  {
    // Its greys go to the global list when it is destroyed, before the collector hears
    // "scanned".
    Marker mk;
    for (int i = 0; i < nregs; ++i)
      if (heap().pages.in_arena(regs[i])) mk.grey_addr(regs[i]);
    mk.scan_range(from, gp->stack.hi);
    m->gc_stop_marked = mk.marked_bytes;
  }
  m->gc_stop_low = from;
  set_scanned(gp, g_cycle.load(std::memory_order_relaxed));
  m->gc_stop_ns = os::nanotime() - t0;
}

void on_stop_signal(int, void*, void* ucontext) {
  base::KeepErrno keep;
  runtime::M* m = runtime::current_m();
  if (m == nullptr) return;
  runtime::G* target = m->gc_stop_target.exchange(nullptr, std::memory_order_acq_rel);
  if (target == nullptr) return;
  std::uintptr_t regs[32];
  std::uintptr_t sp = 0;  // less the red zone
  const int nregs = os::interrupted_registers(ucontext, regs, 32, &sp);
  MutatorState* ms = mutator_if_registered();
  const bool stoppable = m->curg == target && sp > target->stack.lo && sp < target->stack.hi &&
                         (ms == nullptr || !in_busy_section(ms));
  if (!stoppable) {
    // Inside a busy section (the allocator, a barrier): the goroutine scans itself when the
    // section ends, which a goroutine allocating in a loop would otherwise never allow.
    if (ms != nullptr && m->curg == target) ms->scan_pending.store(1, std::memory_order_relaxed);
    m->gc_stop_state.store(kStopRetry, std::memory_order_release);
    os::futex_wake(&m->gc_stop_state, 1);
    return;
  }
  scan_interrupted(m, target, regs, nregs, sp);
  m->gc_stop_state.store(kStopScanned, std::memory_order_release);
  os::futex_wake(&m->gc_stop_state, 1);
}

// Fields of a goroutine read while it may run: a stale gp->m only makes the stop request
// miss (the handler checks m->curg), a stale gp->sp fails the generation check. Benign
// races, hidden from TSan; noipa keeps GCC from moving the load into the (instrumented)
// caller.
#if defined(__clang__)
#define GORT_RACY_READ __attribute__((no_sanitize("thread"), noinline))
#else
#define GORT_RACY_READ __attribute__((no_sanitize("thread"), noipa))
#endif
GORT_RACY_READ runtime::M* m_of(const runtime::G* gp) {
  return gp->m;
}
GORT_RACY_READ std::uintptr_t sp_of(const runtime::G* gp) {
  return reinterpret_cast<std::uintptr_t>(gp->sp);
}

// Has the running gp scan its own stack in the stop signal's handler on its M, and adds
// what it found to mk and bytes. False: try again later.
bool scan_running(runtime::Sched& s, Marker& mk, runtime::G* gp, std::int64_t* bytes) {
  runtime::M* m = m_of(gp);
  if (m == nullptr) return false;
  {
    // The M was read racily: finding it in allm (under the lock it was added with) both
    // checks it and orders its construction before our use of it.
    runtime::LockGuard l(s.lock);
    if (std::find(s.allm.begin(), s.allm.end(), m) == s.allm.end()) return false;
  }
  if (m->tid.load(std::memory_order_relaxed) == 0) return false;
  m->gc_stop_state.store(kStopRequested, std::memory_order_relaxed);
  m->gc_stop_target.store(gp, std::memory_order_release);
  if (!os::signal_thread(m->tid.load(std::memory_order_relaxed))) {
    m->gc_stop_target.store(nullptr, std::memory_order_relaxed);
    return false;
  }
  const std::int64_t deadline = os::nanotime() + 20'000'000;
  std::uint32_t st;
  while ((st = m->gc_stop_state.load(std::memory_order_acquire)) == kStopRequested) {
    const std::int64_t left = deadline - os::nanotime();
    if (left <= 0) {
      // The handler has not run (TSan defers signals): withdraw the request unless the
      // handler took it just now, in which case wait for its answer.
      if (m->gc_stop_target.exchange(nullptr, std::memory_order_acq_rel) == gp) return false;
      while ((st = m->gc_stop_state.load(std::memory_order_acquire)) == kStopRequested)
        os::futex_wait(&m->gc_stop_state, kStopRequested, 1'000'000);
      break;
    }
    os::futex_wait(&m->gc_stop_state, kStopRequested, left);
  }
  if (st != kStopScanned) return false;
  *bytes += static_cast<std::int64_t>(gp->stack.hi - m->gc_stop_low);
  mk.marked_bytes += m->gc_stop_marked;
  note_stack_stop(m->gc_stop_ns);
  return true;
}

// Scans a goroutine that is not running; false if it ran meanwhile (retry).
bool scan_stopped(Marker& mk, runtime::G* gp, std::uint64_t w, std::uint32_t cycle,
                  std::int64_t* bytes) {
  const std::uintptr_t sp = sp_of(gp);
  if (sp <= gp->stack.lo || sp > gp->stack.hi) return false;  // a switch in progress
  mk.scan_range(sp, gp->stack.hi);
  *bytes += static_cast<std::int64_t>(gp->stack.hi - sp);
  const std::uint64_t scanned =
      (w & 0xFFFF'FFFFull) | (std::uint64_t{cycle} << runtime::gc_hooks::kCycleShift);
  // acq_rel: the stack reads above are done before the CAS validates them.
  return gp->gc_word.compare_exchange_strong(w, scanned, std::memory_order_acq_rel);
}

}  // namespace

WorkBuf* get_empty_buf() {
  runtime::LockGuard l(g_pool_lock);
  if (g_empty == nullptr) return carve_buf();
  WorkBuf* b = g_empty;
  g_empty = b->next;
  b->next = nullptr;
  b->n = 0;
  return b;
}

void put_empty_buf(WorkBuf* b) {
  runtime::LockGuard l(g_pool_lock);
  b->next = g_empty;
  g_empty = b;
}

void put_full_buf(WorkBuf* b) {
  runtime::LockGuard l(g_pool_lock);
  b->next = g_full;
  g_full = b;
  g_nfull.fetch_add(1, std::memory_order_relaxed);
}

WorkBuf* get_full_buf() {
  if (g_nfull.load(std::memory_order_relaxed) == 0) return nullptr;
  runtime::LockGuard l(g_pool_lock);
  WorkBuf* b = g_full;
  if (b == nullptr) return nullptr;
  g_full = b->next;
  b->next = nullptr;
  g_nfull.fetch_sub(1, std::memory_order_relaxed);
  return b;
}

bool have_full_bufs() {
  return g_nfull.load(std::memory_order_relaxed) != 0;
}

std::uintptr_t shade(std::uintptr_t addr, std::size_t* bytes) {
  Span* s = heap().pages.span_of(addr);
  if (s == nullptr || !marks_span(s)) return 0;
  const std::uint32_t i = s->index_of(addr);
  if (i >= s->cells) return 0;
  if (!s->allocated(i)) return 0;  // acquire: the type read below is valid
  if (!s->try_mark(i)) return 0;
  *bytes = s->cell;
  const std::uint32_t type = s->type_of(i);
  const TypeInfo* t = type_info(type);
  return t != nullptr && t->trace != nullptr ? grey_entry(s->cell_addr(i), type) : 0;
}

// ---- Marker -------------------------------------------------------------------------

Marker::Marker() = default;

Marker::~Marker() {
  flush();
}

void push_grey(WorkBuf*& buf, std::uintptr_t cell) {
  if (buf == nullptr) buf = get_empty_buf();
  if (buf->full()) {
    put_full_buf(buf);
    buf = get_empty_buf();
  }
  buf->cells[buf->n++] = cell;
}

void release_buf(WorkBuf*& buf) {
  if (buf == nullptr) return;
  if (buf->empty()) {
    put_empty_buf(buf);
  } else {
    put_full_buf(buf);
  }
  buf = nullptr;
}

void Marker::flush() {
  release_buf(buf_);
}

void Marker::grey_addr(std::uintptr_t addr) {
  std::size_t bytes = 0;
  const std::uintptr_t cell = shade(addr, &bytes);
  marked_bytes += static_cast<std::int64_t>(bytes);
  if (cell != 0) push_grey(buf_, cell);
}

void Marker::scan_object(std::uintptr_t grey) {
  const TypeInfo* t = type_info(grey_type(grey));
  if (t == nullptr || t->trace == nullptr) return;
  t->trace(reinterpret_cast<const void*>(grey_cell(grey)), *this);
  scanned_bytes += t->size;
}

std::atomic<std::int64_t> g_scan_work{0};
std::atomic<std::int64_t> g_background_credit{0};

std::int64_t Marker::drain(std::int64_t budget) {
  const std::int64_t done = drain_unaccounted(budget);
  g_scan_work.fetch_add(done, std::memory_order_relaxed);
  if (earns_credit) g_background_credit.fetch_add(done, std::memory_order_relaxed);
  return done;
}

std::int64_t Marker::drain_unaccounted(std::int64_t budget) {
  const std::int64_t start = scanned_bytes;
  std::uint32_t until_balance = kBalanceEvery;
  while (scanned_bytes - start < budget) {
    if (buf_ == nullptr || buf_->empty()) {
      WorkBuf* full = get_full_buf();
      if (full == nullptr) break;
      if (buf_ != nullptr) put_empty_buf(buf_);
      buf_ = full;
    }
    scan_object(buf_->cells[--buf_->n]);
    if (--until_balance == 0) {
      until_balance = kBalanceEvery;
      balance();
    }
  }
  return scanned_bytes - start;
}

void Marker::balance() {
  constexpr std::uint32_t kMinShare = 8;
  if (buf_ == nullptr || buf_->n < kMinShare || have_full_bufs()) return;
  // The older half: in a depth-first walk, the entries nearest the roots.
  WorkBuf* half = get_empty_buf();
  const std::uint32_t k = buf_->n / 2;
  std::memcpy(half->cells, buf_->cells, k * sizeof buf_->cells[0]);
  half->n = k;
  std::memmove(buf_->cells, buf_->cells + k, (buf_->n - k) * sizeof buf_->cells[0]);
  buf_->n -= k;
  put_full_buf(half);
}

void Marker::scan_range(std::uintptr_t lo, std::uintptr_t hi) {
  scan_words(lo, hi, *this);
}

namespace {
// Whether gp's stack still needs its scan in this cycle (a live goroutine not scanned in
// `cycle`); *w gets the gc word read, for the scan's generation check.
bool needs_scan(const runtime::G* gp, std::uint32_t cycle, std::uint64_t* w) {
  const runtime::GStatus st = gp->status.load(std::memory_order_acquire);
  if (st == runtime::GStatus::kIdle || st == runtime::GStatus::kDead) return false;
  *w = gp->gc_word.load(std::memory_order_acquire);
  return (*w >> runtime::gc_hooks::kCycleShift) != cycle;
}
}  // namespace

bool scan_goroutine_stacks(Marker& mk, std::int64_t* stack_bytes) {
  runtime::LockGuard l(g_sched_lock);
  runtime::Sched* s = g_sched;
  if (s == nullptr) return true;
  std::vector<runtime::G*> gs;
  {
    runtime::LockGuard al(s->allg_lock);
    gs = s->allg;
  }
  const std::uint32_t cycle = g_cycle.load(std::memory_order_relaxed);
  bool all = true;
  for (runtime::G* gp : gs) {
    std::uint64_t w = 0;
    if (!needs_scan(gp, cycle, &w)) continue;
    const bool done = (w & runtime::gc_hooks::kRunning) != 0
                          ? scan_running(*s, mk, gp, stack_bytes)
                          : scan_stopped(mk, gp, w, cycle, stack_bytes);
    all = all && done;
  }
  return all;
}

// ---- Stack-scan jobs for the Ps (Go's markroot jobs) ---------------------------------
//
// At mark start the coordinator snapshots allg; workers claim goroutines from it in
// batches and scan the stopped ones, in their slices' busy sections (their greys are then
// covered by the termination check like any slice's). Running goroutines and scans that
// lose the generation race are left to the coordinator's own pass, which starts once the
// list is used up (or which takes the rest of it when no slice runs). The snapshot is
// rewritten only at the next mark start, when no slice of this cycle can still run.
// The runtime whose goroutines the snapshot holds: a worker takes jobs only from its own
// runtime's snapshot, and detach() clears it (a runtime that exits frees its goroutines,
// and the next one's Ms could otherwise claim them before the next mark start).
std::atomic<runtime::Sched*> g_stack_jobs_sched{nullptr};
namespace {
std::vector<runtime::G*> g_stack_jobs;
std::atomic<std::size_t> g_stack_jobs_count{0};
std::atomic<std::size_t> g_stack_jobs_next{0};
}  // namespace

void prepare_stack_jobs() {
  g_stack_jobs_count.store(0, std::memory_order_relaxed);
  g_stack_jobs_next.store(0, std::memory_order_relaxed);
  runtime::LockGuard l(g_sched_lock);
  g_stack_jobs.clear();
  if (runtime::Sched* s = g_sched) {
    runtime::LockGuard al(s->allg_lock);
    g_stack_jobs = s->allg;
  }
  g_stack_jobs_sched.store(g_sched, std::memory_order_relaxed);
  g_stack_jobs_count.store(g_stack_jobs.size(), std::memory_order_release);
}

bool stack_jobs_left() {
  return g_stack_jobs_next.load(std::memory_order_relaxed) <
         g_stack_jobs_count.load(std::memory_order_relaxed);
}

void take_remaining_stack_jobs() {
  g_stack_jobs_next.store(g_stack_jobs_count.load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
}

std::int64_t run_stack_jobs(Marker& mk, std::int64_t budget, const runtime::Sched* own) {
  constexpr std::size_t kBatch = 64;
  const std::size_t count = g_stack_jobs_count.load(std::memory_order_acquire);
  if (own == nullptr || g_stack_jobs_sched.load(std::memory_order_relaxed) != own) return 0;
  const std::uint32_t cycle = g_cycle.load(std::memory_order_relaxed);
  std::int64_t bytes = 0;
  while (bytes < budget) {
    const std::size_t first = g_stack_jobs_next.fetch_add(kBatch, std::memory_order_relaxed);
    if (first >= count) break;
    for (std::size_t i = first; i < std::min(count, first + kBatch); ++i) {
      runtime::G* gp = g_stack_jobs[i];
      std::uint64_t w = 0;
      if (!needs_scan(gp, cycle, &w)) continue;
      if ((w & runtime::gc_hooks::kRunning) != 0) continue;  // the coordinator stops it
      scan_stopped(mk, gp, w, cycle, &bytes);  // lost the race: the coordinator retries
    }
  }
  g_stack_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return bytes;
}

bool collect_mutator_greys() {
  bool any = false;
  for_each_mutator([&any](MutatorState& ms) {
    runtime::LockGuard l(ms.lock);
    any = any || (ms.grey != nullptr && !ms.grey->empty());
    release_buf(ms.grey);
  });
  return any;
}

void scan_when_asked(MutatorState* ms) noexcept {
  ms->scan_pending.store(0, std::memory_order_relaxed);
  runtime::M* m = runtime::current_m();
  if (m != nullptr && m->curg != nullptr) runtime::gc_hooks::resumed(m->curg);
}

void install_stop_signal() {
  os::install_stop_handler(on_stop_signal);
}

}  // namespace gort::gc::detail

namespace gort::runtime::gc_hooks {

void self_scan(G* gp) noexcept {
  using namespace gort::gc::detail;
  MutatorState* ms = mutator();
  Busy busy(ms);
  if (current_phase() != kMark) return;
  const std::uint32_t cycle = g_cycle.load(std::memory_order_relaxed);
  if ((gp->gc_word.load(std::memory_order_relaxed) >> kCycleShift) == cycle) return;
  // Callee-saved registers of our callers may hold pointers: setjmp spills them into a
  // local, and the scan starts at that local (below this frame's saved registers).
  jmp_buf spilled;
  setjmp(spilled);
  const auto sp = reinterpret_cast<std::uintptr_t>(&spilled);
  {
    // Its greys go to the global list when it is destroyed, still inside the section, so
    // the collector's termination check (a handshake, then a look) cannot miss them.
    Marker mk;
    mk.scan_range(sp, gp->stack.hi);
    ms->marked_bytes.fetch_add(mk.marked_bytes, std::memory_order_relaxed);
  }
  gc::detail::g_stack_bytes.fetch_add(static_cast<std::int64_t>(gp->stack.hi - sp),
                                      std::memory_order_relaxed);
  set_scanned(gp, cycle);
}

}  // namespace gort::runtime::gc_hooks

namespace gort::gc::detail {

void wake_idle_mark_worker() {
  runtime::LockGuard l(g_sched_lock);
  if (g_sched == nullptr || g_sched->npidle.load(std::memory_order_relaxed) == 0) return;
  runtime::wakep(*g_sched);  // starts no M once the runtime exits (startm)
}

}  // namespace gort::gc::detail

namespace gort::runtime::gc_hooks {

int attached_procs() {
  LockGuard l(gc::detail::g_sched_lock);
  return gc::detail::g_sched != nullptr ? gc::detail::g_sched->gomaxprocs : 1;
}

int attached_idle_procs() {
  LockGuard l(gc::detail::g_sched_lock);
  return gc::detail::g_sched != nullptr
             ? gc::detail::g_sched->npidle.load(std::memory_order_relaxed)
             : -1;
}

void attach(Sched* s) {
  gc::detail::install_stop_signal();
  LockGuard l(gc::detail::g_sched_lock);
  gc::detail::g_sched = s;
}

void detach(Sched* s) {
  {
    LockGuard l(gc::detail::g_sched_lock);
    if (gc::detail::g_sched == s) gc::detail::g_sched = nullptr;
    // Its goroutines go with it: no later runtime (which may be allocated at the same
    // address) may take them from this cycle's snapshot.
    if (gc::detail::g_stack_jobs_sched.load(std::memory_order_relaxed) == s) {
      gc::detail::g_stack_jobs_sched.store(nullptr, std::memory_order_relaxed);
      gc::detail::take_remaining_stack_jobs();
    }
  }
  for (P* p : s->allp) gc::detail::release_p_cache(p);
}

}  // namespace gort::runtime::gc_hooks

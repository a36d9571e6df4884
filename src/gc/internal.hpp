// The collector's internal interfaces, shared by the files of src/gc/ (docs/design/gc.md
// has the essay; each file's header comment has its part of the protocol).
//
//   heap.cpp       page heap, size classes, spans
//   mutator.cpp    per-thread mutator state, busy sections and the handshake
//   alloc.cpp      caches (per P and per thread) and the allocation paths
//   mark.cpp       greying, work buffers, draining, stack scanning
//   sweep.cpp      sweeping spans, destructors, finalizer resurrection
//   roots.cpp      Ptr counts, root logs, finalizers
//   collector.cpp  the cycle, the pacer, gctrace, statistics and the public API
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "gc/heap.hpp"
#include "gort/gc.hpp"
#include "runtime/lock.hpp"

namespace gort::runtime {
struct G;
struct M;
struct P;
struct Sched;
}  // namespace gort::runtime

namespace gort::gc::detail {

// ---- Phases -------------------------------------------------------------------------

// kOff: mutators run without barriers and allocate white. kMark: the write barrier shades
// both the overwritten and the new pointer, Ptr count changes shade their object, and
// allocation is black. Changed only by the collector thread, each change followed by a
// handshake (mutator.cpp) so that no busy section that saw the old phase is still running.
enum Phase : std::uint32_t { kOff = 0, kMark = 1 };
extern std::atomic<std::uint32_t> g_phase;
// The number of the current (or last) cycle; goroutine stacks record the cycle they were
// scanned in.
extern std::atomic<std::uint32_t> g_cycle;
// The sweep generation of the spans the current mark phase marks. The generation moves on
// just before the phase ends (collector.cpp), and in that window a span may already be
// swept for the next generation: only spans of this generation get mark bits (shade,
// black allocation), or the next cycle would find stale marks (objects marked but never
// scanned).
extern std::atomic<std::uint32_t> g_mark_sweepgen;
// Set by the collector while it checks whether marking is done: mark assists take no new
// work while it is set (collector.cpp, mark_until_done). Without it, an assist could take
// the last full buffer between the collector's handshake and its look for work, so the
// collector would find none and end marking while the assist still scanned: the objects
// in that buffer marked, their children never, and freed while reachable.
extern std::atomic<bool> g_assists_closed;
inline bool marks_span(const Span* s) {
  return s->sweepgen.load(std::memory_order_acquire) ==
         g_mark_sweepgen.load(std::memory_order_relaxed);
}

// ---- Work buffers (mark.cpp) --------------------------------------------------------

// A grey object in a work buffer: its address, with its type id in the top 16 bits (heap
// addresses are below 2^48, type ids below 2^16), so that scanning it needs no lookup of
// its span.
inline std::uintptr_t grey_entry(std::uintptr_t cell, std::uint32_t type) {
  return cell | (std::uintptr_t{type} << 48);
}
inline std::uintptr_t grey_cell(std::uintptr_t grey) {
  return grey & (kMaxHeapAddress - 1);
}
inline std::uint32_t grey_type(std::uintptr_t grey) {
  return static_cast<std::uint32_t>(grey >> 48);
}

struct WorkBuf {
  static constexpr std::uint32_t kCapacity = 510;
  WorkBuf* next = nullptr;
  std::uint32_t n = 0;
  std::uintptr_t cells[kCapacity];  // grey entries (above)
  bool full() const { return n == kCapacity; }
  bool empty() const { return n == 0; }
};

// Full buffers waiting to be scanned, and empty ones. Buffers come from memory mapped for
// them and are never freed (the collector may grey objects while a goroutine it stopped
// holds malloc's lock).
WorkBuf* get_empty_buf();
void put_empty_buf(WorkBuf* b);
void put_full_buf(WorkBuf* b);
WorkBuf* get_full_buf();
bool have_full_bufs();
// Appends a grey entry to *buf (taking an empty buffer if null, publishing it when full).
void push_grey(WorkBuf*& buf, std::uintptr_t grey);
// Gives *buf back (to the full list if it holds work) and sets it null.
void release_buf(WorkBuf*& buf);

// Greys the object containing addr if it is an allocated, unmarked cell: sets its mark
// bit and returns its grey entry (0 if nothing to do: not in the heap, free, already
// marked, or an object without Members, which is marked black at once). *bytes gets the
// cell size of a newly marked object.
std::uintptr_t shade(std::uintptr_t addr, std::size_t* bytes);

// ---- Mutator state (mutator.cpp) ----------------------------------------------------

struct MCache;

// Per-thread state for every thread that uses the heap (goroutine threads and plain
// threads). The collector finds them in a registry.
// Cache-line aligned, as MCache is (below), since the owner writes it at every
// allocation (a precaution: binary-trees measured no difference).
struct alignas(64) MutatorState {
  // Sections entered and left, counted together: odd while the thread runs a busy section
  // (below). Only the owner writes it.
  std::atomic<std::uint64_t> busy{0};
  // Set by the stop signal's handler when it lands inside a busy section: the goroutine
  // scans its own stack when the section ends (mark.cpp, "Running goroutines").
  std::atomic<std::uint32_t> scan_pending{0};
  // Guards grey and root_log: the owner appends, the collector takes them.
  runtime::Lock lock;
  WorkBuf* grey GORT_GUARDED_BY(lock) = nullptr;
  std::vector<const void*> root_log GORT_GUARDED_BY(lock);
  std::atomic<std::int64_t> marked_bytes{0};  // bytes this thread's barriers marked
  // Bytes allocated during marking not yet paid for by assist work (owner only).
  std::int64_t assist_debt = 0;
  // Bytes left to allocate before the next heap profile sample (owner only).
  std::int64_t sample_countdown = 0;
  MCache* cache = nullptr;  // for allocation without a P (owner; flushed by the collector)
  // Objects this thread allocated while not running a goroutine, each with a count taken
  // by the allocation itself, not yet handed to the Ptr that make() builds (owner only).
  // No scan finds such a thread's registers: without the count, a cycle that started and
  // ended between the allocation and the Ptr would free the object (roots.cpp, retain).
  std::vector<const void*> precounted;
  MutatorState* next = nullptr;  // registry link (guarded by the registry lock)
  MutatorState* prev = nullptr;
};

// The calling thread's state (registered on first use, unregistered at thread exit).
MutatorState* mutator() noexcept;
// The variable behind mutator(), null until the thread's first gc operation.
extern constinit thread_local MutatorState* t_mutator_state;
// mutator() without the call, for leaf functions only (noinline, never switching
// goroutines: see runtime::current_m_in_leaf). Binary-trees calls it three times per node.
inline MutatorState* mutator_in_leaf() noexcept {
  MutatorState* ms = t_mutator_state;
  return ms != nullptr ? ms : mutator();
}

// A busy section: the thread's gc operations that depend on the phase run inside one, and
// the collector's handshake waits until every section that could have seen an older phase
// has ended. Entry is a relaxed store and a compiler fence, the light side of an
// asymmetric fence whose heavy side is the handshake's os::process_barrier() (as sysmon's
// preemption handshake, sched.hpp); without membarrier (or under TSan) both sides are
// seq_cst. Sections do not nest and never block.
// Whether mutators take the light entry (membarrier registered): 1 yes, 0 no, -1 not
// decided (and under TSan, which does not model membarrier). Decided before the first
// thread state exists (create_state), so no section runs while it is undecided.
extern std::atomic<int> g_fenced_mutators;
inline void enter_busy(MutatorState* ms) noexcept {
  const std::uint64_t entered = ms->busy.load(std::memory_order_relaxed) + 1;
  if (g_fenced_mutators.load(std::memory_order_relaxed) == 1) [[likely]] {
    ms->busy.store(entered, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // pairs with process_barrier
  } else {
    ms->busy.exchange(entered, std::memory_order_seq_cst);
  }
}
void scan_when_asked(MutatorState* ms) noexcept;  // mark.cpp
inline bool in_busy_section(const MutatorState* ms) noexcept {
  return (ms->busy.load(std::memory_order_relaxed) & 1) != 0;
}
inline void exit_busy(MutatorState* ms) noexcept {
  // Release: the collector reads the new count with acquire, so the section's writes (a
  // store behind the barrier, a grey push) happen before what it does next.
  ms->busy.store(ms->busy.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  if (ms->scan_pending.load(std::memory_order_relaxed) != 0) [[unlikely]]
    scan_when_asked(ms);
}
inline std::uint32_t current_phase() noexcept {
  return g_phase.load(std::memory_order_seq_cst);
}

class Busy {
 public:
  explicit Busy(MutatorState* ms) noexcept : ms_(ms) { enter_busy(ms_); }
  ~Busy() { exit_busy(ms_); }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  MutatorState* ms_;
};

// The collector's side, in two steps. publish_phase, after a store to g_phase: from its
// return on, every busy section that starts sees the new phase (the membarrier; running
// threads take an interrupt, nothing waits). wait_for_sections: returns once every
// section that was running then has ended. No thread waits for the collector meanwhile,
// so only publish_phase is part of a pause (collector.cpp). Context: the collector thread.
void publish_phase();
void wait_for_sections();
void handshake();  // both
// Bytes the barriers of exited threads marked since the last call (the collector adds
// them to the registered threads' marked_bytes).
std::int64_t exited_marked_bytes();
// Calls f on every registered mutator state, under the registry lock.
void for_each_mutator(const std::function<void(MutatorState&)>& f);
// Greys from a barrier: obj's cell is pushed to the thread's buffer. Inside a busy section.
void barrier_shade(MutatorState* ms, const void* obj) noexcept;

// ---- Caches and allocation (alloc.cpp) ----------------------------------------------

// A cache of one swept span per size class (Go's mcache), used without a lock by its
// owner: the P's M (per-P caches) or the thread (thread caches). The collector revokes
// all caches at the end of each mark phase: it bumps g_cache_epoch, handshakes, then
// flushes each cache under its lock; an owner that sees an old epoch flushes its own.
// Cache-line aligned (and so padded): a neighbour in malloc's memory that another core
// writes would otherwise share the line of the counters the owner writes at every
// allocation (measured: a third of the allocation fast path's time in binary-trees).
struct alignas(64) MCache {
  runtime::Lock lock;  // taken by the owner's slow path and by the collector's flush
  std::atomic<std::uint32_t> epoch{0};
  Span* spans[kMaxClasses] = {};
  std::int64_t black_bytes = 0;  // allocated black during marking (read after a flush)
  // Objects and bytes allocated from spans that have left this cache, ever (counted when
  // they leave, under the lock; stats() adds the cached spans' allocations, under it too).
  std::atomic<std::uint64_t> mallocs{0}, alloc_bytes{0};
  MCache* next_all = nullptr;  // registry of all caches
};
extern std::atomic<std::uint32_t> g_cache_epoch;
// Returns every cache's spans to the central lists. Context: collector, after a handshake
// that followed a g_cache_epoch bump. Returns the black bytes they allocated.
std::int64_t flush_all_caches();
// Sums of every cache's counters (stats()).
void cache_totals(std::uint64_t* mallocs, std::uint64_t* bytes);
// A P's cache (created on first use) and its release when the P is destroyed.
MCache* p_cache(runtime::P* p);
void release_p_cache(runtime::P* p);
MCache* new_cache();
// Makes a flushed cache of an exited thread ready for the thread that reuses it.
void renew_cache(MCache* c);
void flush_cache(MCache* c) GORT_REQUIRES(c->lock);

// Sweeps spans of `sc` (for the allocator) until one with a free cell is found; returns it
// swept and out of the lists, or null. Skips spans only the background sweeper may sweep.
Span* take_swept_span(int sc);
// Puts a span that left a cache back into its central list.
void return_span(Span* s);

// ---- Sweeping (sweep.cpp) -----------------------------------------------------------

// Sweeps s (claimed: sweepgen == heap - 1). Returns false if the span was freed (it held
// no live object), unless keep_empty, which keeps it, swept, for the caller.
// with_user_code: destructors and finalizer resurrection allowed (background sweeper).
bool sweep_span(Span* s, bool with_user_code, bool keep_empty = false);
// Sweeps one span needing it from any list; false when none is left. Context: the
// background sweeper (user code allowed).
bool sweep_one();
// Sweeps until no span of the previous generation is left.
void finish_sweep();

// ---- Roots (roots.cpp) --------------------------------------------------------------

class Marker;
// Greys every object with a Ptr count (dropping uncounted ones from the root set), and
// the referents of objects with finalizers. Context: collector, while marking. Returns
// the root set's size in bytes (a pointer per rooted object): gort's counterpart of Go's
// scanned globals, in gctrace and in the pacer's goal.
std::int64_t mark_counted_roots(Marker& mk);
void mark_finalizer_referents(Marker& mk);
// Drops root-set entries whose objects were not marked (they are about to be freed).
// Context: collector, after marking, before the sweep generation changes.
void prune_roots();
// Sweep found obj (with kHasFinalizer) unreachable: queues its finalizer, which keeps it
// alive until the finalizer has run. Returns true if it did (the object stays allocated).
bool queue_finalizer(std::uintptr_t cell);
// Registered types by id (alloc.cpp); id 0 and unused ids are null.
inline constexpr std::uint32_t kMaxTypes = 1u << 16;
extern std::atomic<const TypeInfo*> g_types[kMaxTypes];
inline const TypeInfo* type_info(std::uint32_t id) {
  return id < kMaxTypes ? g_types[id].load(std::memory_order_acquire) : nullptr;
}
// Moves a root log into the global root set (a thread exits). Empties log.
void adopt_roots(std::vector<const void*>& log);

// ---- Marking (mark.cpp) -------------------------------------------------------------

// The collector's marker: a Visitor that greys into its own buffers.
class Marker final : public Visitor {
 public:
  Marker();
  ~Marker();
  Marker(const Marker&) = delete;
  Marker& operator=(const Marker&) = delete;
  void mark(const void* obj) override { grey_addr(reinterpret_cast<std::uintptr_t>(obj)); }
  void grey_addr(std::uintptr_t addr);
  // Scans grey objects until none is left or budget bytes were scanned; returns bytes.
  std::int64_t drain(std::int64_t budget);
  // Scans [lo, hi) conservatively.
  void scan_range(std::uintptr_t lo, std::uintptr_t hi);
  void flush();  // publishes the local buffer
  std::int64_t marked_bytes = 0;
  std::int64_t scanned_bytes = 0;
  // Background marking (collector, workers on the Ps) earns credit that assists may spend
  // instead of marking (g_background_credit); an assist's own marking does not.
  bool earns_credit = true;

 private:
  // Go's gcWork.balance: when no full buffer is left for others, publishes the older half
  // of ours, so that other markers (the Ps' workers, assists) can share a traversal whose
  // grey frontier is narrow (a tree's fits in one buffer). Checked every kBalanceEvery
  // objects.
  static constexpr std::uint32_t kBalanceEvery = 32;
  void balance();
  std::int64_t drain_unaccounted(std::int64_t budget);
  void scan_object(std::uintptr_t grey);
  WorkBuf* buf_ = nullptr;
};

// Scans the stacks of every goroutine of the attached runtime not yet scanned in this
// cycle. Returns true when all are scanned. Context: collector.
bool scan_goroutine_stacks(Marker& marker, std::int64_t* stack_bytes);
// Stack-scan jobs for the Ps' workers (mark.cpp). prepare: the coordinator, at mark
// start, before the workers start. run: a worker of runtime `own`, in a busy section,
// scans stopped goroutines' stacks from the list (if it is own's) until budget bytes;
// returns the bytes. take_remaining:
// the coordinator takes the rest (no worker runs); its own pass does the scans.
void prepare_stack_jobs();
bool stack_jobs_left();
std::int64_t run_stack_jobs(Marker& mk, std::int64_t budget, const runtime::Sched* own);
void take_remaining_stack_jobs();
// Takes every mutator's grey buffer into the full list; returns true if any held work.
bool collect_mutator_greys();
void install_stop_signal();

// ---- Mark workers on the Ps (worker.cpp) --------------------------------------------

// Go's gcBackgroundUtilization: background marking's share of GOMAXPROCS while every P is
// busy, whether the Ps do it (worker.cpp) or the collector thread (collector.cpp).
inline constexpr double kBackgroundUtilization = 0.25;

// Whether the Ps mark (a runtime is attached and GODEBUG has no gcworkers=0).
bool mark_workers_enabled();
// The coordinator's side. start: the Ps may mark from now on (budgeted over procs); stop:
// they no longer start slices, and the cycle's worker time is returned.
void start_mark_workers(int procs);
struct MarkWorkerTotals {
  std::int64_t fractional_ns = 0, idle_ns = 0;
};
MarkWorkerTotals stop_mark_workers();
// The cycle's background marking (fractional slices and the collector's own) minus its
// budget, 25% of GOMAXPROCS x the mark phase's time so far, scaled by slack/1000; <= 0
// while under it.
std::int64_t background_over_budget_ns(std::int64_t slack_permille);
void note_collector_marking(std::int64_t ns);
std::int64_t ns_since_last_worker_slice();
// Workers bump a counter when they run out of work; the coordinator sleeps on it.
std::uint32_t worker_kicks();
void wait_for_worker_kick(std::uint32_t seen, std::int64_t timeout_ns);
// Slices running on the Ps (their private greys are invisible to the coordinator).
int active_mark_slices();
// Wakes an M for an idle P of the attached runtime, if there is one (mark.cpp): it marks
// in idle mode, and its wakeup wakes the next (Go's enlistWorker and resetspinning).
void wake_idle_mark_worker();

// ---- Collector (collector.cpp) ------------------------------------------------------

// Whether $GODEBUG lists `setting` ("gctrace=1", "gcworkers=0"), as Go's comma-separated
// key=value list.
bool godebug_has(const char* setting);

// Stack bytes scanned in the current cycle (the pacer counts them, as Go 1.18 does).
extern std::atomic<std::int64_t> g_stack_bytes;
// The current cycle's scan work (bytes of objects scanned by every drain), and the part
// of the background's not yet spent by assists (Go's bgScanCredit). Reset at mark start.
extern std::atomic<std::int64_t> g_scan_work;
extern std::atomic<std::int64_t> g_background_credit;
// Go's assist rate (gcControllerState.revise): the scan work still expected over the heap
// the mutators may still allocate before the goal, in scan bytes per byte allocated.
// Background marking shrinks the first, so assists get lighter as it keeps up, and
// heavier as the heap nears the goal. Past the expected work: the most there can be (the
// whole live heap) over the room left to 1.1x the goal, as Go's hard goal. (collector.cpp)
double assist_work_per_byte(std::int64_t expected, std::int64_t done, std::int64_t goal,
                            std::int64_t live);
// Takes up to want bytes of g_background_credit (never below zero); returns what it took.
std::int64_t spend_background_credit(std::int64_t want);

// The allocator calls this when it grew the heap: starts a cycle if the trigger is passed.
void maybe_trigger(std::int64_t live_bytes);
// Takes obj off this thread's MutatorState::precounted: true if it was there (its count
// now belongs to the caller).
bool take_precount(const void* obj) noexcept;
// An allocating goroutine in debt does mark work (mark assists). Outside busy sections.
void assist(MutatorState* ms);
// An allocation that took the heap past its goal while no cycle marks (the cycle the
// trigger asked for has not started, or the last one is still sweeping) waits until one
// marks, where assists pace it. Go cannot overshoot this way: the goroutine that crosses
// the trigger starts the cycle itself (gcStart, which finishes the sweep first). Here the
// collector's thread starts it, and on a loaded machine that thread can wait milliseconds
// for a CPU while the mutator allocates tens of megabytes. Bounded (100 ms), as the
// assist's own wait past the goal. Outside busy sections and runtime sections.
void wait_for_marking_past_goal();
// A running goroutine was stopped for ns while the collector scanned its stack.
void note_stack_stop(std::int64_t ns);

}  // namespace gort::gc::detail

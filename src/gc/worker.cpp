// Mark work on the Ps: Go's background mark workers (mgc.go gcBgMarkWorker; the modes of
// mgcpacer.go findRunnableGCWorker, and findRunnable's idle worker), as slices run by the
// scheduler on g0.
//
// Go runs one worker goroutine per P and lets the scheduler pick it: dedicated workers
// (a quarter of GOMAXPROCS, rounded) mark flat out, fractional ones make up the rest of
// the 25%, and any P with nothing to run marks in idle mode. gort keeps the modes but not
// the goroutines: an M marks on its own thread stack (g0) between goroutines, in slices of
// at most kSliceBytes of scanning, each in a busy section of the M's thread (mutator.cpp),
// exactly as a mark assist does. g0 is always inside a runtime section, so sysmon never
// takes the P of an M that marks, and no goroutine stack is needed.
//
//   fractional  find_runnable, on every scheduling round of a P while marking: marks while
//               the background time of the cycle (every mode on every P, plus the
//               collector's own marking) is below 25% of GOMAXPROCS x the time since mark
//               start, and stops at 1.2 x that budget or when no work is left. One
//               budget for the whole runtime rather than Go's per-P goal: a P that
//               schedules often can take the whole quarter, which is what Go's dedicated
//               worker does. While goroutines wait on the P, one slice per round.
//   idle        find_runnable, before the P goes idle: marks until the P has a goroutine to
//               run (its queue, the global queue, a due timer, the network) or no work is
//               left. Not limited, as in Go; unlike Go, its time counts towards the 25%:
//               the quarter is a floor under the marking's progress, and an idle P that
//               already gives it needs no busy P to give it too. (Go's fractional workers
//               take a quarter of the busy Ps even then: binary-trees on 2 Ps spent 6% of
//               its time in fractional slices beside a P marking idle.)
// A slice first scans stopped goroutines' stacks from the cycle's job list (mark.cpp,
// Go's markroot jobs), then drains grey objects.
//
// The collector thread is the coordinator (collector.cpp): it changes phases, marks the
// counted roots, stops running goroutines for their scans, wakes Ms for idle Ps when work
// is queued (Go's enlistWorker), and decides when marking is done. It marks itself only
// when the Ps cannot: no runtime is attached (plain threads), GODEBUG=gcworkers=0, or no
// slice has run for 2 ms while work waits (every P running a goroutine that never reaches
// the scheduler), and then within the same budget.
//
// Invariants.
//   W1  A slice marks only while phase == mark and assists are open, checked inside its
//       busy section; so the coordinator's termination (close assists, wait for every
//       section, look for work) covers workers exactly as it covers assists.
//   W2  A slice publishes its leftover greys (the Marker's destructor) before its section
//       ends.
//   W3  Only the coordinator ends marking; a worker that runs out of work wakes it.
//   W4  Fractional marking (and the coordinator's own) runs only while the background
//       marking of every mode is under 25% of GOMAXPROCS over the mark phase, and stays
//       within it give or take one slice per P; idle marking only runs on a P with
//       nothing else to run.
//   W5  A P whose worker marks notices a goroutine to run within one slice.
#include <algorithm>

#include "base/cpu.hpp"
#include "gc/internal.hpp"
#include "os/os.hpp"
#include "runtime/gc_hooks.hpp"
#include "runtime/sched.hpp"

namespace gort::runtime::gc_hooks {
std::atomic<std::uint32_t> g_mark_workers{0};
}  // namespace gort::runtime::gc_hooks

namespace gort::gc::detail {
namespace {

constexpr std::int64_t kSliceBytes = 64 << 10;  // scanning per slice (~50-100 us)

std::atomic<std::int64_t> g_mark_start_ns{0};
std::atomic<int> g_procs{1};
std::atomic<std::int64_t> g_fractional_ns{0};  // this cycle's fractional slices
std::atomic<std::int64_t> g_idle_ns{0};        // this cycle's idle slices
std::atomic<std::int64_t> g_collector_ns{0};   // the coordinator's own marking, this cycle
std::atomic<std::int64_t> g_last_slice_ns{0};  // start of the latest slice on a P
// Slices in flight: the coordinator looks for the end of marking only when none is
// (their private greys are invisible to it), as Go's gcMarkDone waits for nwait == nproc.
std::atomic<int> g_active_slices{0};
// Bumped when a worker runs out of work; the coordinator sleeps on it (a futex word), saying so in
// g_coordinator_waiting so that a kick costs a system call only when someone waits. Both seq_cst:
// either the kicker sees the flag or the futex's compare sees the new count.
std::atomic<std::uint32_t> g_kick{0};
std::atomic<bool> g_coordinator_waiting{false};

void kick_coordinator() {
  g_kick.fetch_add(1);
  if (g_coordinator_waiting.load()) os::futex_wake(&g_kick, 1);
}

// A worker that ran dry while another marks: that one hands out half of its buffer as
// soon as the global list is empty (Marker::balance), so spin for it a moment rather
// than going idle and being woken again (an M's sleep and wakeup per dry spell cost a
// quarter of the parallel speedup on a tree). Inside the slice's section; returns bytes.
std::int64_t wait_for_shared_work(Marker& mk, std::int64_t budget) {
  constexpr int kSpins = 2000;  // ~20-50 us of pause instructions
  std::int64_t done = 0;
  for (int i = 0; i < kSpins && done < budget; ++i) {
    if (!have_full_bufs()) {
      if (g_active_slices.load(std::memory_order_relaxed) <= 1) break;  // nobody to share
      base::cpu_relax();
      continue;
    }
    done += mk.drain(budget - done);
    i = 0;
  }
  return done;
}

}  // namespace

bool mark_workers_enabled() {
  static const bool disabled = godebug_has("gcworkers=0");
  return !disabled && runtime::gc_hooks::attached_idle_procs() >= 0;
}

void start_mark_workers(int procs) {
  g_procs.store(std::max(procs, 1), std::memory_order_relaxed);
  g_fractional_ns.store(0, std::memory_order_relaxed);
  g_idle_ns.store(0, std::memory_order_relaxed);
  g_collector_ns.store(0, std::memory_order_relaxed);
  const std::int64_t now = os::nanotime();
  g_last_slice_ns.store(now, std::memory_order_relaxed);
  g_mark_start_ns.store(now, std::memory_order_relaxed);
  runtime::gc_hooks::g_mark_workers.store(1, std::memory_order_release);
  wake_idle_mark_worker();
}

MarkWorkerTotals stop_mark_workers() {
  runtime::gc_hooks::g_mark_workers.store(0, std::memory_order_release);
  return {g_fractional_ns.load(std::memory_order_relaxed),
          g_idle_ns.load(std::memory_order_relaxed)};
}

std::int64_t background_over_budget_ns(std::int64_t slack_permille) {
  const std::int64_t elapsed = os::nanotime() - g_mark_start_ns.load(std::memory_order_relaxed);
  const double quota = kBackgroundUtilization * g_procs.load(std::memory_order_relaxed);
  const auto allowed =
      static_cast<std::int64_t>(quota * static_cast<double>(elapsed) * slack_permille / 1000);
  return g_fractional_ns.load(std::memory_order_relaxed) +
         g_idle_ns.load(std::memory_order_relaxed) +
         g_collector_ns.load(std::memory_order_relaxed) - allowed;
}

void note_collector_marking(std::int64_t ns) {
  g_collector_ns.fetch_add(ns, std::memory_order_relaxed);
}

std::int64_t ns_since_last_worker_slice() {
  return os::nanotime() - g_last_slice_ns.load(std::memory_order_relaxed);
}

void wait_for_worker_kick(std::uint32_t seen, std::int64_t timeout_ns) {
  g_coordinator_waiting.store(true);
  os::futex_wait(&g_kick, seen, timeout_ns);
  g_coordinator_waiting.store(false);
}

int active_mark_slices() {
  return g_active_slices.load();
}

std::uint32_t worker_kicks() {
  return g_kick.load(std::memory_order_acquire);
}

}  // namespace gort::gc::detail

namespace gort::runtime::gc_hooks {

using namespace gort::gc::detail;

bool mark_work_available() {
  return current_phase() == kMark && !g_assists_closed.load(std::memory_order_relaxed) &&
         (have_full_bufs() || stack_jobs_left());
}

bool fractional_mark_wanted() {
  return background_over_budget_ns(1000) < 0 && mark_work_available();
}

bool fractional_mark_may_go_on(bool goroutines_wait) {
  // One slice at a time while goroutines wait: a 1 ms run made liveheap's 1 ms ticker
  // 6 ms late at p99 (173 us before workers).
  if (goroutines_wait) return false;
  return background_over_budget_ns(1200) < 0;  // Go's pollFractionalWorkerExit
}

MarkSlice mark_slice(bool idle) {
  MutatorState* ms = mutator();
  const std::int64_t t0 = os::nanotime();
  g_last_slice_ns.store(t0, std::memory_order_relaxed);
  std::int64_t done = 0;
  {
    Busy busy(ms);
    if (current_phase() != kMark || g_assists_closed.load()) return MarkSlice::kStop;  // W1
    const bool others = g_active_slices.fetch_add(1) != 0;
    Marker mk;                // W2: flushed by its destructor, inside the section
    if (stack_jobs_left()) {  // roots first, as Go
      const runtime::M* m = runtime::current_m();
      done = run_stack_jobs(mk, kSliceBytes, m != nullptr ? m->sched : nullptr);
    }
    done += mk.drain(kSliceBytes - done);
    if (done < kSliceBytes && (others || g_active_slices.load() > 1))
      done += wait_for_shared_work(mk, kSliceBytes - done);
    ms->marked_bytes.fetch_add(mk.marked_bytes, std::memory_order_relaxed);
  }
  g_active_slices.fetch_sub(1);
  (idle ? g_idle_ns : g_fractional_ns).fetch_add(os::nanotime() - t0, std::memory_order_relaxed);
  if (done >= kSliceBytes) return MarkSlice::kMarked;  // drain may overshoot by an object
  // W3: out of work: the coordinator looks for more, or for the end. (Not after every
  // slice: that woke it every 50-100 us, 20 times the context switches in binary-trees.
  // A worker that stops with work left published it; the coordinator sees that within
  // its wait's timeout.)
  kick_coordinator();
  return done > 0 ? MarkSlice::kMarkedLast : MarkSlice::kNoWork;
}

}  // namespace gort::runtime::gc_hooks

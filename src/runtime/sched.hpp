// The scheduler's data structures: G (goroutine), M (OS thread), P (processor: the right
// to run Go code, with a local run queue), and Sched (global state). Vocabulary and
// algorithms follow Go's runtime/proc.go and runtime2.go; docs/design/scheduler.md explains
// the design, HACKING.md the rules.
//
// Ownership rules (who may touch what):
//   * A G's fields other than `status` belong to whoever owns the G per its status (below).
//     Ownership moves with release/acquire edges: run-queue push/pop, the sema bucket lock,
//     Sched::lock, and the G<->g0 switch on one thread.
//   * A P's fields belong to the M holding it (p->m), except runq/runnext (lock-free, any
//     thread may steal) and the relaxed-atomic counters (any thread may read).
//   * An M's fields belong to the M's thread, except nextp/spinning handed over by the
//     thread that wakes it (under Sched::lock, before Note::wakeup), and the preemption
//     handshake words (in_runtime, preempt) that sysmon reads and CASes.
//   * The M's thread touches its P only inside a runtime section (enter_runtime below):
//     sysmon may take the P of a goroutine running user code (sysmon.cpp, "Preemption"),
//     so between sections m->p may name a P that another M now holds.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "base/annotations.hpp"
#include "base/cache.hpp"
#include "base/fatal.hpp"
#include "base/rand.hpp"
#include "gort/detail/closure.hpp"
#include "gort/detail/sema.hpp"
#include "gort/runtime.hpp"
#include "lockfree/steal_ring.hpp"
#include "os/os.hpp"
#include "runtime/gqueue.hpp"
#include "runtime/lock.hpp"
#include "runtime/stack.hpp"
#include "runtime/timer.hpp"

namespace gort::runtime {

struct M;
struct P;
struct Sched;

// G status. Every transition is listed with who performs it.
enum class GStatus : std::uint32_t {
  // Allocated, on a free list. Nobody runs it; the stack holds no live frames.
  kIdle,
  // On a run queue (or held by the M about to run it). Not executing. Its saved sp is
  // valid; the M that dequeues it owns it.
  kRunnable,
  // Executing on g->m, which owns its stack. Only that M changes it (to kRunnable on
  // yield, kWaiting on park, kDead on exit): on g0 after the switch away, or, for a direct
  // yield or park, just before the switch (yield) or in the goroutine switched to (park).
  kRunning,
  // Parked, with waitreason set. Owned by whatever data structure it is queued on (a sema
  // bucket, ...); goready() moves it to kRunnable.
  kWaiting,
  // Exited; on a free list with its stack, to be reused.
  kDead,
};

// Per-goroutine storage for GoroutineLocal<T>.
struct GLocals {
  struct Entry {
    void* value = nullptr;
    void (*destroy)(void*) = nullptr;
  };
  std::vector<Entry> entries;
};

struct alignas(64) G {
  void* sp = nullptr;  // saved stack pointer while not running
  std::atomic<GStatus> status{GStatus::kIdle};
  std::uint64_t id = 0;
  M* m = nullptr;        // the M running it (kRunning), else null
  M* lockedm = nullptr;  // lock_os_thread(): the only M allowed to run it
  std::uint32_t lock_depth = 0;
  detail::WaitReason waitreason = detail::WaitReason::kNone;
  Stack stack;
  std::uintptr_t lowest_sp = 0;  // lowest sp seen at a switch (stack trimming heuristic)
  detail::Closure* fn = nullptr;
  void* fn_heap = nullptr;  // the closure's storage when it did not fit in the stack
  std::size_t fn_align = 0;
  int saved_errno = 0;  // errno is goroutine-local (runtime.hpp)
  GLocals* locals = nullptr;
  void* tsan_fiber = nullptr;
  void* asan_fake_stack = nullptr;
  // pprof labels (an interned, immutable pprof::detail::LabelList), inherited by the
  // goroutines it starts; read by the CPU profiler's signal handler.
  const void* labels = nullptr;
  // Return address of the go statement that created it (Go's gopc), for "created by" in
  // goroutine dumps; 0 for main.
  std::uintptr_t gopc = 0;
  bool is_main = false;
  // The collector's view of the stack (gc_hooks.hpp): running bit, switch generation, and
  // the cycle in which the stack was last scanned.
  std::atomic<std::uint64_t> gc_word{0};
};

// Bytes below the G reserved for an inline closure (larger closures go to the heap).
inline constexpr std::size_t kInlineClosureBytes = 192;

// What a goroutine asked its M's g0 to do after switching away (Go's mcall argument).
enum class Action : std::uint8_t { kNone, kYield, kPark, kExit, kExitSyscall };

// A park's commit step: runs after the goroutine is off its stack, on g0 or (direct park)
// at the resume point of the goroutine switched to, on the same M; it must not switch
// goroutines. Returning false cancels the park (the goroutine is made runnable again at
// once), as Go's gopark unlockf.
using ParkCommit = bool (*)(void* arg, G* g);

// M::preempt: sysmon's claim on the M's P (sysmon.cpp, "Preemption").
enum PreemptState : std::uint32_t {
  kPreemptNone = 0,  // no claim
  kPreemptClaimed,   // sysmon is deciding; the M's next section entry cancels the claim
  kPreemptTaken,     // sysmon took m->p; the M drops it at its next section entry
};

struct M {
  int id = 0;
  std::atomic<int> tid{0};  // kernel thread id, once the thread runs (the CPU profiler's timers)
  Sched* sched = nullptr;   // the runtime this M belongs to (saves a global load per switch)
  // Depth of runtime sections on this thread (enter_runtime). Written only by the M's own
  // thread, read by sysmon. g0 is runtime code: it starts at 1, and a goroutine switch
  // hands the switching side's level to the side it resumes (see enter_runtime).
  std::atomic<std::uint32_t> in_runtime{1};
  std::atomic<std::uint32_t> preempt{kPreemptNone};  // PreemptState
  G g0;  // the thread's own stack: the scheduler runs here
  G* curg = nullptr;
  P* p = nullptr;      // may be stale outside a runtime section (see the top of this file)
  P* nextp = nullptr;  // a P handed over while this M slept (set before park.wakeup())
  bool spinning = false;
  G* lockedg = nullptr;
  P* oldp = nullptr;  // the P left in kSyscall while this M is in a blocking() call
  // Its goroutine runs on without a P since sysmon took it (set when the M notices, in
  // preempt_noticed; cleared at the goroutine's next switch). Counted in
  // Sched::preempted_running.
  bool lost_p = false;
  // The collector's request to scan curg's stack (gc/mark.cpp, "Running goroutines"): the
  // target and the handshake state; then, from the signal handler that scanned it, the
  // lowest address scanned, the bytes it marked and how long the goroutine stopped.
  std::atomic<G*> gc_stop_target{nullptr};
  std::atomic<std::uint32_t> gc_stop_state{0};
  std::uintptr_t gc_stop_low = 0;
  std::int64_t gc_stop_marked = 0;
  std::int64_t gc_stop_ns = 0;
  os::Note park;
  M* schedlink = nullptr;  // idle M list; guarded by Sched::lock
  std::thread thread;      // not joinable for M0 (the thread that called run())
  base::FastRand rand;
  // A goroutine that switched directly (G -> G) to curg and is not done yet: whoever
  // resumes next on this M (finish_switch_in) requeues it (pending_action kYield) or runs
  // its park commit step, park_commit(park_arg) (kPark). See "Direct switches" in sched.cpp.
  G* pending_g = nullptr;
  Action pending_action = Action::kNone;
  // The pending action for g0 (set by the goroutine just before switching to g0).
  Action action = Action::kNone;
  // A park's commit step and its argument: for g0 (action kPark) or for the goroutine
  // resumed by a direct park (pending_action kPark).
  ParkCommit park_commit = nullptr;
  void* park_arg = nullptr;
  // This thread's errno. Its address never changes, so the runtime saves and restores a
  // goroutine's errno with plain loads and stores (no call, no PLT) at every switch.
  int* errno_slot = nullptr;
  // Sanitizer bookkeeping for the thread stack.
  const void* g0_stack_bottom = nullptr;
  std::size_t g0_stack_size = 0;
};

// Relaxed single-writer counters: the owning P's M writes, anyone reads.
struct PCounters {
  std::atomic<std::uint64_t> created{0}, exited{0}, switches{0}, yields{0}, parks{0}, steals{0},
      stolen{0}, spins{0}, global_gets{0};
};
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void bump(std::atomic<std::uint32_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// P status. kSyscall: its M is in a blocking() call and left it attached (Go's
// _Psyscall); the M takes it back on return unless sysmon retook it meanwhile (a CAS to
// kIdle by sysmon, or back to kRunning by the returning M: whoever wins owns it).
enum class PStatus : std::uint8_t { kIdle, kRunning, kSyscall };

struct alignas(base::kCacheLine) P {
  static constexpr std::uint32_t kRunQueueSize = 256;  // Go's runq size
  static constexpr int kLocalFreeMax = 64;             // Go's gfput threshold

  int id = 0;
  std::atomic<PStatus> status{PStatus::kIdle};
  // Bumped at every blocking() entry and exit: sysmon retakes a P only if it sees the
  // same call in progress on two of its ticks (Go's syscalltick).
  std::atomic<std::uint32_t> syscalltick{0};
  // The M holding the P. Written by that M (acquirep, releasep, blocking calls) and by
  // sysmon when it takes the P; atomic so that sysmon can read it (see acquirep for the
  // ordering).
  std::atomic<M*> m{nullptr};
  P* link = nullptr;  // idle P list; guarded by Sched::lock
  // Goroutines started or resumed on this P. Single-writer (the holding M); sysmon reads
  // it to find a goroutine that has run for long without a scheduling point.
  std::atomic<std::uint32_t> schedtick{0};
  // Direct yields left before one goes through g0, so find_runnable's 1-in-61 global
  // queue check is not bypassed by goroutines that only yield.
  std::uint32_t direct_yield_budget = 61;
  // Consecutive runnext picks (see "runnext fairness" in sched.cpp). On the P rather than
  // in a thread_local: a direct park picks on the goroutine's stack, which may migrate.
  std::uint32_t runnext_streak = 0;
  lockfree::StealRing<G*, kRunQueueSize> runq;
  alignas(base::kCacheLine) std::atomic<G*> runnext{nullptr};
  // Free Gs (with their stacks) owned by this P; a stack of pointers (see gqueue.hpp).
  G* gfree[kLocalFreeMax];
  int gfree_count = 0;
  std::uint64_t goid_next = 0, goid_end = 0;  // a batch of goroutine ids (Go's goidcache)
  PCounters counters;
  TimerHeap timers;          // timers armed by goroutines running on this P (timer.cpp)
  void* gc_cache = nullptr;  // the collected heap's allocation cache (gc/alloc.cpp)
};

struct Sched {
  explicit Sched(const Options& resolved);
  ~Sched();

  Options opts;
  int gomaxprocs = 0;
  // gomaxprocs == 1: nobody can steal, so the owner pops its run queue without a CAS.
  bool single_p = false;
  std::vector<P*> allp;
  std::vector<std::uint32_t> steal_strides;  // numbers coprime with gomaxprocs

  Lock lock;
  // Global run queue.
  GQueue runq GORT_GUARDED_BY(lock);
  std::atomic<std::int32_t> runq_size{0};  // == runq.size(); written under lock, read as a hint
  // Idle Ps and Ms.
  P* pidle GORT_GUARDED_BY(lock) = nullptr;
  std::atomic<std::int32_t> npidle{0};
  M* midle GORT_GUARDED_BY(lock) = nullptr;
  int nmidle GORT_GUARDED_BY(lock) = 0;
  int nmidlelocked GORT_GUARDED_BY(lock) = 0;
  int mcount GORT_GUARDED_BY(lock) = 0;
  std::vector<M*> allm GORT_GUARDED_BY(lock);
  std::atomic<std::int32_t> nmspinning{0};
  std::atomic<bool> exiting{false};
  std::atomic<std::uint64_t> thread_wakeups{0};
  std::atomic<std::uint32_t> live_threads{0};  // Ms other than M0 whose thread still runs

  // The M blocked in the netpoller until the earliest timer, if any, and that time: 0 when
  // there is no such M, INT64_MAX while it is still computing it or waits for I/O only
  // (sched.cpp, "Sleeping until the next timer"). Whoever arms an earlier timer wakes it
  // (netpoll_break).
  M* timer_sleeper GORT_GUARDED_BY(lock) = nullptr;
  std::atomic<std::int64_t> sleep_until{0};

  std::atomic<std::uint64_t> goid_gen{1};  // goroutine 1 is main

  // sysmon (sysmon.cpp): a plain thread, not an M. Sleeps on sysmon_note between ticks;
  // begin_exit and blocking() calls made while it sleeps long wake it.
  os::Note sysmon_note;
  std::atomic<bool> sysmon_sleeping_long{false};
  std::atomic<std::uint64_t> sysmon_retakes{0};  // Ps taken from Ms in blocking calls
  // Preemption (sysmon.cpp): on when Options::preempt asks for it and the kernel has the
  // process-wide barrier; sysmon turns it off if the barrier ever fails.
  std::atomic<bool> preempt_enabled{false};
  std::atomic<std::uint64_t> preemptions{0};  // Ps taken from goroutines that ran too long
  // Goroutines still running without a P after sysmon took it (each on its own thread):
  // incremented by sysmon, decremented at the goroutine's next switch (end_lost_p_run).
  // sysmon stops preempting at max_preempted_running, a bound on threads.
  std::atomic<std::int32_t> preempted_running{0};
  int max_preempted_running = 0;
  // Yields and parks of goroutines that had lost their P (no P to count them on).
  std::atomic<std::uint64_t> unowned_yields{0}, unowned_parks{0};

  Lock gfree_lock;
  // LIFO: the most recently freed G is the likeliest to still be in cache and TLB.
  std::vector<G*> gfree GORT_GUARDED_BY(gfree_lock);

  Lock allg_lock;
  std::vector<G*> allg GORT_GUARDED_BY(allg_lock);  // every G ever made (reused, not freed)

  StackArena stacks;
};

// ---- Current thread's state (tls.cpp). Out-of-line so the compiler cannot cache a
// thread-local address across a goroutine switch.
M* current_m() noexcept;
void set_current_m(M* m) noexcept;
// The variable behind current_m(), for current_m_in_leaf() only.
extern constinit thread_local M* t_current_m;
// current_m() without the call, for hot functions that are leaves with respect to
// goroutine switches: they never switch (nor call anything that may) and are never
// inlined into a caller that does (declare them noinline). Inside such a function the
// thread cannot change, so a thread-local address computed once stays right.
inline M* current_m_in_leaf() noexcept {
  return t_current_m;
}
Sched* current_sched() noexcept;  // the running runtime, or null
void set_current_sched(Sched* s) noexcept;
int* errno_slot() noexcept;  // &errno of the calling thread

inline G* current_g() noexcept {
  M* m = current_m();
  return m != nullptr ? m->curg : nullptr;
}

// ---- Runtime sections (the M side of sysmon's preemption handshake, sysmon.cpp).
//
// Code that touches the M's P (its run queue, free Gs, timers, counters) or switches
// goroutines runs inside a section: enter_runtime(m) ... exit_runtime(m), on the M's own
// thread. sysmon takes a P only from an M with no section open, and an M that enters its
// outermost section first checks whether sysmon claimed or took its P. Sections nest
// (ready() inside a park's commit step). A goroutine switch happens only at depth 1 and
// moves that level along: the switching side enters, the side that resumes closes it in
// finish_switch_in; g0 holds one level for as long as it runs.
//
// Ordering: the entry is a relaxed store of the depth and a compiler-only fence before the
// load of m->preempt, the light side of an asymmetric fence whose heavy side is sysmon's
// os::process_barrier(). Under TSan (which does not model membarrier) both are seq_cst,
// which is Dekker-correct on its own.
#if defined(__SANITIZE_THREAD__)
#define GORT_PREEMPT_ORDER std::memory_order_seq_cst
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORT_PREEMPT_ORDER std::memory_order_seq_cst
#endif
#endif
#ifndef GORT_PREEMPT_ORDER
#define GORT_PREEMPT_ORDER std::memory_order_relaxed
#endif

// Context: a section entry saw a claim. Cancels it, or, if sysmon took the P (possible
// only at the outermost entry), leaves the M without one (m->p = null): the caller carries
// on as a thread without a P would, and the goroutine gets a P back at its next switch.
void preempt_noticed(M* m) noexcept;

// The check is made at every depth, though only an outermost entry can find the P taken
// (inner ones may see a claim that sysmon is about to withdraw, and cancel it): a branch
// on the depth would cost more than the load it saves.
inline void check_preempt(M* m) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // pairs with sysmon's process_barrier
  if (m->preempt.load(GORT_PREEMPT_ORDER) != kPreemptNone) [[unlikely]]
    preempt_noticed(m);
}

inline void enter_runtime(M* m) noexcept {
  m->in_runtime.store(m->in_runtime.load(std::memory_order_relaxed) + 1, GORT_PREEMPT_ORDER);
  check_preempt(m);
}

inline void exit_runtime(M* m) noexcept {
  // Release: sysmon reads 0 with acquire before it takes the P, so every access the section
  // made to the P happens before the P's next owner touches it.
  m->in_runtime.store(m->in_runtime.load(std::memory_order_relaxed) - 1, std::memory_order_release);
}

// The same for the two ends of a goroutine switch, where the depth is known: a goroutine
// enters from user code (0 -> 1) to yield, park or exit, and the goroutine that resumes
// closes the level (1 -> 0).
inline void enter_runtime_to_switch(M* m) noexcept {
  GORT_DCHECK(m->in_runtime.load(std::memory_order_relaxed) == 0);
  m->in_runtime.store(1, GORT_PREEMPT_ORDER);
  check_preempt(m);
}

inline void exit_runtime_after_switch(M* m) noexcept {
  GORT_DCHECK(m->in_runtime.load(std::memory_order_relaxed) == 1);
  m->in_runtime.store(0, std::memory_order_release);  // as in exit_runtime
}

// A section that does not switch goroutines, for code that may run on a goroutine, on g0
// or on a plain thread (m null: no P, nothing to guard).
class RuntimeSection {
 public:
  explicit RuntimeSection(M* m) noexcept : m_(m) {
    if (m_ != nullptr) enter_runtime(m_);
  }
  ~RuntimeSection() {
    if (m_ != nullptr) exit_runtime(m_);
  }
  RuntimeSection(const RuntimeSection&) = delete;
  RuntimeSection& operator=(const RuntimeSection&) = delete;

 private:
  M* const m_;
};

// ---- Scheduler entry points (sched.cpp).
// Context: g0 of m. Runs goroutines until the runtime exits.
void schedule_loop(Sched& s, M* m);
// Context: goroutine, inside a runtime section at depth 1 (closed when it resumes).
// Switches to g0 to perform `a`; returns when resumed.
void mcall(Action a, ParkCommit commit = nullptr, void* arg = nullptr);
// Context: goroutine in a runtime section at depth 1 whose P was taken (m->p null), not
// inside a blocking() call. Gets a P: an idle one, or else queues the goroutine globally
// and waits until an M runs it. Returns the (possibly different) current M, inside a
// section again and holding a P.
M* reacquire_p(M* m);
// Context: goroutine. yield() without visiting g0 when another G is ready on this P;
// returns false (nothing done) when the slow path must be taken.
bool try_direct_yield(M* m, G* gp);
// Context: goroutine, right after it was switched to. Completes the switch.
void finish_switch_in(G* gp);
// Context: any thread. Makes a kWaiting goroutine runnable (Go's goready). next: run it
// next on the caller's P (runnext).
void ready(G* gp, bool next = true);
// Puts a runnable G on the caller's P (or the global queue) and wakes an M if needed.
void make_runnable(Sched& s, G* gp, bool next);
// Makes n goroutines parked in the netpoller runnable: on the caller's P if it holds one,
// else on the global queue, starting Ms for idle Ps (Go's injectglist).
void inject_list(Sched& s, G** gs, int n);
// Wakes an idle M to spin if there are idle Ps and no spinning Ms (Go's wakep).
void wakep(Sched& s);
// A timer due at `when` was armed (on the caller's own running P if on_own_p): wakes the
// M sleeping until a later time, or an M to look after a P nobody runs.
void timer_added(Sched& s, std::int64_t when, bool on_own_p);
// Stops all Ms: sets exiting and wakes everyone (called when main returns).
void begin_exit(Sched& s);
// Makes the calling thread M0 of s, holding allp[0]; the other Ps go idle.
void start_m0(Sched& s, M* m0);
// Context: an M holding p. Puts gp (kRunnable) in p's runnext.
void put_runnable_on(Sched& s, P* p, G* gp);

// Context: g0 without a P. Hands p to an M that runs it, or makes it idle (Go's handoffp).
void handoffp(Sched& s, P* p);
// Go's entersyscall/exitsyscall around a blocking foreign call. enter returns false (and
// does nothing) outside a goroutine or inside another blocking call; exit only follows a
// true enter, on the same goroutine. Context: goroutine.
bool enter_blocking();
void exit_blocking();
// sysmon's thread body (sysmon.cpp); returns when the runtime exits.
void sysmon_main(Sched& s);

// ---- Goroutine lifecycle (proc.cpp).
G* gfget(Sched& s, P* p);  // a free G with a stack (allocates one if none)
void gfput(Sched& s, P* p, G* gp);
void gdestroy(Sched& s, P* p, G* gp);  // on g0 after gp exited
std::uint64_t next_goid(Sched& s, P* p);

// Park the current goroutine (Go's gopark): it stops, then commit(arg, g) runs off its
// stack (on g0, or on the goroutine switched to directly); returning false there cancels
// the park. Context: goroutine; may switch threads.
void park(detail::WaitReason why, ParkCommit commit, void* arg);

}  // namespace gort::runtime

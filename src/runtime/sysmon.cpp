// sysmon: the runtime's monitor thread (Go's sysmon in proc.go).
//
// A plain thread, not an M: it never holds a P and never runs goroutines. Every tick it
// looks at the Ps and (1) retakes those whose M has been in a blocking() call for a whole
// tick (or more), handing them to another M, so a goroutine blocked in a foreign call
// holds up nobody else; (2) preempts goroutines that have run for 10 ms without a
// scheduling point (below). It sleeps 20 us between ticks while it has work, backing off
// to 10 ms after 1 ms of finding nothing (Go's pacing); a blocking() call made while it
// sleeps long wakes it, so a retake is never late by more than a tick.
//
// It also polls the network when nobody has for 10 ms (Go's sysmon does the same): with
// every P busy running goroutines, no M reaches find_runnable's poll, and goroutines
// whose sockets became ready would wait for a P to go idle.
//
// Preemption. Go interrupts a hog with a signal and switches goroutines from the handler;
// C++ code cannot be suspended at an arbitrary instruction (it may hold a lock of its
// own, or a half-updated object, that another goroutine on the thread would then see).
// Instead sysmon treats the hog like a goroutine in a blocking call: it takes the hog's P
// (run queue, timers, free Gs) and hands it to another M, while the hog keeps running on
// its own thread, without a P. At its next runtime call the hog notices, and at its next
// scheduling point it waits for a P like a goroutine returning from a blocking call
// (sched.cpp: preempt_noticed, reacquire_p, after_run without a P). So other goroutines
// run at once, and the hog runs again later, as in Go; the cost is one more thread while
// the hog runs on without a P.
//
// The danger is the hog's M touching its P while sysmon takes it: the run queue's owner
// side, runnext, the free-G cache and the timer heap choice are written without
// synchronisation by the holding M. So the M marks the code that touches its P (or
// switches goroutines) as a runtime section (sched.hpp: enter_runtime/exit_runtime, a
// per-M depth counter; g0 is always inside one), and sysmon takes the P only from an M
// outside every section, through a handshake on the M's word `preempt`:
//
//   sysmon                                   the M, entering its outermost section
//   1. CAS preempt None -> Claimed           a. in_runtime = 1            (relaxed)
//   2. process-wide barrier (membarrier)     b. compiler fence
//   3. in_runtime == 0 (seq_cst load), and   c. preempt != None?          (relaxed)
//      p->m == the M, p kRunning?               -> CAS Claimed -> None: keep the P, go on
//   4. yes: CAS Claimed -> Taken; then          -> else (Taken): m->p = null; carry on
//      p is sysmon's: handoffp(p)                  without it (as a thread with no P)
//      no: CAS Claimed -> None (withdraw)
//
// Why it is safe. (1)-(3) and (a)-(c) are Dekker's pattern: membarrier makes every thread
// of the process execute a full barrier somewhere between its call and return, which with
// the compiler fence on the M's side orders a before c as if both sides had a fence
// (Linux membarrier(2); folly's asymmetric barriers, liburcu). So either the M's store (a)
// is visible to sysmon at (3), or its load (c) sees the claim. Hence, if sysmon reads 0,
// any section the M opens from then on sees the claim and resolves it by CAS before it
// touches the P; the CAS Claimed -> None and sysmon's Claimed -> Taken are exclusive, so
// exactly one side owns the P afterwards. The section the M last closed ended with a
// release store that sysmon's load reads, so its writes to the P happen before the P's
// next owner runs. While a section is open sysmon cannot take the P, so an inner entry
// can only find a claim about to be withdrawn (it cancels it; checking at every depth is
// cheaper than a branch on the depth). The binding check in (3) sees the M's binding as
// of its last section (the only place it changes), so sysmon takes exactly the P the M
// holds. Go's m.locks has no
// counterpart: runtime locks need not block preemption, because an M that loses its P
// inside a locked region never waits for one there. Non-switching sections carry on
// without a P (ready() then uses the global queue, as a plain thread does), and a park
// whose caller holds a channel lock switches to g0, which runs the commit step (releasing
// the lock) before it looks for a P.
//
// Threads. Each preempted goroutine occupies a thread of its own until its next
// scheduling point, so goroutines that compute for long without one would otherwise get a
// thread each (a thousand of them, a thousand threads, against GOMAXPROCS). sysmon stops
// preempting while 4 x GOMAXPROCS goroutines run without a P: beyond that, hogs wait for
// one another as without preemption, and at most 5 x GOMAXPROCS threads run goroutine code.
//
// Rejected designs. A new P status kPreempted, checked by the M: once the taken P runs
// again under another M its status reads kRunning, and a hog that has not yet noticed
// would take it for its own (ABA); the claim therefore lives on the M. A full fence on the
// M's side instead of membarrier: ~20 cycles per section on x86 (an xchg). A signal whose
// handler, on the hog's own thread, gives the P away (same-thread, so no fence at all):
// user system calls that SA_RESTART does not restart (sleeps, polls) would then fail
// with EINTR.
//
// The price on the hot paths is a store and a load on entry and a store on exit, on the
// M's own cache line, with no fence instruction; the heavy barrier is paid by sysmon, at
// most once per 10 ms per hog (retried 1 ms later if the M was inside a section). Without
// membarrier (old kernels, qemu-user, seccomp) preemption is off
// (SchedStats::preemption_enabled).
// Under TSan, which does not model membarrier, both sides use seq_cst instead.
//
// SIGQUIT: as in Go, the goroutine dump (debug=2's text) on stderr, then exit status 2.
// The handler only sets a flag and wakes sysmon (both async-signal-safe); sysmon, a plain
// thread that may lock and allocate, writes the dump. The text comes from the goroutine
// profile (pprof/goroutine_profile.cpp: write_goroutine_dump), the one call from the
// runtime up into pprof, so that the dump and the profile cannot drift apart.
//
// GODEBUG=schedtrace=N: every N ms sysmon prints Go's scheduler summary line to stderr
// (schedtrace() below); its sleeps are then capped so the lines come on time.
//
// Invariant: sysmon touches a P only through atomics (status, m, schedtick, syscalltick,
// the run queue size) and takes ownership of it only by winning the kSyscall -> kIdle CAS
// (the P is then exactly as its M left it in enter_blocking()) or the handshake above
// (the P is as its M left it at the end of its last runtime section).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/fatal.hpp"

#include "runtime/netpoll.hpp"
#include "runtime/sched.hpp"
#include "trace/hooks.hpp"

namespace gort::runtime {

// Appends every goroutine's stack in debug=2's text (pprof/goroutine_profile.cpp).
// Context: any thread but a signal handler; allocates.
void write_goroutine_dump(std::string& out);

namespace {

constexpr std::int64_t kMinDelayNs = 20'000;      // Go: usleep(20)
constexpr std::int64_t kMaxDelayNs = 10'000'000;  // Go: 10 ms
constexpr int kIdleTicksBeforeBackoff = 50;       // ~1 ms of 20 us ticks
// A P in a blocking call with nothing else to run is left alone this long (Go's 10 ms):
// taking it would only cost its M a slower return.
constexpr std::int64_t kIdleSyscallGraceNs = 10'000'000;
constexpr std::int64_t kNetpollStaleNs = 10'000'000;  // Go: 10 ms
// A goroutine may run this long without a scheduling point (Go's forcePreemptNS).
constexpr std::int64_t kForcePreemptNs = 10'000'000;
// After finding the M inside a runtime section, try again this much later (each try costs
// every running thread of the process a barrier).
constexpr std::int64_t kPreemptRetryNs = 1'000'000;

// What sysmon remembers of a P between ticks (Go's sysmontick).
struct PObservation {
  std::uint32_t syscalltick = 0;
  std::int64_t syscallwhen = 0;  // when that syscalltick was first seen
  std::uint32_t schedtick = 0;
  std::int64_t schedwhen = 0;  // when that schedtick was first seen
};

// Work that another M could do with p: its queues, due timers, or the global queue.
bool has_work(const Sched& s, P* p, std::int64_t now) {
  const std::int64_t timer = p->timers.next_when();
  return !p->runq.empty() || p->runnext.load(std::memory_order_relaxed) != nullptr ||
         (timer != 0 && timer <= now) || s.runq_size.load(std::memory_order_relaxed) > 0;
}

// Retakes p if its M has been in one blocking call since the last tick. Go's retake.
bool retake_syscall(Sched& s, P* p, PObservation& o, std::int64_t now) {
  const std::uint32_t tick = p->syscalltick.load(std::memory_order_relaxed);
  if (o.syscalltick != tick) {  // a call we have not seen before: give it one tick
    o.syscalltick = tick;
    o.syscallwhen = now;
    return false;
  }
  const bool queued = !p->runq.empty() || p->runnext.load(std::memory_order_relaxed) != nullptr ||
                      p->timers.next_when() != 0;
  const bool others_free =
      s.nmspinning.load(std::memory_order_relaxed) + s.npidle.load(std::memory_order_relaxed) > 0;
  if (!queued && others_free && now - o.syscallwhen < kIdleSyscallGraceNs) return false;
  PStatus expect = PStatus::kSyscall;
  if (!p->status.compare_exchange_strong(expect, PStatus::kIdle, std::memory_order_acq_rel))
    return false;  // its M came back first
  s.sysmon_retakes.fetch_add(1, std::memory_order_relaxed);
  trace::detail::proc_steal(p->id, -1);
  handoffp(s, p);
  return true;
}

// The handshake of "Preemption" above: takes p from its M if the M is outside every
// runtime section. Returns false if it did not (the M is in the runtime, or moved on).
bool take_from_running(Sched& s, P* p) {
  // Acquire: pairs with the release in acquirep, so that mp is fully constructed for us.
  M* mp = p->m.load(std::memory_order_acquire);
  if (mp == nullptr) return false;
  std::uint32_t state = kPreemptNone;
  if (!mp->preempt.compare_exchange_strong(state, kPreemptClaimed, std::memory_order_seq_cst))
    return false;
  if (!os::process_barrier()) {  // the kernel refused after all: stop preempting
    s.preempt_enabled.store(false, std::memory_order_relaxed);
    state = kPreemptClaimed;
    mp->preempt.compare_exchange_strong(state, kPreemptNone, std::memory_order_relaxed);
    return false;
  }
  // seq_cst: acquire for the M's last section (see above), and Dekker's order under TSan.
  const bool outside = mp->in_runtime.load(std::memory_order_seq_cst) == 0;
  const bool holds = p->m.load(std::memory_order_relaxed) == mp &&
                     p->status.load(std::memory_order_relaxed) == PStatus::kRunning;
  state = kPreemptClaimed;
  if (!outside || !holds) {  // withdraw (the M may have cancelled the claim already)
    mp->preempt.compare_exchange_strong(state, kPreemptNone, std::memory_order_relaxed);
    return false;
  }
  // Counted before the take, so that the M's decrement at its next switch never comes first.
  s.preempted_running.fetch_add(1, std::memory_order_relaxed);
  if (!mp->preempt.compare_exchange_strong(state, kPreemptTaken, std::memory_order_acq_rel)) {
    s.preempted_running.fetch_sub(1, std::memory_order_relaxed);
    return false;  // the M entered the runtime and kept its P
  }
  // p is ours: the M will not touch it again. Go's handoffp, as for a retaken syscall.
  trace::detail::proc_steal(p->id, mp->id);
  p->m.store(nullptr, std::memory_order_relaxed);
  p->status.store(PStatus::kIdle, std::memory_order_relaxed);
  s.preemptions.fetch_add(1, std::memory_order_relaxed);
  handoffp(s, p);
  return true;
}

// Preempts the goroutine running on p if it has run for kForcePreemptNs without a
// scheduling point while others wait. Go's retake for _Prunning (preemptone).
bool preempt_if_hogging(Sched& s, P* p, PObservation& o, std::int64_t now) {
  const std::uint32_t tick = p->schedtick.load(std::memory_order_relaxed);
  if (o.schedtick != tick) {
    o.schedtick = tick;
    o.schedwhen = now;
    return false;
  }
  if (now - o.schedwhen < kForcePreemptNs || !has_work(s, p, now)) return false;
  if (!s.preempt_enabled.load(std::memory_order_relaxed)) return false;
  if (s.preempted_running.load(std::memory_order_relaxed) >= s.max_preempted_running)
    return false;  // enough threads run goroutines without a P: let this one be
  if (take_from_running(s, p)) return true;
  o.schedwhen = now - kForcePreemptNs + kPreemptRetryNs;
  return false;
}

// Retakes Ps stuck in blocking calls and preempts hogs. Returns how many Ps it handed off.
int retake(Sched& s, std::vector<PObservation>& seen, std::int64_t now) {
  int n = 0;
  for (P* p : s.allp) {
    PObservation& o = seen[static_cast<std::size_t>(p->id)];
    switch (p->status.load(std::memory_order_acquire)) {
      case PStatus::kRunning:
        n += preempt_if_hogging(s, p, o, now) ? 1 : 0;
        break;
      case PStatus::kSyscall:
        n += retake_syscall(s, p, o, now) ? 1 : 0;
        break;
      case PStatus::kIdle:
        // The clock of a P starts when it is first seen running, not when it went idle.
        o.schedtick = p->schedtick.load(std::memory_order_relaxed);
        o.schedwhen = now;
        break;
    }
  }
  return n;
}

// Polls the network if goroutines wait on it and nobody looked for kNetpollStaleNs.
// Returns how many goroutines it readied.
int poll_if_stale(Sched& s, std::int64_t now) {
  if (!netpoll_has_waiters(s)) return 0;
  const std::int64_t last = netpoll_last_poll(s);
  if (last == 0 || now - last < kNetpollStaleNs) return 0;  // blocked in it, or recent
  G* gs[64];
  const int n = netpoll(s, 0, gs, 64);
  inject_list(s, gs, n);
  return n;
}

std::atomic<bool> g_quit_requested{false};

// Context: signal handler (SIGQUIT).
void on_sigquit() noexcept {
  g_quit_requested.store(true, std::memory_order_relaxed);  // sysmon reads it after waking
  if (Sched* s = current_sched()) s->sysmon_note.wakeup();
}

// Context: sysmon, after a SIGQUIT. Never returns.
[[noreturn]] void quit_with_dump() {
  std::string out = "SIGQUIT: quit\n\n";
  write_goroutine_dump(out);
  base::raw_write(out);
  base::die();
}

// The schedtrace period from $GODEBUG (a comma-separated list of name=value, as in Go),
// in nanoseconds; 0 if not asked for.
std::int64_t schedtrace_period() {
  const char* env = std::getenv("GODEBUG");
  if (env == nullptr) return 0;
  constexpr std::string_view kKey = "schedtrace=";
  for (std::string_view rest = env; !rest.empty();) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.substr(0, kKey.size()) != kKey) continue;
    const long ms = std::strtol(std::string(item.substr(kKey.size())).c_str(), nullptr, 10);
    return ms > 0 ? ms * 1'000'000 : 0;
  }
  return 0;
}

// Prints Go's schedtrace line (proc.go's schedtrace, detailed=false). threads counts the
// Ms and sysmon, as Go's mcount() does; needspinning is always 0 (gort has no such flag).
// Context: sysmon.
void schedtrace(Sched& s, std::int64_t since_start_ns) {
  int threads = 0, idle_threads = 0;
  {
    LockGuard l(s.lock);
    threads = s.mcount + 1;
    idle_threads = s.nmidle;
  }
  std::string line(160, '\0');
  const int n =
      std::snprintf(line.data(), line.size(),
                    "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
                    "needspinning=0 idlethreads=%d runqueue=%d [",
                    static_cast<long long>(since_start_ns / 1'000'000), s.gomaxprocs,
                    s.npidle.load(std::memory_order_relaxed), threads,
                    s.nmspinning.load(std::memory_order_relaxed), idle_threads,
                    s.runq_size.load(std::memory_order_relaxed));
  line.resize(static_cast<std::size_t>(std::max(n, 0)));
  for (P* p : s.allp) {
    if (p != s.allp.front()) line += ' ';
    line += std::to_string(p->runq.size());
  }
  line += "]\n";
  base::raw_write(line);
}

}  // namespace

void sysmon_main(Sched& s) {
  std::vector<PObservation> seen(s.allp.size());
  int idle_ticks = 0;
  std::int64_t delay = kMinDelayNs;
  const std::int64_t start = os::nanotime();
  const std::int64_t trace_period = schedtrace_period();
  std::int64_t next_trace = start + trace_period;
  while (!s.exiting.load(std::memory_order_acquire)) {
    std::int64_t sleep = delay;
    if (trace_period > 0) sleep = std::clamp<std::int64_t>(next_trace - os::nanotime(), 0, delay);
    s.sysmon_sleeping_long.store(sleep > kMinDelayNs, std::memory_order_relaxed);
    const bool woken = s.sysmon_note.sleep_for(sleep);
    s.sysmon_note.clear();
    s.sysmon_sleeping_long.store(false, std::memory_order_relaxed);
    if (s.exiting.load(std::memory_order_acquire)) break;
    if (g_quit_requested.load(std::memory_order_relaxed)) quit_with_dump();
    const std::int64_t now = os::nanotime();
    if (trace_period > 0 && now >= next_trace) {
      schedtrace(s, now - start);
      next_trace += trace_period * ((now - next_trace) / trace_period + 1);
    }
    const int polled = poll_if_stale(s, now);
    if (retake(s, seen, now) > 0 || polled > 0 || woken) {
      idle_ticks = 0;  // busy: keep ticking fast
    } else {
      ++idle_ticks;
    }
    delay = idle_ticks <= kIdleTicksBeforeBackoff ? kMinDelayNs : std::min(delay * 2, kMaxDelayNs);
  }
}

void install_sigquit_dump() noexcept {
  g_quit_requested.store(false, std::memory_order_relaxed);
  os::install_quit_handler(on_sigquit);
}

void restore_sigquit_dump() noexcept {
  os::restore_quit_handler();
}

}  // namespace gort::runtime

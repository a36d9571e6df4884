// sysmon: the runtime's monitor thread (Go's sysmon in proc.go).
//
// A plain thread, not an M: it never holds a P and never runs goroutines. Every tick it
// looks at the Ps and retakes those whose M has been in a blocking() call for a whole tick
// (or more), handing them to another M, so a goroutine blocked in a foreign call holds up
// nobody else. It sleeps 20 us between ticks while it has work, backing off to 10 ms after
// 1 ms of finding nothing (Go's pacing); a blocking() call made while it sleeps long wakes
// it, so a retake is never late by more than a tick.
//
// It also polls the network when nobody has for 10 ms (Go's sysmon does the same): with
// every P busy running goroutines, no M reaches find_runnable's poll, and goroutines
// whose sockets became ready would wait for a P to go idle.
//
// What it does not do yet: preempt goroutines that run for long without a scheduling
// point.
//
// Invariant: sysmon touches a P only through atomics (status, syscalltick, the run queue
// size) and takes ownership of it only by winning the kSyscall -> kIdle CAS, after which
// the P is exactly as its M left it in enter_blocking().
#include <algorithm>
#include <vector>

#include "runtime/netpoll.hpp"
#include "runtime/sched.hpp"

namespace gort::runtime {

namespace {

constexpr std::int64_t kMinDelayNs = 20'000;      // Go: usleep(20)
constexpr std::int64_t kMaxDelayNs = 10'000'000;  // Go: 10 ms
constexpr int kIdleTicksBeforeBackoff = 50;       // ~1 ms of 20 us ticks
// A P in a blocking call with nothing else to run is left alone this long (Go's 10 ms):
// taking it would only cost its M a slower return.
constexpr std::int64_t kIdleSyscallGraceNs = 10'000'000;
constexpr std::int64_t kNetpollStaleNs = 10'000'000;  // Go: 10 ms

// What sysmon remembers of a P between ticks (Go's sysmontick).
struct PObservation {
  std::uint32_t syscalltick = 0;
  std::int64_t since = 0;  // when that syscalltick was first seen
};

// Retakes Ps stuck in blocking calls. Returns how many it handed off.
int retake(Sched& s, std::vector<PObservation>& seen, std::int64_t now) {
  int n = 0;
  for (P* p : s.allp) {
    if (p->status.load(std::memory_order_acquire) != PStatus::kSyscall) continue;
    PObservation& o = seen[static_cast<std::size_t>(p->id)];
    const std::uint32_t tick = p->syscalltick.load(std::memory_order_relaxed);
    if (o.syscalltick != tick) {  // a call we have not seen before: give it one tick
      o.syscalltick = tick;
      o.since = now;
      continue;
    }
    const bool has_work = !p->runq.empty() ||
                          p->runnext.load(std::memory_order_relaxed) != nullptr ||
                          p->timers.next_when() != 0;
    const bool others_free =
        s.nmspinning.load(std::memory_order_relaxed) + s.npidle.load(std::memory_order_relaxed) > 0;
    if (!has_work && others_free && now - o.since < kIdleSyscallGraceNs) continue;
    PStatus expect = PStatus::kSyscall;
    if (!p->status.compare_exchange_strong(expect, PStatus::kIdle, std::memory_order_acq_rel))
      continue;  // its M came back first
    ++n;
    s.sysmon_retakes.fetch_add(1, std::memory_order_relaxed);
    handoffp(s, p);
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

}  // namespace

void sysmon_main(Sched& s) {
  std::vector<PObservation> seen(s.allp.size());
  int idle_ticks = 0;
  std::int64_t delay = kMinDelayNs;
  while (!s.exiting.load(std::memory_order_acquire)) {
    s.sysmon_sleeping_long.store(delay > kMinDelayNs, std::memory_order_relaxed);
    const bool woken = s.sysmon_note.sleep_for(delay);
    s.sysmon_note.clear();
    s.sysmon_sleeping_long.store(false, std::memory_order_relaxed);
    if (s.exiting.load(std::memory_order_acquire)) break;
    const std::int64_t now = os::nanotime();
    const int polled = poll_if_stale(s, now);
    if (retake(s, seen, now) > 0 || polled > 0 || woken) {
      idle_ticks = 0;  // busy: keep ticking fast
    } else {
      ++idle_ticks;
    }
    delay = idle_ticks <= kIdleTicksBeforeBackoff ? kMinDelayNs : std::min(delay * 2, kMaxDelayNs);
  }
}

}  // namespace gort::runtime

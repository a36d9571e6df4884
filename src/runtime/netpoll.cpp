// The netpoller (Go's runtime/netpoll.go and netpoll_epoll.go, for C++).
//
// Why. A goroutine reading a socket must park, not block its thread: thousands of
// connections are served by gomaxprocs threads. Every socket is non-blocking and
// registered once, edge-triggered, with one process-wide epoll instance (os::Poller). A
// read that gets EAGAIN parks the goroutine in poll_wait(); when epoll reports the socket
// ready, the scheduler makes it runnable and the read is retried.
//
// Meeting the scheduler (sched.cpp). Nobody polls on a timer: find_runnable polls without
// blocking before it steals (readied goroutines go on its own P), and the M that would
// otherwise sleep until the next timer blocks in epoll instead, with the timer's deadline
// as timeout, so one M waits for timers and I/O at once (Go's findrunnable and
// netpoll(delay)). Arming an earlier timer, exiting, or any other reason to wake that M
// writes to an eventfd registered with the same epoll (netpoll_break). sysmon polls when
// nobody has polled for 10 ms, so readiness is noticed even while every P is busy.
//
// The wait protocol. Each PollDesc has one slot per mode (rg, wg) holding 0, kPdReady,
// kPdWait or the waiting G (Go's pdReady/pdWait). A waiter CASes 0 -> kPdWait, re-checks
// closing and its deadline, and parks; its commit step (off its stack) CASes kPdWait -> G.
// A notifier (epoll event, deadline, close) swaps the slot to kPdReady (I/O) or 0 (error)
// and readies the G it found. Races resolve by the CASes: a notification between the
// waiter's two CASes leaves kPdReady (or 0), the commit CAS fails and the park is
// cancelled. Readiness is only a hint: the caller always retries its system call.
//
// Deadlines are stored per mode as 0 (none), -1 (passed) or the absolute time, and set
// under the PollDesc's lock with a timer armed for that time. The timer's callback (on
// g0, Go's netpolldeadlineimpl) takes the lock and expires the deadline only if it still
// holds a due time, so a callback racing with a new deadline is harmless.
//
// Lifetime. epoll may report an event for a descriptor just unregistered on another
// thread, so PollDescs are never freed: closed ones go back to a free list and are reused
// (Go's pollCache). A stale event on a reused PollDesc is one spurious wakeup.
//
// Invariants.
//   * At most one goroutine waits per mode (the net layer serialises readers and writers).
//   * g_waiters counts goroutines between their commit and their resumption; while it is
//     nonzero some M polls, blocked or not (deadlock detection relies on it).
#include "runtime/netpoll.hpp"

#include <mutex>

#include "base/fatal.hpp"
#include "os/os.hpp"
#include "runtime/fiber_sanitizer.hpp"
#include "runtime/sched.hpp"
#include "trace/hooks.hpp"

namespace gort::runtime {

namespace {

constexpr std::uintptr_t kPdReady = 1;
constexpr std::uintptr_t kPdWait = 2;

void deadline_fired(PollDesc* pd, PollMode mode, std::int64_t now);

class DeadlineTimer final : public TimerCore {
 public:
  DeadlineTimer(PollDesc* pd, PollMode mode) noexcept : TimerCore(false), pd_(pd), mode_(mode) {}
  ~DeadlineTimer() override = default;
  void fire(std::int64_t now) override { deadline_fired(pd_, mode_, now); }

 private:
  PollDesc* pd_;
  PollMode mode_;
};

os::Poller g_poller;
std::once_flag g_poller_once;
std::atomic<std::int32_t> g_waiters{0};
// When the poller was last looked at; 0 while an M blocks in it (Go's sched.lastpoll).
std::atomic<std::int64_t> g_last_poll{1};
// Bumped when a runtime exits. Goroutines abandoned then may still be recorded in
// PollDescs of sockets nobody closed: such a PollDesc never hands them out again.
std::atomic<std::uint32_t> g_generation{1};

}  // namespace

struct PollDesc {
  PollDesc() : rt(this, PollMode::kRead), wt(this, PollMode::kWrite) {}

  int fd = -1;
  // The runtime that registered fd (see g_generation). Atomic: a stale event may read it
  // while the PollDesc is being recycled.
  std::atomic<std::uint32_t> generation{0};
  Lock lock;  // serialises deadline changes, deadline expiry and closing
  std::atomic<std::uintptr_t> rg{0}, wg{0};
  std::atomic<bool> closing{false};
  std::atomic<std::int64_t> rd{0}, wd{0};  // 0 none, -1 passed, else when
  DeadlineTimer rt, wt;
  PollDesc* next_free = nullptr;  // guarded by g_cache_lock
};

namespace {

Lock g_cache_lock;
PollDesc* g_cache GORT_GUARDED_BY(g_cache_lock) = nullptr;

PollDesc* pd_alloc() {
  {
    LockGuard l(g_cache_lock);
    if (PollDesc* pd = g_cache) {
      g_cache = pd->next_free;
      return pd;
    }
  }
  return new PollDesc();  // never freed: see "Lifetime"
}

void pd_recycle(PollDesc* pd) {
  LockGuard l(g_cache_lock);
  pd->next_free = g_cache;
  g_cache = pd;
}

std::atomic<std::uintptr_t>& slot(PollDesc* pd, PollMode mode) {
  return mode == PollMode::kRead ? pd->rg : pd->wg;
}
std::atomic<std::int64_t>& deadline(PollDesc* pd, PollMode mode) {
  return mode == PollMode::kRead ? pd->rd : pd->wd;
}
const std::atomic<std::int64_t>& deadline(const PollDesc* pd, PollMode mode) {
  return mode == PollMode::kRead ? pd->rd : pd->wd;
}

// Go's netpollcheckerr.
PollResult check_error(const PollDesc* pd, PollMode mode) {
  if (pd->closing.load(std::memory_order_seq_cst)) return PollResult::kClosing;
  if (deadline(pd, mode).load(std::memory_order_seq_cst) < 0) return PollResult::kTimeout;
  return PollResult::kReady;
}

// Go's netpollunblock: marks the slot ready (ioready) or empty, returning the G that
// waited there, if any (never one of an exited runtime).
G* unblock(const PollDesc* pd, std::atomic<std::uintptr_t>& gpp, bool ioready) {
  if (pd->generation.load(std::memory_order_relaxed) !=
      g_generation.load(std::memory_order_relaxed))
    return nullptr;
  std::uintptr_t old = gpp.load(std::memory_order_acquire);
  for (;;) {
    if (old == kPdReady) return nullptr;
    if (old == 0 && !ioready) return nullptr;  // nobody waits; nothing to record
    const std::uintptr_t next = ioready ? kPdReady : 0;
    if (gpp.compare_exchange_weak(old, next, std::memory_order_acq_rel)) {
      if (old == kPdWait || old == 0) return nullptr;  // the waiter's commit will fail
      return reinterpret_cast<G*>(old);
    }
  }
}

struct WaitArg {
  std::atomic<std::uintptr_t>* gpp;
  bool parked;
};

// The park's commit step: publish the G unless a notification came first.
bool commit_wait(void* arg, G* g) {
  auto* w = static_cast<WaitArg*>(arg);
  // Count and mark before publishing: once the CAS succeeds the G may run elsewhere.
  w->parked = true;
  g_waiters.fetch_add(1, std::memory_order_seq_cst);
  std::uintptr_t expect = kPdWait;
  if (w->gpp->compare_exchange_strong(expect, reinterpret_cast<std::uintptr_t>(g),
                                      std::memory_order_acq_rel))
    return true;
  g_waiters.fetch_sub(1, std::memory_order_relaxed);
  w->parked = false;
  return false;
}

// Go's netpollblock: true if the fd became ready, false if woken by an error.
bool block(PollDesc* pd, PollMode mode) {
  std::atomic<std::uintptr_t>& gpp = slot(pd, mode);
  std::uintptr_t old = gpp.load(std::memory_order_acquire);
  for (;;) {
    if (old == kPdReady) {
      if (gpp.compare_exchange_weak(old, 0, std::memory_order_acq_rel)) return true;
      continue;
    }
    if (old != 0) base::fatal("runtime: double wait on a network descriptor");
    if (gpp.compare_exchange_weak(old, kPdWait, std::memory_order_seq_cst)) break;
  }
  // Re-check after publishing kPdWait: close and deadlines store first, then unblock.
  WaitArg arg{&gpp, false};
  if (check_error(pd, mode) == PollResult::kReady)
    park(detail::WaitReason::kIOWait, commit_wait, &arg);
  if (arg.parked) g_waiters.fetch_sub(1, std::memory_order_relaxed);
  old = gpp.exchange(0, std::memory_order_acq_rel);
  if (old > kPdWait) base::fatal("runtime: corrupted network poll descriptor");
  return old == kPdReady;
}

void deadline_fired(PollDesc* pd, PollMode mode, std::int64_t now) {
  G* g = nullptr;
  {
    LockGuard l(pd->lock);
    std::atomic<std::int64_t>& d = deadline(pd, mode);
    const std::int64_t when = d.load(std::memory_order_relaxed);
    if (when <= 0 || when > now) return;  // cleared or moved since this timer was armed
    d.store(-1, std::memory_order_seq_cst);
    g = unblock(pd, slot(pd, mode), false);
  }
  if (g != nullptr) ready(g, false);
}

void open_poller() {
  std::call_once(g_poller_once, [] {
    if (!g_poller.open()) base::fatal("runtime: netpoll: cannot create epoll instance");
  });
}

}  // namespace

PollDesc* poll_open(int fd, int* err) {
  if (current_sched() == nullptr) {
    *err = 0;
    return nullptr;
  }
  open_poller();
  PollDesc* pd = pd_alloc();
  pd->fd = fd;
  pd->generation.store(g_generation.load(std::memory_order_relaxed), std::memory_order_relaxed);
  pd->closing.store(false, std::memory_order_relaxed);
  pd->rd.store(0, std::memory_order_relaxed);
  pd->wd.store(0, std::memory_order_relaxed);
  pd->rg.store(0, std::memory_order_relaxed);
  pd->wg.store(0, std::memory_order_relaxed);
  san::tsan_release(pd);  // epoll_ctl publishes pd to the thread that gets its events
  *err = g_poller.add(fd, pd);
  if (*err != 0) {
    pd_recycle(pd);
    return nullptr;
  }
  return pd;
}

void poll_unblock(PollDesc* pd) {
  G* r = nullptr;
  G* w = nullptr;
  {
    LockGuard l(pd->lock);
    if (pd->closing.load(std::memory_order_relaxed)) return;
    pd->closing.store(true, std::memory_order_seq_cst);
    r = unblock(pd, pd->rg, false);
    w = unblock(pd, pd->wg, false);
    timer_disarm(&pd->rt);
    timer_disarm(&pd->wt);
  }
  if (r != nullptr) ready(r, false);
  if (w != nullptr) ready(w, false);
}

void poll_close(PollDesc* pd) {
  if (!pd->closing.load(std::memory_order_acquire))
    base::fatal("runtime: poll_close without poll_unblock");
  const std::uintptr_t r = pd->rg.load(std::memory_order_acquire);
  const std::uintptr_t w = pd->wg.load(std::memory_order_acquire);
  if (r > kPdWait || w > kPdWait) base::fatal("runtime: poll_close with a blocked goroutine");
  g_poller.remove(pd->fd);
  pd->fd = -1;
  pd_recycle(pd);
}

PollResult poll_wait(PollDesc* pd, PollMode mode) {
  for (;;) {
    const PollResult e = check_error(pd, mode);
    if (e != PollResult::kReady) return e;
    if (block(pd, mode)) return PollResult::kReady;
  }
}

void poll_set_deadline(PollDesc* pd, std::int64_t when, PollMode mode) {
  std::int64_t value = when;
  if (when != 0 && when <= os::nanotime()) value = -1;
  G* g = nullptr;
  {
    LockGuard l(pd->lock);
    if (pd->closing.load(std::memory_order_relaxed)) return;
    deadline(pd, mode).store(value, std::memory_order_seq_cst);
    TimerCore* t = mode == PollMode::kRead ? static_cast<TimerCore*>(&pd->rt) : &pd->wt;
    if (value > 0) {
      timer_arm(t, value, 0);
    } else {
      timer_disarm(t);
    }
    if (value < 0) g = unblock(pd, slot(pd, mode), false);
  }
  if (g != nullptr) ready(g, false);
}

bool poll_expired(const PollDesc* pd, PollMode mode) {
  return deadline(pd, mode).load(std::memory_order_acquire) < 0;
}

void netpoll_init(Sched& /*s*/) {
  open_poller();
}

void netpoll_shutdown(Sched& /*s*/) {
  g_generation.fetch_add(1, std::memory_order_relaxed);
  g_waiters.store(0, std::memory_order_relaxed);
  g_last_poll.store(1, std::memory_order_relaxed);
}

int netpoll(Sched& /*s*/, std::int64_t delay_ns, G** out, int max) {
  constexpr int kBatch = 128;
  os::PollEvent evs[kBatch];
  if (delay_ns != 0) g_last_poll.store(0, std::memory_order_seq_cst);
  const int n = g_poller.wait(delay_ns, evs, std::min(max / 2, kBatch));
  g_last_poll.store(os::nanotime(), std::memory_order_seq_cst);
  int k = 0;
  for (int i = 0; i < n; ++i) {
    auto* pd = static_cast<PollDesc*>(evs[i].tag);
    san::tsan_acquire(pd);
    if (evs[i].readable)
      if (G* g = unblock(pd, pd->rg, true)) out[k++] = g;
    if (evs[i].writable)
      if (G* g = unblock(pd, pd->wg, true)) out[k++] = g;
  }
  for (int i = 0; i < k; ++i) trace::detail::netpoll_unblock(out[i]->id);
  return k;
}

void netpoll_break(Sched& /*s*/) {
  open_poller();
  g_poller.wake();
}

bool netpoll_has_waiters(const Sched& /*s*/) {
  return g_waiters.load(std::memory_order_seq_cst) > 0;
}

std::int64_t netpoll_last_poll(const Sched& /*s*/) {
  return g_last_poll.load(std::memory_order_relaxed);
}

}  // namespace gort::runtime

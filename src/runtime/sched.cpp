// The scheduler: Go's schedule/findRunnable loop (runtime/proc.go), for C++.
//
// Design. Goroutines (G) run on OS threads (M); an M needs a P to run goroutines, and
// there are exactly gomaxprocs Ps. Each P owns a bounded local run queue (256 Gs, lock-free,
// others may steal half of it) and a `runnext` slot. A global run queue under Sched::lock
// takes overflow and Gs readied from threads without a P. Every M runs schedule_loop() on
// its own thread stack (g0): pick a G, switch to it, and when the G switches back, perform
// what it asked for (yield, park, exit) on g0, off the G's stack. Doing the commit step on
// g0 is what makes park race-free: the G is fully stopped before anyone can see it.
//
// Picking a G (find_runnable), in order: every 61st tick one G from the global queue (so
// a busy P cannot starve it; 61 is Go's prime), runnext, the local queue, the global
// queue, then stealing from other Ps. Stealing is done by at most as many spinning Ms as
// half the busy Ps (Go's bound): spinning burns CPU, so it is rationed, but one spinning
// M is always allowed so new work is picked up promptly. While the collector marks, a P
// also marks (gc/worker.cpp): first in each round while the Ps' share is under its budget
// (fractional mode), and before going idle while grey work is queued (idle mode).
//
// runnext fairness. A G readied by the running G goes to runnext and runs next, inheriting
// the slice: this keeps producer/consumer pairs on one cache. Two goroutines readying each
// other would then monopolise the P, so after kRunnextStreakMax consecutive runnext picks
// with a non-empty local queue, the queue's head runs first (Go bounds the same with the
// 10 ms time slice that sysmon enforces).
//
// Parking Ms (Go's "Worker thread parking/unparking" comment). An M with nothing to do
// releases its P to the idle list and sleeps on its Note: an idle runtime burns no CPU.
// When work is submitted, wakep() starts one spinning M if there is an idle P and no
// spinning M. The hazard is a lost wakeup: a submitter sees nmspinning > 0 and wakes no
// one, while the spinning M, about to stop, misses the new G. The spinner therefore
// decrements nmspinning (seq_cst RMW) and then re-checks every run queue, taking an idle P
// and spinning again if it finds work. The submitter does not fence: a G it publishes is
// on its own running P (or the global queue, under the lock the stopping M also takes), so
// a missed wakeup delays parallelism, never progress.
//
// Sleeping until the next timer or I/O (Go's findrunnable blocking in netpoll(delay)).
// Timers live in per-P heaps (timer.cpp); each M runs its own P's due timers whenever it
// looks for work, and all Ps' before it goes idle. An M going idle while timers are
// pending or goroutines wait for I/O becomes *the* sleeper (at most one) and blocks in the
// netpoller (netpoll.cpp) until the earliest timer of any P or an I/O event; other idle Ms
// stop as usual. Before stealing, find_runnable polls the network without blocking when
// nobody blocks in it. The hazard is oversleeping: a timer armed earlier than the
// sleeper's deadline. The sleeper publishes sleep_until = INT64_MAX before scanning the
// heaps and the deadline after, and an arm compares its time with sleep_until after
// pushing (both seq_cst): either the scan sees the new timer, or the arm sees a later
// deadline and breaks the poll (netpoll_break's eventfd write is sticky, so a break before
// the wait still counts). The sleeper is not an idle M, so checkdead never calls a program
// with pending timers or I/O waiters deadlocked.
//
// Direct switches. yield() with another G ready on the same P switches straight to it
// instead of going through g0 (one switch instead of two; the yield benchmark halves).
// The yielding G cannot be queued before the switch (another M could steal and resume it
// while its registers are still being saved), so the G switched *to* queues it: every
// point where a goroutine resumes calls finish_switch_in(), which completes the switch
// for m->pending_g as m->pending_action says. park() does the same when runqget() has a G
// for this P (typically the one its caller just readied, in runnext: a channel hand-off
// then costs one switch, not two): the parking G's commit step (e.g. releasing the channel
// lock) must run only once the G is off its stack, so it is left in m->park_commit and run
// by the resumed G's finish_switch_in, on the same M, before that G's own code. Until then
// the parked G is kRunning with m == null and nobody can reach it (it is published only by
// the commit step), exactly as while g0 runs the commit. The fast paths are skipped when
// fairness, timers or thread locking need g0 (the 61st tick with work in the global queue
// or timers pending, locked goroutines, race mode, exit); direct yields also visit g0
// every 61st time. So due timers wait at most 61 switches of their P.
//
// Prefetching. A G sits at the top of its own stack, a page apart from any other, so the
// first touch of a G that waited in a long queue costs a TLB miss and a cache miss. When a
// batch moves from the global queue to a local one, each G is prefetched (warming the TLB
// entry shared by the G and its stack top), and before a G runs, the next one in the local
// queue is prefetched. Prefetches never fault; a stale pointer only wastes the prefetch.
//
// Invariants.
//   * nmspinning == number of Ms with m->spinning (plus transiently the wakep() claim).
//   * An M holds at most one P; p->m == m iff m->p == p, except that after sysmon takes
//     the P of a running goroutine (sysmon.cpp, "Preemption") m->p is stale until the M's
//     next runtime section, which clears it.
//   * A goroutine switch happens inside a runtime section at depth 1 (sched.hpp), which
//     the resumed side closes in finish_switch_in; g0 runs at depth >= 1.
//   * A G in a run queue is kRunnable and its sp is valid.
//   * Sched::lock is never held across a goroutine switch.
#include "runtime/sched.hpp"

#include <time.h>

#include <algorithm>
#include <numeric>

#include "base/fatal.hpp"
#include "base/keep_errno.hpp"
#include "runtime/context.hpp"
#include "runtime/fiber_sanitizer.hpp"
#include "runtime/gc_hooks.hpp"
#include "runtime/mprof.hpp"
#include "runtime/netpoll.hpp"
#include "trace/hooks.hpp"

namespace gort::runtime {

// Prints the waiting (and, a scheduler bug, runnable) goroutines; true if one was
// runnable (fault.cpp).
bool dump_waiting_goroutines(Sched& s) noexcept;
// The M and P counts and every M's P, goroutine and locked goroutine (fault.cpp). Context:
// s.lock held, every M asleep.
void dump_scheduler_state(Sched& s) noexcept GORT_REQUIRES(s.lock);

namespace {

constexpr std::uint32_t kRunnextStreakMax = 64;
constexpr int kNetpollBatch = 128;  // goroutines readied per netpoll() call, at most

// ---- Switching ----------------------------------------------------------------------

// Context: g0 of m. Runs gp until a goroutine switches back to g0; returns that goroutine
// (not necessarily gp: gp may have yielded directly to another).
G* execute(M* m, G* gp) {
  P* p = m->p;
  if (G* next = p->runq.peek()) __builtin_prefetch(next, 1);
  gp->status.store(GStatus::kRunning, std::memory_order_relaxed);
  gp->m = m;
  m->curg = gp;
  bump(p->schedtick);
  bump(p->counters.switches);
  trace::detail::go_start(p->id, gp->id);
  san::asan_start_switch(&m->g0.asan_fake_stack, reinterpret_cast<void*>(gp->stack.lo),
                         gp->stack.hi - gp->stack.lo);
  san::tsan_switch_to(gp->tsan_fiber);
  gc_hooks::will_run(gp);
  gort_switch_context(&m->g0.sp, gp->sp, gp);
  san::asan_finish_switch(m->g0.asan_fake_stack, nullptr, nullptr);
  G* back = m->curg;
  m->curg = nullptr;
  gc_hooks::switched_out(back);
  return back;
}

// ---- Ps -----------------------------------------------------------------------------

// p->m's only concurrent reader is sysmon (sysmon.cpp), which dereferences the M it reads:
// a store naming an M is a release (pairing with sysmon's acquire load), so the M's
// construction happens before sysmon touches it. Ownership of the P itself moves through
// Sched::lock, Note wakeups and the status CASes.
void acquirep(M* m, P* p) {
  GORT_CHECK(p != nullptr && p->m.load(std::memory_order_relaxed) == nullptr && m->p == nullptr);
  p->m.store(m, std::memory_order_release);
  p->status.store(PStatus::kRunning, std::memory_order_relaxed);
  m->p = p;
  trace::detail::proc_start(p->id);
}

P* releasep(M* m) {
  P* p = m->p;
  GORT_CHECK(p != nullptr && p->m.load(std::memory_order_relaxed) == m);
  trace::detail::proc_stop(p->id);
  p->m.store(nullptr, std::memory_order_relaxed);
  p->status.store(PStatus::kIdle, std::memory_order_relaxed);
  m->p = nullptr;
  return p;
}

void pidleput(Sched& s, P* p) GORT_REQUIRES(s.lock) {
  p->link = s.pidle;
  s.pidle = p;
  s.npidle.fetch_add(1, std::memory_order_seq_cst);
}

P* pidleget(Sched& s) GORT_REQUIRES(s.lock) {
  P* p = s.pidle;
  if (p != nullptr) {
    s.pidle = p->link;
    p->link = nullptr;
    s.npidle.fetch_sub(1, std::memory_order_seq_cst);
  }
  return p;
}

void mput(Sched& s, M* m) GORT_REQUIRES(s.lock) {
  m->schedlink = s.midle;
  s.midle = m;
  ++s.nmidle;
}

M* mget(Sched& s) GORT_REQUIRES(s.lock) {
  M* m = s.midle;
  if (m != nullptr) {
    s.midle = m->schedlink;
    m->schedlink = nullptr;
    --s.nmidle;
  }
  return m;
}

// ---- Run queues ---------------------------------------------------------------------

void globrunqput(Sched& s, G* gp) GORT_REQUIRES(s.lock) {
  s.runq.push(gp);
  s.runq_size.store(static_cast<std::int32_t>(s.runq.size()), std::memory_order_relaxed);
}

G* globrunqpop(Sched& s) GORT_REQUIRES(s.lock) {
  G* gp = s.runq.pop();
  s.runq_size.store(static_cast<std::int32_t>(s.runq.size()), std::memory_order_relaxed);
  return gp;
}

// Takes a fair share of the global queue: one G to run, the rest onto p's (empty) local
// queue. Go's globrunqget.
G* globrunqget(Sched& s, P* p, int max) GORT_REQUIRES(s.lock) {
  int n = s.runq_size.load(std::memory_order_relaxed);
  if (n == 0) return nullptr;
  n = std::min(n, n / s.gomaxprocs + 1);
  if (max > 0) n = std::min(n, max);
  n = std::min<int>(n, P::kRunQueueSize / 2);
  G* gp = globrunqpop(s);
  bump(p->counters.global_gets, static_cast<std::uint64_t>(n));
  while (--n > 0) {
    G* more = globrunqpop(s);
    __builtin_prefetch(more, 1);
    GORT_CHECK(p->runq.push(more));
  }
  return gp;
}

// The local queue is full: move half of it and gp to the global queue (Go's runqputslow).
bool runqputslow(Sched& s, M* m, P* p, G* gp) {
  G* batch[P::kRunQueueSize / 2 + 1];
  std::uint32_t n = p->runq.grab(batch);
  if (n == 0) return false;  // thieves emptied it meanwhile; the caller retries the push
  batch[n++] = gp;
  if (s.opts.race_randomize) {
    for (std::uint32_t i = n - 1; i > 0; --i) std::swap(batch[i], batch[m->rand.below(i + 1)]);
  }
  LockGuard l(s.lock);
  for (std::uint32_t i = 0; i < n; ++i) globrunqput(s, batch[i]);
  return true;
}

void runqput(Sched& s, M* m, P* p, G* gp, bool next) {
  if (s.opts.race_randomize && (m->rand.next() & 1) != 0) next = false;
  if (next) {
    G* old;
    if (s.single_p) {  // nobody steals: only p's M writes runnext (no RMW needed)
      old = p->runnext.load(std::memory_order_relaxed);
      p->runnext.store(gp, std::memory_order_relaxed);
    } else {
      old = p->runnext.exchange(gp, std::memory_order_acq_rel);
    }
    if (old == nullptr) return;
    gp = old;  // the previous runnext goes to the tail of the queue
  }
  while (!p->runq.push(gp)) {
    if (runqputslow(s, m, p, gp)) return;
  }
}

bool runq_pop(const Sched& s, P* p, G*& gp) {
  return s.single_p ? p->runq.pop_single_consumer(gp) : p->runq.pop(gp);
}

G* runqget(const Sched& s, P* p) {
  G* next = p->runnext.load(std::memory_order_relaxed);
  if (next != nullptr && (p->runnext_streak < kRunnextStreakMax || p->runq.empty())) {
    if (s.single_p) {  // no thief can race us for runnext
      p->runnext.store(nullptr, std::memory_order_relaxed);
      ++p->runnext_streak;
      return next;
    }
    if (p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire)) {
      ++p->runnext_streak;
      return next;
    }
  }
  G* gp = nullptr;
  if (runq_pop(s, p, gp)) {
    p->runnext_streak = 0;
    return gp;
  }
  // The streak bound skipped runnext but the queue turned out empty (stolen meanwhile).
  next = p->runnext.load(std::memory_order_relaxed);
  if (next != nullptr &&
      p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire))
    return next;
  return nullptr;
}

bool has_local_work(P* p) {
  return !p->runq.empty() || p->runnext.load(std::memory_order_acquire) != nullptr;
}

// Steals half of victim's queue into p's; returns one G to run. Go's runqsteal.
G* runqsteal(P* p, P* victim, bool steal_runnext) {
  G* batch[P::kRunQueueSize / 2];
  std::uint32_t n = victim->runq.grab(batch);
  if (n == 0 && steal_runnext) {
    G* next = victim->runnext.load(std::memory_order_acquire);
    if (next != nullptr) {
      // The victim is likely about to run it (it was just readied by its running G):
      // back off ~3 us first, as Go does, so ping-pong pairs are not split across Ps.
      timespec ts{0, 3000};
      nanosleep(&ts, nullptr);
      if (victim->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) {
        batch[0] = next;
        n = 1;
      }
    }
  }
  if (n == 0) return nullptr;
  bump(p->counters.steals);
  bump(p->counters.stolen, n);
  G* gp = batch[n - 1];
  if (n > 1) GORT_CHECK(p->runq.push_batch(batch, n - 1) == n - 1);
  return gp;
}

G* steal_work(Sched& s, M* m) {
  const auto n = static_cast<std::uint32_t>(s.gomaxprocs);
  if (n < 2) return nullptr;
  P* p = m->p;
  for (int round = 0; round < 4; ++round) {
    const bool last = round == 3;
    const std::uint32_t start = m->rand.below(n);
    const std::uint32_t stride =
        s.steal_strides[m->rand.below(static_cast<std::uint32_t>(s.steal_strides.size()))];
    for (std::uint32_t i = 0; i < n; ++i) {
      if (s.exiting.load(std::memory_order_relaxed)) return nullptr;
      P* victim = s.allp[(start + i * stride) % n];
      if (victim == p) continue;
      if (G* gp = runqsteal(p, victim, last)) return gp;
    }
  }
  return nullptr;
}

// ---- Ms -----------------------------------------------------------------------------

void m_thread_main(Sched* s, M* m);

// Starts an M to run p (an idle P if null). spinning: the caller already counted the new
// M in nmspinning. Go's startm.
void startm(Sched& s, P* p, bool spinning) {
  M* nm = nullptr;
  bool fresh = false;
  {
    LockGuard l(s.lock);
    if (p == nullptr && !s.exiting.load(std::memory_order_relaxed)) p = pidleget(s);
    if (p == nullptr) {
      if (spinning) s.nmspinning.fetch_sub(1, std::memory_order_seq_cst);
      return;
    }
    nm = mget(s);
    if (nm == nullptr) {
      nm = new M();
      nm->sched = &s;
      nm->id = s.mcount++;
      nm->rand = base::FastRand(0x5DEECE66Dull * static_cast<std::uint64_t>(nm->id + 1) ^
                                static_cast<std::uint64_t>(os::nanotime()));
      s.allm.push_back(nm);
      s.live_threads.fetch_add(1, std::memory_order_relaxed);
      fresh = true;
    }
    nm->spinning = spinning;
    nm->nextp = p;
  }
  if (fresh) {
    base::KeepErrno keep;  // often called on a goroutine (go(), ready()): see keep_errno.hpp
    // The threadcreate profile (mprof.cpp).
    thread_create_event(&s);
    std::thread(m_thread_main, &s, nm).detach();
  } else {
    s.thread_wakeups.fetch_add(1, std::memory_order_relaxed);
    nm->park.wakeup();  // release: pairs with the acquire in Note::sleep (nextp, spinning)
  }
}

void checkdead(Sched& s) GORT_REQUIRES(s.lock) {
  if (!s.opts.detect_deadlock || s.exiting.load(std::memory_order_relaxed)) return;
  const int running = s.mcount - s.nmidle - s.nmidlelocked;
  if (running > 0) return;
  if (running < 0) base::fatal("runtime: checkdead: inconsistent M counts");
  // Every M is asleep, so none waits for a timer or I/O (that M, the sleeper, is not
  // counted idle): nothing can wake anyone. Go's verdict.
  base::raw_write("fatal error: all goroutines are asleep - deadlock!\n\n");
  if (dump_waiting_goroutines(s) || s.runq_size.load(std::memory_order_relaxed) != 0)
    dump_scheduler_state(s);
  base::die();
}

// Takes an idle P for m, if there is one.
bool acquire_idle_p(Sched& s, M* m) {
  if (s.npidle.load(std::memory_order_relaxed) == 0) return false;
  P* p = nullptr;
  {
    LockGuard l(s.lock);
    p = pidleget(s);
  }
  if (p == nullptr) return false;
  acquirep(m, p);
  return true;
}

// Puts m to sleep until another M hands it a P (or the runtime exits). Go's stopm.
void stopm(Sched& s, M* m) {
  GORT_CHECK(m->p == nullptr && !m->spinning);
  {
    LockGuard l(s.lock);
    if (s.exiting.load(std::memory_order_relaxed)) return;
    mput(s, m);
    checkdead(s);
  }
  // A wakeup meant for this M's earlier turn as timer sleeper may still be pending: only
  // a P handed over (or the exit) ends the stop.
  for (;;) {
    m->park.sleep();
    m->park.clear();
    if (m->nextp != nullptr) {
      acquirep(m, m->nextp);
      m->nextp = nullptr;
      return;
    }
    if (s.exiting.load(std::memory_order_acquire)) return;
  }
}

// Hands p to another M if it has work (runnable goroutines, or timers nobody else would
// run), else makes it idle. Go's handoffp.
void handoffp_impl(Sched& s, P* p) {
  if (!has_local_work(p) && p->timers.next_when() == 0 &&
      s.runq_size.load(std::memory_order_relaxed) == 0) {
    LockGuard l(s.lock);
    if (s.runq_size.load(std::memory_order_relaxed) == 0) {
      pidleput(s, p);
      return;
    }
  }
  startm(s, p, false);
}

void resetspinning(Sched& s, M* m) {
  m->spinning = false;
  if (s.nmspinning.fetch_sub(1, std::memory_order_seq_cst) <= 0)
    base::fatal("runtime: negative nmspinning");
  // We found work: there may be more, so keep one M spinning (Go's policy).
  wakep(s);
}

// After a spinning M gave up its P: re-check every queue (see "Parking Ms" above).
bool recheck_after_spinning(Sched& s, M* m) {
  for (P* p2 : s.allp) {
    if (!has_local_work(p2)) continue;
    P* p = nullptr;
    {
      LockGuard l(s.lock);
      p = pidleget(s);
    }
    if (p == nullptr) return false;  // a running P owns that work and will run it
    acquirep(m, p);
    m->spinning = true;
    s.nmspinning.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  return false;
}

// Fires p's due timers; they ready their goroutines onto the caller's P. Runs on every
// scheduling round: a timer far off is ruled out with the coarse clock (~9 ns on this
// VM's kvm-clock, against ~43 ns for the precise one, which cost spawn-heavy code 17%
// whenever any goroutine slept); only one due within the coarse clock's lag reads the
// precise clock, so none fires early or late.
void check_timers(P* p) {
  const std::int64_t next = p->timers.next_when();
  if (next == 0) return;
  if (next - os::coarse_nanotime() > os::coarse_nanotime_lag()) return;
  const std::int64_t now = os::nanotime();
  if (next <= now) run_timers(p->timers, now);
}

// Fires the due timers of every P: before an M goes idle, and between mark slices, since
// an idle P's timers (or those of a P whose goroutine never reaches the scheduler) have
// nobody else to run them.
void check_all_timers(Sched& s) {
  for (P* p : s.allp) check_timers(p);
}

// The caller found nothing to run and gave up its P (Go's findrunnable tail, blocking in
// netpoll(delay)). Becomes the sleeper if there are timers or goroutines waiting for I/O
// and nobody sleeps for them yet: blocks in the netpoller until the earliest timer, an
// I/O event, or netpoll_break. Returns true holding a P (look for work again), false to
// stop.
bool sleep_in_netpoll(Sched& s, M* m) {
  const bool io = netpoll_has_waiters(s);
  if (!io && earliest_timer(s) == 0) return false;
  {
    LockGuard l(s.lock);
    if (s.exiting.load(std::memory_order_relaxed)) return false;
    if (s.timer_sleeper != nullptr) {
      // Someone sleeps already: make sure it does not oversleep ours.
      const std::int64_t until = earliest_timer(s);
      if (until != 0 && until < s.sleep_until.load(std::memory_order_relaxed)) netpoll_break(s);
      return false;
    }
    s.timer_sleeper = m;
    s.sleep_until.store(INT64_MAX, std::memory_order_seq_cst);  // "computing": wake me
  }
  // Scan after publishing INT64_MAX: an arm that this scan misses sees INT64_MAX (both
  // sides are seq_cst) and breaks the poll, so the wait below ends at once.
  const std::int64_t until = earliest_timer(s);
  std::int64_t delay = io ? -1 : 0;
  if (until != 0) {
    s.sleep_until.store(until, std::memory_order_seq_cst);
    delay = std::max<std::int64_t>(until - os::nanotime(), 0);
  }
  G* ready_gs[kNetpollBatch];
  const int n = netpoll(s, delay, ready_gs, kNetpollBatch);
  P* p = nullptr;
  {
    LockGuard l(s.lock);
    s.timer_sleeper = nullptr;
    s.sleep_until.store(0, std::memory_order_relaxed);
    p = pidleget(s);
  }
  if (p != nullptr) acquirep(m, p);
  inject_list(s, ready_gs, n);  // on our P, or globally (waking Ms for idle Ps)
  // No P: every P is running, and their Ms run the timers and the injected goroutines.
  return p != nullptr;
}

// Polls the network without blocking when nobody blocks in it (Go's findrunnable step
// before stealing). Returns a readied G to run now; the others go on p.
G* poll_network(Sched& s) {
  if (!netpoll_has_waiters(s) || netpoll_last_poll(s) == 0) return nullptr;
  G* gs[kNetpollBatch];
  const int n = netpoll(s, 0, gs, kNetpollBatch);
  if (n == 0) return nullptr;
  inject_list(s, gs + 1, n - 1);
  G* gp = gs[0];
  if (gp->status.load(std::memory_order_acquire) != GStatus::kWaiting)
    base::fatal("runtime: netpoll readied a goroutine that is not waiting");
  gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  return gp;
}

// ---- Mark work on the Ps (gc/worker.cpp has the design) --------------------------------

// Fractional mode: marks in slices while the cycle's background marking is under budget,
// one slice per round while goroutines wait. Not on a spinning M: it was woken to run them.
// Between slices it runs every P's due timers, as an idle M would: a P whose goroutine
// never reaches the scheduler has nobody else to run its timers (liveheap's 1 ms ticker
// was 3.5 ms late at p99 with only this P's timers run).
void mark_fractionally(Sched& s, M* m, P* p) {
  if (m->spinning || !gc_hooks::fractional_mark_wanted()) return;
  while (gc_hooks::mark_slice(false) == gc_hooks::MarkSlice::kMarked) {
    check_all_timers(s);
    const bool goroutines_wait =
        has_local_work(p) || s.runq_size.load(std::memory_order_relaxed) > 0;
    if (!gc_hooks::fractional_mark_may_go_on(goroutines_wait)) return;
  }
}

// Idle mode, on a P about to go idle with mark work queued: marks until a goroutine can
// run here (checked after each slice: the queues, every P's timers, the network) or no
// work is left. Returns true if it marked (the caller looks for goroutines again).
bool mark_while_idle(Sched& s, M* m, P* p) {
  // No longer looking for goroutines: another M spins instead, and if it finds none either
  // marks on the next idle P (Go's resetspinning after findRunnable picks a GC worker).
  if (m->spinning) resetspinning(s, m);
  bool marked = false;
  for (;;) {
    const gc_hooks::MarkSlice r = gc_hooks::mark_slice(true);
    if (r == gc_hooks::MarkSlice::kStop || r == gc_hooks::MarkSlice::kNoWork) return marked;
    marked = true;
    if (r == gc_hooks::MarkSlice::kMarkedLast) return true;
    check_all_timers(s);
    if (has_local_work(p) || s.runq_size.load(std::memory_order_relaxed) > 0) return true;
    if (G* gp = poll_network(s)) {
      runqput(s, m, p, gp, false);
      return true;
    }
  }
}

// Returns a runnable G, blocking the M while there is none; null when the runtime exits.
G* find_runnable(Sched& s, M* m) {
  for (;;) {
    if (s.exiting.load(std::memory_order_acquire)) return nullptr;
    if (m->p == nullptr) {
      // The goroutine that ran here lost its P (to sysmon while it ran, or during a
      // blocking call): get one before looking for work.
      if (!acquire_idle_p(s, m)) stopm(s, m);
      continue;
    }
    P* p = m->p;
    check_timers(p);
    if (gc_hooks::g_mark_workers.load(std::memory_order_relaxed) != 0) [[unlikely]]
      mark_fractionally(s, m, p);
    if (p->schedtick.load(std::memory_order_relaxed) % 61 == 0 &&
        s.runq_size.load(std::memory_order_relaxed) > 0) {
      LockGuard l(s.lock);
      if (G* gp = globrunqget(s, p, 1)) return gp;
    }
    if (G* gp = runqget(s, p)) return gp;
    if (s.runq_size.load(std::memory_order_relaxed) > 0) {
      LockGuard l(s.lock);
      if (G* gp = globrunqget(s, p, 0)) return gp;
    }
    if (G* gp = poll_network(s)) return gp;
    const int busy = s.gomaxprocs - s.npidle.load(std::memory_order_relaxed);
    if (m->spinning || 2 * s.nmspinning.load(std::memory_order_relaxed) < busy) {
      if (!m->spinning) {
        m->spinning = true;
        s.nmspinning.fetch_add(1, std::memory_order_seq_cst);
        bump(p->counters.spins);
      }
      if (G* gp = steal_work(s, m)) return gp;
    }
    // Before going idle, run the due timers of every P: an idle P's timers have nobody
    // else to run them.
    check_all_timers(s);
    if (G* gp = runqget(s, p)) return gp;
    if (gc_hooks::g_mark_workers.load(std::memory_order_relaxed) != 0 &&
        gc_hooks::mark_work_available()) [[unlikely]] {
      if (mark_while_idle(s, m, p)) continue;
    }
    {
      LockGuard l(s.lock);
      if (s.exiting.load(std::memory_order_relaxed)) return nullptr;
      if (G* gp = globrunqget(s, p, 0)) return gp;
      releasep(m);
      pidleput(s, p);
    }
    if (m->spinning) {
      m->spinning = false;
      if (s.nmspinning.fetch_sub(1, std::memory_order_seq_cst) <= 0)
        base::fatal("runtime: negative nmspinning");
      if (recheck_after_spinning(s, m)) continue;
    }
    if (sleep_in_netpoll(s, m)) continue;
    stopm(s, m);
  }
}

// Context: g0 with a P; m->lockedg is not running. Gives the P away and sleeps until the
// locked goroutine is runnable and handed back with a P. Go's stoplockedm.
bool stoplockedm(Sched& s, M* m) {
  if (m->p != nullptr) handoffp_impl(s, releasep(m));
  {
    LockGuard l(s.lock);
    ++s.nmidlelocked;
    checkdead(s);
  }
  m->park.sleep();  // the waker (startlockedm) took us out of nmidlelocked
  m->park.clear();
  if (s.exiting.load(std::memory_order_acquire) || m->nextp == nullptr) return false;
  acquirep(m, m->nextp);
  m->nextp = nullptr;
  return true;
}

// gp is locked to another M: hand it our P and stop. Go's startlockedm.
void startlockedm(Sched& s, M* m, G* gp) {
  M* lm = gp->lockedm;
  {
    // Count lm as running before we may go idle ourselves, or checkdead could see every
    // M asleep in between (Go's incidlelocked(-1) here).
    LockGuard l(s.lock);
    --s.nmidlelocked;
  }
  P* p = releasep(m);
  lm->nextp = p;
  lm->park.wakeup();  // release: pairs with lm's Note::sleep (nextp, gp)
  stopm(s, m);
}

// m's goroutine, preempted, stops running without a P (it switched, or got a P back).
void end_lost_p_run(Sched& s, M* m) {
  if (!m->lost_p) return;
  m->lost_p = false;
  s.preempted_running.fetch_sub(1, std::memory_order_relaxed);
}

// A goroutine that has no P to run on waits in the global queue (Go's exitsyscall0).
void queue_globally(Sched& s, G* gp) {
  gp->m = nullptr;
  gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  LockGuard l(s.lock);
  globrunqput(s, gp);
}

// Back from a blocking call with no P (Go's exitsyscall0): under one hold of the lock,
// take an idle P (gp then runs at once on m) or else queue gp globally. reacquire_p
// looked for an idle P before switching here; a P released since then, by an M that
// found the global queue empty and went to sleep, would otherwise stay idle with gp
// queued. For a gp locked to m nothing else looks again (m goes to stoplockedm), and every
// M could be asleep: checkdead's "all goroutines are asleep" (Trace.SysmonRetakeShowsOnTheP
// under TSan with a loaded machine, 5 runs in 40).
G* run_or_queue_after_blocking(Sched& s, M* m, G* gp) {
  gp->m = nullptr;
  gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  P* p = nullptr;
  {
    LockGuard l(s.lock);
    p = pidleget(s);
    if (p == nullptr) globrunqput(s, gp);
  }
  if (p == nullptr) return nullptr;
  acquirep(m, p);
  return gp;
}

// On g0 after gp switched back: carry out what it asked for. Returns a G to run at once
// (a park whose commit step declined, or gp back from a blocking call that found an idle
// P), else null. m has no P if sysmon took it while gp
// ran (sysmon.cpp, "Preemption"): then gp's action is completed without one and gp, if
// still runnable, waits in the global queue; find_runnable (or, for a locked gp,
// stoplockedm) then gets this M a P.
G* after_run(Sched& s, M* m, G* gp) {
  const Action a = m->action;
  m->action = Action::kNone;
  P* p = m->p;
  if (p == nullptr) end_lost_p_run(s, m);
  switch (a) {
    case Action::kYield:
      if (p == nullptr) {
        s.unowned_yields.fetch_add(1, std::memory_order_relaxed);
        queue_globally(s, gp);
        return nullptr;
      }
      gp->m = nullptr;
      gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
      bump(p->counters.yields);
      runqput(s, m, p, gp, false);
      return nullptr;
    case Action::kPark: {
      gp->m = nullptr;
      if (p != nullptr) {
        bump(p->counters.parks);
      } else {
        s.unowned_parks.fetch_add(1, std::memory_order_relaxed);
      }
      // Release: whoever readies gp (after the commit below unlocks) sees a stopped G.
      gp->status.store(GStatus::kWaiting, std::memory_order_release);
      ParkCommit commit = m->park_commit;
      m->park_commit = nullptr;
      if (commit != nullptr && !commit(m->park_arg, gp)) {
        if (p == nullptr) {
          queue_globally(s, gp);
          return nullptr;
        }
        gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
        return gp;
      }
      return nullptr;
    }
    case Action::kExit:
      gdestroy(s, p, gp);
      return nullptr;
    case Action::kExitSyscall:
      // Back from a blocking call (or preempted, see reacquire_p) with no P to run on. A
      // queued gp locked to m waits for it: the loop's stoplockedm.
      return run_or_queue_after_blocking(s, m, gp);
    case Action::kNone:
      break;
  }
  base::fatal("runtime: goroutine switched to g0 without an action");
}

void m_thread_main(Sched* s, M* m) {
  {
    set_current_m(m);
    m->tid.store(os::thread_id(), std::memory_order_relaxed);
    cpu_profile_thread_start(m->tid.load(std::memory_order_relaxed));
    m->errno_slot = errno_slot();
    os::AltStack alt;
    m->g0.tsan_fiber = san::tsan_current_fiber();
    os::current_thread_stack(&m->g0_stack_bottom, &m->g0_stack_size);
    acquirep(m, m->nextp);
    m->nextp = nullptr;
    schedule_loop(*s, m);
    cpu_profile_thread_exit(m->tid.load(std::memory_order_relaxed));
    set_current_m(nullptr);
  }
  // Last touch of the runtime: run_main() frees everything once this reaches zero.
  if (s->live_threads.fetch_sub(1, std::memory_order_acq_rel) == 1)
    os::futex_wake(&s->live_threads, 1);
}

}  // namespace

// ---- Entry points -------------------------------------------------------------------

void handoffp(Sched& s, P* p) {
  handoffp_impl(s, p);
}

// ---- Blocking calls (Go's entersyscall/exitsyscall) ---------------------------------
//
// blocking(f) leaves the P attached in kSyscall instead of handing it off at once: most
// calls are short, and taking the P back is one CAS. sysmon retakes a P whose call has
// lasted a whole sysmon tick (20 us or more) and hands it to another M, so goroutines
// keep running however long the call blocks. On return the M takes its P back, or any
// idle P, or else queues its goroutine globally and stops.

bool enter_blocking() {
  M* m = current_m();
  if (m == nullptr || m->curg == nullptr) return false;  // plain call
  RuntimeSection section(m);
  // No P (already in a blocking call, or preempted and not yet rescheduled): plain call.
  if (m->p == nullptr) return false;
  P* p = m->p;
  trace::detail::syscall_enter(p->id, m->curg->id);
  m->oldp = p;
  p->m.store(nullptr, std::memory_order_relaxed);
  m->p = nullptr;
  p->syscalltick.fetch_add(1, std::memory_order_relaxed);
  // Release: sysmon (or whoever wins the CAS back to kIdle) sees the P as we left it.
  p->status.store(PStatus::kSyscall, std::memory_order_release);
  Sched& s = *m->sched;
  if (s.sysmon_sleeping_long.load(std::memory_order_relaxed)) s.sysmon_note.wakeup();
  return true;
}

void exit_blocking() {
  M* m = current_m();
  trace::detail::syscall_exit(m->curg->id);
  enter_runtime(m);
  P* p = std::exchange(m->oldp, nullptr);
  PStatus expect = PStatus::kSyscall;
  if (p->status.compare_exchange_strong(expect, PStatus::kRunning, std::memory_order_acq_rel)) {
    p->m.store(m, std::memory_order_release);  // see acquirep
    m->p = p;
    p->syscalltick.fetch_add(1, std::memory_order_relaxed);
    trace::detail::go_running(p->id, m->curg->id);
    exit_runtime(m);
    return;  // fast path: nobody took it
  }
  m = reacquire_p(m);  // an idle P, or wait for one in the global queue (maybe on another M)
  trace::detail::go_running(m->p->id, m->curg->id);
  exit_runtime(m);
}

void preempt_noticed(M* m) noexcept {
  std::uint32_t seen = kPreemptClaimed;
  // Cancel the claim: sysmon then keeps its hands off (its own CAS to kPreemptTaken fails).
  // Acquire on failure: pairs with sysmon's CAS to kPreemptTaken (nothing of the P is read
  // after it, but the order is then plain to see).
  if (m->preempt.compare_exchange_strong(seen, kPreemptNone, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
    return;
  if (seen == kPreemptNone) return;  // sysmon withdrew the claim meanwhile
  GORT_CHECK(seen == kPreemptTaken && m->in_runtime.load(std::memory_order_relaxed) == 1);
  // m->p belongs to another M now: forget it without touching it. Reset the word last
  // (relaxed: sysmon claims only Ms it sees holding a P, which this one no longer does).
  m->p = nullptr;
  m->lost_p = true;
  m->preempt.store(kPreemptNone, std::memory_order_relaxed);
}

M* reacquire_p(M* m) {
  while (m->p == nullptr) {
    GORT_DCHECK(m->curg != nullptr && m->oldp == nullptr &&
                m->in_runtime.load(std::memory_order_relaxed) == 1);
    if (acquire_idle_p(*m->sched, m)) {
      end_lost_p_run(*m->sched, m);
      break;
    }
    mcall(Action::kExitSyscall);  // resumes with a P, maybe on another M, section closed
    m = current_m();
    enter_runtime_to_switch(m);  // which may find the new P taken already: loop
  }
  return m;
}

void wakep(Sched& s) {
  // No StoreLoad fence between publishing the G and reading the counters, as in Go: if a
  // stale read makes us skip the wakeup, the G still sits on our own running P, which will
  // run it; only parallelism is lost, briefly. (A fence here cost ~10% of spawn/join.)
  if (s.npidle.load(std::memory_order_relaxed) == 0) return;
  if (s.nmspinning.load(std::memory_order_relaxed) != 0) return;
  std::int32_t zero = 0;
  if (!s.nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  startm(s, nullptr, true);
}

void timer_added(Sched& s, std::int64_t when, bool on_own_p) {
  if (when < s.sleep_until.load(std::memory_order_seq_cst)) {
    netpoll_break(s);  // wakes the sleeper; harmless if it just left
    return;
  }
  // On a P nobody may be running: make sure some M looks at it.
  if (!on_own_p) wakep(s);
}

#define GORT_ALWAYS_INLINE inline __attribute__((always_inline))

namespace {
// m: the calling thread's M, or null for a plain thread. Inlined into ready(), where m is
// known non-null and the hot path is one runqput; wakep touches no P, so it runs after
// the section.
GORT_ALWAYS_INLINE void make_runnable_on(Sched& s, M* m, G* gp, bool next) {
  {
    RuntimeSection section(m);
    if (m != nullptr && m->p != nullptr) {
      runqput(s, m, m->p, gp, next);
    } else {
      LockGuard l(s.lock);
      globrunqput(s, gp);
    }
  }
  wakep(s);
}
}  // namespace

void make_runnable(Sched& s, G* gp, bool next) {
  make_runnable_on(s, current_m(), gp, next);
}

void inject_list(Sched& s, G** gs, int n) {
  if (n == 0) return;
  for (int i = 0; i < n; ++i) {
    if (gs[i]->status.load(std::memory_order_acquire) != GStatus::kWaiting)
      base::fatal("runtime: injecting a goroutine that is not waiting");
    gs[i]->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  }
  M* m = current_m();
  if (m != nullptr && m->p != nullptr) {
    for (int i = 0; i < n; ++i) runqput(s, m, m->p, gs[i], false);
    wakep(s);
    return;
  }
  {
    LockGuard l(s.lock);
    for (int i = 0; i < n; ++i) globrunqput(s, gs[i]);
  }
  // No P of our own: start Ms for idle Ps, one per goroutine at most (Go's injectglist).
  for (int i = 0; i < n && s.npidle.load(std::memory_order_relaxed) > 0; ++i)
    startm(s, nullptr, false);
}

void ready(G* gp, bool next) {
  // A load and a store, no RMW: only one waker can reach a parked G, the one that took it
  // off a wait queue under the lock that gp's park commit step released after storing
  // kWaiting (acquire here pairs with that release store, through the lock). The check
  // catches a ready of a goroutine that is not parked, not two racing readies (a runtime
  // bug that no caller can commit while the wait-queue rule holds).
  if (gp->status.load(std::memory_order_acquire) != GStatus::kWaiting)
    base::fatal("runtime: ready of a goroutine that is not waiting");
  gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  trace::detail::go_unblock(gp->id);
  M* m = current_m();
  if (m != nullptr) {
    make_runnable_on(*m->sched, m, gp, next);
    return;
  }
  Sched* s = current_sched();
  if (s == nullptr) return;  // the runtime exited; the goroutine was abandoned
  make_runnable_on(*s, nullptr, gp, next);
}

void begin_exit(Sched& s) {
  s.exiting.store(true, std::memory_order_release);
  std::vector<M*> ms;
  {
    LockGuard l(s.lock);
    ms = s.allm;
    s.midle = nullptr;
    s.nmidle = 0;
  }
  for (M* m : ms) m->park.wakeup();
  netpoll_break(s);
  s.sysmon_note.wakeup();
}

// The commit step of prev's direct park, run by the goroutine it switched to (on the same
// M, right after the switch): the counterpart of after_run's kPark case.
GORT_ALWAYS_INLINE void commit_direct_park(M* m, G* prev) {
  // Release: whoever readies prev (after the commit below publishes it) sees a stopped G.
  prev->status.store(GStatus::kWaiting, std::memory_order_release);
  ParkCommit commit = m->park_commit;
  m->park_commit = nullptr;
  if (commit != nullptr && !commit(m->park_arg, prev)) {
    // Cancelled: nobody else saw prev waiting. Run it next, as g0 would run it at once.
    prev->status.store(GStatus::kRunnable, std::memory_order_relaxed);
    runqput(*m->sched, m, m->p, prev, true);
  }
}

// Every resume point of a goroutine calls this first: it completes a direct switch away
// from the goroutine that ran before on this M (see "Direct switches" above), and closes
// the runtime section that the switching side (a goroutine, or g0) opened.
GORT_ALWAYS_INLINE void finish_switch_in_inline(G* gp) {
  san::asan_finish_switch(gp->asan_fake_stack, nullptr, nullptr);
  M* m = current_m();
  if (G* prev = m->pending_g) {
    m->pending_g = nullptr;
    gc_hooks::switched_out(prev);
    if (m->pending_action == Action::kYield) {
      if (!m->p->runq.push(prev)) runqput(*m->sched, m, m->p, prev, false);
    } else {
      commit_direct_park(m, prev);
    }
  }
  *m->errno_slot = gp->saved_errno;
  gc_hooks::resumed(gp);
  exit_runtime_after_switch(m);
}

// Takes the G to switch to for a direct yield: runnext first, then the queue's head.
GORT_ALWAYS_INLINE G* take_for_direct_yield(const Sched& s, P* p) {
  G* next = p->runnext.load(std::memory_order_relaxed);
  if (next != nullptr) {
    if (s.single_p) {  // no thief can race us for runnext either
      p->runnext.store(nullptr, std::memory_order_relaxed);
      return next;
    }
    if (p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire)) return next;
  }
  G* gp = nullptr;
  return runq_pop(s, p, gp) ? gp : nullptr;
}

void finish_switch_in(G* gp) {
  finish_switch_in_inline(gp);
}

// The tail both direct paths share: gp, its pending action recorded in m, hands this M
// to next, a G taken from this P's queues. Returns when gp is resumed, on any M.
GORT_ALWAYS_INLINE void switch_directly(M* m, P* p, G* gp, G* next) {
  GORT_DCHECK(m->in_runtime.load(std::memory_order_relaxed) == 1);
  bump(p->schedtick);
  bump(p->counters.switches);
  const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (sp < gp->lowest_sp) gp->lowest_sp = sp;
  gp->m = nullptr;
  gp->saved_errno = *m->errno_slot;
  m->pending_g = gp;
  trace::detail::go_start(p->id, next->id);
  next->status.store(GStatus::kRunning, std::memory_order_relaxed);
  next->m = m;
  m->curg = next;
  san::asan_start_switch(&gp->asan_fake_stack, reinterpret_cast<void*>(next->stack.lo),
                         next->stack.hi - next->stack.lo);
  san::tsan_switch_to(next->tsan_fiber);
  gc_hooks::will_run(next);
  gort_switch_context_symmetric(&gp->sp, next->sp, next);
  finish_switch_in_inline(gp);
}

// While the collector marks and the Ps' fractional marking is under budget, switches go
// through g0, which marks (mark_fractionally): goroutines that only switch directly would
// otherwise never give their P to marking. One relaxed load otherwise.
GORT_ALWAYS_INLINE bool fractional_mark_due() {
  return gc_hooks::g_mark_workers.load(std::memory_order_relaxed) != 0 &&
         gc_hooks::fractional_mark_wanted();
}

GORT_ALWAYS_INLINE bool direct_yield(M* m, G* gp) {
  Sched& s = *m->sched;
  P* p = m->p;
  if (p == nullptr || s.opts.race_randomize || gp->lockedm != nullptr) return false;
  if (--p->direct_yield_budget == 0) {
    p->direct_yield_budget = 61;
    return false;  // through g0 this time: it checks the global queue
  }
  if (fractional_mark_due()) [[unlikely]]
    return false;
  G* next = take_for_direct_yield(s, p);
  if (next == nullptr) return false;
  if (next->lockedm != nullptr) {  // needs its own M: let g0 deal with it
    runqput(s, m, p, next, true);
    return false;
  }
  bump(p->counters.yields);
  gp->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  m->pending_action = Action::kYield;
  switch_directly(m, p, gp, next);
  return true;
}

bool try_direct_yield(M* m, G* gp) {
  return direct_yield(m, gp);
}

// park() without visiting g0: switches straight to the G that find_runnable would pick
// from this P's runnext or local queue; the commit step runs in that G's
// finish_switch_in. Returns false (nothing done) when g0 must decide.
GORT_ALWAYS_INLINE bool direct_park(M* m, G* gp, ParkCommit commit, void* arg) {
  Sched& s = *m->sched;
  P* p = m->p;
  if (p == nullptr || s.opts.race_randomize || gp->lockedm != nullptr) return false;
  // What find_runnable checks before the local queue: exit, and the 1-in-61 global queue
  // check (schedtick counts direct switches too, so the check lands as it would on g0).
  if (s.exiting.load(std::memory_order_relaxed) || fractional_mark_due()) return false;
  if (p->schedtick.load(std::memory_order_relaxed) % 61 == 0 &&
      (s.runq_size.load(std::memory_order_relaxed) > 0 || p->timers.next_when() != 0))
    return false;
  G* next = runqget(s, p);
  if (next == nullptr) return false;
  if (next->lockedm != nullptr) {  // needs its own M: let g0 deal with it
    runqput(s, m, p, next, true);
    return false;
  }
  bump(p->counters.parks);
  // gp stays kRunning until commit_direct_park, after the switch.
  m->pending_action = Action::kPark;
  m->park_commit = commit;
  m->park_arg = arg;
  switch_directly(m, p, gp, next);
  return true;
}

GORT_ALWAYS_INLINE void mcall_on(M* m, Action a, ParkCommit commit, void* arg) {
  GORT_DCHECK(m->in_runtime.load(std::memory_order_relaxed) == 1);
  G* gp = m->curg;
  m->action = a;
  m->park_commit = commit;
  m->park_arg = arg;
  gp->saved_errno = *m->errno_slot;
  const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (sp < gp->lowest_sp) gp->lowest_sp = sp;
  const bool dying = a == Action::kExit;
  san::asan_start_switch(dying ? nullptr : &gp->asan_fake_stack, m->g0_stack_bottom,
                         m->g0_stack_size);
  san::tsan_switch_to(m->g0.tsan_fiber);
  gort_switch_context(&gp->sp, m->g0.sp, nullptr);
  // Resumed, possibly on another M: `m` is stale from here on.
  finish_switch_in_inline(gp);
}

void mcall(Action a, ParkCommit commit, void* arg) {
  mcall_on(current_m(), a, commit, arg);
}

void park(detail::WaitReason why, ParkCommit commit, void* arg) {
  M* m = current_m();
  G* gp = m->curg;
  gp->waitreason = why;
  // Block profile (mprof.cpp): time the park. One relaxed load when profiling is off.
  const std::int64_t t0 =
      g_block_profile_rate.load(std::memory_order_relaxed) > 0 && blocks_for_profile(why)
          ? os::nanotime()
          : 0;
  // The section is closed where the goroutine resumes. Without a P (taken by sysmon), g0
  // completes the park: the commit step (which may release a lock the caller holds) runs
  // before this M waits for a P.
  enter_runtime_to_switch(m);
  trace::detail::go_block(gp->id, static_cast<std::uint8_t>(why));
  if (!direct_park(m, gp, commit, arg)) mcall_on(m, Action::kPark, commit, arg);
  if (t0 != 0) {
    block_event(os::nanotime() - t0, 1);  // skips park's frame: the stack starts at our caller
    asm volatile("" ::: "memory");        // not a tail call: park's frame must still be there
  }
}

void schedule_loop(Sched& s, M* m) {
  G* gp = nullptr;
  for (;;) {
    if (gp == nullptr) {
      if (m->lockedg != nullptr) {
        if (!stoplockedm(s, m)) return;
        gp = m->lockedg;
      } else {
        gp = find_runnable(s, m);
        if (gp == nullptr) return;
        if (m->spinning) resetspinning(s, m);
        if (gp->lockedm != nullptr && gp->lockedm != m) {
          startlockedm(s, m, gp);
          gp = nullptr;
          if (s.exiting.load(std::memory_order_acquire)) return;
          continue;
        }
      }
    }
    gp = after_run(s, m, execute(m, gp));
  }
}

void start_m0(Sched& s, M* m0) {
  m0->sched = &s;
  {
    LockGuard l(s.lock);
    m0->id = s.mcount++;
    s.allm.push_back(m0);
  }
  m0->errno_slot = errno_slot();
  m0->g0.tsan_fiber = san::tsan_current_fiber();
  os::current_thread_stack(&m0->g0_stack_bottom, &m0->g0_stack_size);
  acquirep(m0, s.allp[0]);
  LockGuard l(s.lock);
  for (std::size_t i = s.allp.size(); i-- > 1;) pidleput(s, s.allp[i]);
}

void put_runnable_on(Sched& s, P* p, G* gp) {
  runqput(s, current_m(), p, gp, true);
}

}  // namespace gort::runtime

namespace gort {

namespace detail {
bool blocking_enter() {
  return runtime::enter_blocking();
}
void blocking_exit() {
  runtime::exit_blocking();
}
}  // namespace detail

// runtime.Gosched. Defined here, beside the direct-yield fast path it inlines.
void yield() {
  using namespace gort::runtime;
  M* m = current_m();
  G* gp = m != nullptr ? m->curg : nullptr;
  if (gp == nullptr) {
    std::this_thread::yield();
    return;
  }
  enter_runtime_to_switch(m);  // closed where the goroutine resumes
  trace::detail::go_sched(gp->id);
  if (!direct_yield(m, gp)) mcall_on(m, Action::kYield, nullptr, nullptr);
}

}  // namespace gort

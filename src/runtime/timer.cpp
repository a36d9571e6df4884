// Timers, after Go's runtime/time.go: every P owns a 4-ary min-heap of timers ordered by
// due time, and the scheduler runs the due ones whenever it looks for work.
//
// Why per-P heaps. A timer is armed on the P of the goroutine that arms it, so arming
// touches a heap that is almost never contended; the scheduler of that P checks one
// atomic (next_when) per scheduling round and calls the clock only when something is
// pending. An M about to go idle runs the due timers of every P (an idle P's timers
// would otherwise wait), and the last idle M sleeps exactly until the earliest timer of
// all Ps (sched.cpp, "Sleeping until the next timer"). A 4-ary heap is shallower than a
// binary one and its four children share a cache line or two: Go's choice.
//
// Locks and the protocol. Each timer has a lock guarding its state (armed, seq, period);
// each heap has a lock guarding its array and the timers' positions. Order: timer lock,
// then heap lock (arming and disarming hold both). Running a timer must not invert that
// order, so run_timers pops the due entry under the heap lock alone, releases it, and then
// takes the timer's lock to decide whether the entry is still current:
//   * every arm and disarm bumps the timer's seq, and each heap entry records the seq it
//     was pushed with, so an entry popped just before a concurrent reset or stop is
//     recognised as stale and dropped;
//   * the decision (clear `armed` for a one-shot, re-arm a periodic timer) is made under
//     the timer's lock, and fire() is called after releasing it. So stop() returns true
//     exactly when it prevented a firing; once it returns false the firing may still be
//     in progress (as in Go, whose Stop does not wait for f either).
// Lifetime: a heap entry owns a reference to a counted timer; run_timers holds it across
// fire(), so handles may be dropped at any time. A timer removed from its heap by disarm
// gives the reference back at once.
//
// Invariants.
//   * t->heap_ == h  iff  t has exactly one entry in h, at t->index_, with seq == t->seq_
//     (after a pop, heap_ is null and a stale entry may be in run_timers' hands only).
//   * h.next_when_ == when of h's root, or 0 when h is empty; written under h's lock.
#include "runtime/timer.hpp"

#include <limits>

#include "base/fatal.hpp"
#include "runtime/sched.hpp"

namespace gort::runtime {

namespace {
constexpr std::uint32_t kArity = 4;

std::uint32_t parent_of(std::uint32_t i) {
  return (i - 1) / kArity;
}
}  // namespace

// ---- Reference counting -------------------------------------------------------------

void TimerCore::retain() noexcept {
  if (counted_) refs_.fetch_add(1, std::memory_order_relaxed);
}

void TimerCore::release() noexcept {
  if (counted_ && refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

// ---- The heap -----------------------------------------------------------------------

void TimerHeap::place(std::uint32_t i, const Entry& e) {
  heap_[i] = e;
  e.timer->index_ = i;
}

void TimerHeap::sift_up(std::uint32_t i) {
  const Entry e = heap_[i];
  while (i > 0) {
    const std::uint32_t up = parent_of(i);
    if (heap_[up].when <= e.when) break;
    place(i, heap_[up]);
    i = up;
  }
  place(i, e);
}

void TimerHeap::sift_down(std::uint32_t i) {
  const Entry e = heap_[i];
  const auto n = static_cast<std::uint32_t>(heap_.size());
  for (;;) {
    const std::uint32_t first = i * kArity + 1;
    if (first >= n) break;
    std::uint32_t least = first;
    const std::uint32_t last = std::min(first + kArity, n);
    for (std::uint32_t c = first + 1; c < last; ++c)
      if (heap_[c].when < heap_[least].when) least = c;
    if (e.when <= heap_[least].when) break;
    place(i, heap_[least]);
    i = least;
  }
  place(i, e);
}

void TimerHeap::publish_next() {
  next_when_.store(heap_.empty() ? 0 : heap_[0].when, std::memory_order_seq_cst);
}

void TimerHeap::push(const Entry& e) {
  heap_.push_back(e);
  e.timer->heap_.store(this, std::memory_order_relaxed);
  sift_up(static_cast<std::uint32_t>(heap_.size() - 1));
  publish_next();
}

TimerHeap::Entry TimerHeap::remove_at(std::uint32_t i) {
  const Entry out = heap_[i];
  const Entry last = heap_.back();
  heap_.pop_back();
  if (i < heap_.size()) {
    place(i, last);
    if (i > 0 && heap_[parent_of(i)].when > last.when) {
      sift_up(i);
    } else {
      sift_down(i);
    }
  }
  out.timer->heap_.store(nullptr, std::memory_order_relaxed);
  publish_next();
  return out;
}

// ---- Arming and disarming -----------------------------------------------------------

// Takes t out of its heap, if it is in one. Returns whether t was armed.
bool TimerCore::disarm_locked() {
  const bool was_armed = armed_;
  armed_ = false;
  ++seq_;
  // Only run_timers can change heap_ without our lock, and only to null.
  if (TimerHeap* h = heap_.load(std::memory_order_relaxed)) {
    bool removed = false;
    {
      LockGuard l(h->lock_);
      if (heap_.load(std::memory_order_relaxed) == h) {
        h->remove_at(index_);
        removed = true;
      }
    }
    if (removed) release();  // the heap's reference; the caller still holds one
  }
  return was_armed;
}

bool timer_arm(TimerCore* t, std::int64_t when, std::int64_t period) {
  Sched* s = current_sched();
  GORT_CHECK(s != nullptr);
  M* m = current_m();
  // In a runtime section, m->p is current (outside one it may be a P sysmon took away, and
  // a timer counted as on our own running P would get no wakeup).
  RuntimeSection section(m);
  const bool on_own_p = m != nullptr && m->p != nullptr;
  TimerHeap& h = on_own_p ? m->p->timers : s->allp[0]->timers;
  bool was_armed = false;
  {
    LockGuard tl(t->lock_);
    was_armed = t->disarm_locked();
    t->armed_ = true;
    t->period_ = period;
    t->retain();  // for the heap entry
    LockGuard hl(h.lock_);
    h.push(TimerHeap::Entry{when, t, t->seq_});
  }
  timer_added(*s, when, on_own_p);
  return was_armed;
}

bool timer_disarm(TimerCore* t) {
  LockGuard l(t->lock_);
  return t->disarm_locked();
}

// ---- Running ------------------------------------------------------------------------

// The next due time of a periodic timer that fired at `when`, late or not: skip the
// ticks that were missed rather than firing them in a burst (Go's behaviour).
static std::int64_t next_period(std::int64_t when, std::int64_t period, std::int64_t now) {
  std::int64_t next = saturating_add(when, period);
  if (next <= now) next = saturating_add(next, ((now - next) / period + 1) * period);
  return next;
}

int run_timers(TimerHeap& h, std::int64_t now) {
  int fired = 0;
  for (;;) {
    TimerHeap::Entry e{};
    {
      LockGuard l(h.lock_);
      if (h.heap_.empty() || h.heap_[0].when > now) break;
      e = h.remove_at(0);
    }
    TimerCore* t = e.timer;
    const bool counted = t->counted();  // read now: an uncounted timer may die in fire()
    bool fire = false;
    {
      LockGuard l(t->lock_);
      if (t->armed_ && t->seq_ == e.seq && t->heap_.load(std::memory_order_relaxed) == nullptr) {
        fire = true;
        if (t->period_ > 0) {
          t->retain();
          LockGuard hl(h.lock_);
          h.push(TimerHeap::Entry{next_period(e.when, t->period_, now), t, t->seq_});
        } else {
          t->armed_ = false;
        }
      }
    }
    if (fire) {
      ++fired;
      t->fire(now);
    }
    if (counted) t->release();  // the popped entry's reference
  }
  return fired;
}

std::int64_t earliest_timer(const Sched& s) noexcept {
  std::int64_t best = 0;
  for (const P* p : s.allp) {
    const std::int64_t w = p->timers.next_when();
    if (w != 0 && (best == 0 || w < best)) best = w;
  }
  return best;
}

void drop_timers(Sched& s) GORT_NO_THREAD_SAFETY_ANALYSIS {
  for (P* p : s.allp) {
    TimerHeap& h = p->timers;
    std::vector<TimerHeap::Entry> entries;
    {
      LockGuard l(h.lock_);
      entries.swap(h.heap_);
      h.publish_next();
    }
    for (const TimerHeap::Entry& e : entries) {
      TimerCore* t = e.timer;
      {
        LockGuard l(t->lock_);
        t->heap_.store(nullptr, std::memory_order_relaxed);
        t->armed_ = false;
        ++t->seq_;
      }
      if (t->counted()) t->release();
    }
  }
}

}  // namespace gort::runtime

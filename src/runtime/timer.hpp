// Timers: per-P 4-ary min-heaps of timers, run by the scheduler (Go's runtime/time.go).
// timer.cpp explains the design and the locking protocol.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "base/annotations.hpp"
#include "runtime/lock.hpp"

namespace gort::runtime {

class TimerHeap;
struct Sched;
struct P;

// a + b for b >= 0, clamped to the largest representable time (Go's maxWhen).
inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

// A timer: calls fire() once at `when`, then every `period` ns while period > 0.
// Reference-counted when `counted` (the public Timer/Ticker handles and the heap each hold
// a reference); a timer that is not counted (sleep()'s, on the sleeping goroutine's
// stack) must outlive its arming, which its owner guarantees by waiting for fire().
class TimerCore {
 public:
  explicit TimerCore(bool counted) noexcept : counted_(counted) {}
  TimerCore(const TimerCore&) = delete;
  TimerCore& operator=(const TimerCore&) = delete;

  // Runs on g0 of an M holding a P, with no lock held: it must not block (no goroutine
  // to park), but may arm and disarm timers, this one included. For an uncounted timer
  // the call may end the timer's life: fire() must not touch *this after waking its owner.
  virtual void fire(std::int64_t now) = 0;

  void retain() noexcept;
  void release() noexcept;  // deletes the timer at zero (counted timers only)
  bool counted() const noexcept { return counted_; }

 protected:
  virtual ~TimerCore() = default;

 private:
  friend class TimerHeap;
  friend bool timer_arm(TimerCore*, std::int64_t, std::int64_t);
  friend bool timer_disarm(TimerCore*);
  friend int run_timers(TimerHeap&, std::int64_t);
  friend void drop_timers(Sched&);
  bool disarm_locked() GORT_REQUIRES(lock_);

  const bool counted_;
  std::atomic<std::uint32_t> refs_{1};
  Lock lock_;
  bool armed_ GORT_GUARDED_BY(lock_) = false;
  std::uint64_t seq_ GORT_GUARDED_BY(lock_) = 0;  // bumped by every arm and disarm
  std::int64_t period_ GORT_GUARDED_BY(lock_) = 0;
  // The heap holding the timer, or null. Written under that heap's lock; a reader holding
  // lock_ re-checks it under the heap's lock (only run_timers clears it without lock_).
  std::atomic<TimerHeap*> heap_{nullptr};
  std::uint32_t index_ = 0;  // position in heap_; guarded by heap_'s lock
};

// One P's timers.
class TimerHeap {
 public:
  struct Entry {
    std::int64_t when;
    TimerCore* timer;
    std::uint64_t seq;  // the timer's seq when this entry was pushed
  };

  // When the earliest timer is due, or 0 if the heap is empty. Any thread may read it.
  std::int64_t next_when() const noexcept { return next_when_.load(std::memory_order_seq_cst); }

 private:
  friend class TimerCore;
  friend bool timer_arm(TimerCore*, std::int64_t, std::int64_t);
  friend int run_timers(TimerHeap&, std::int64_t);
  friend void drop_timers(Sched&);

  void push(const Entry& e) GORT_REQUIRES(lock_);
  Entry remove_at(std::uint32_t i) GORT_REQUIRES(lock_);
  void sift_up(std::uint32_t i) GORT_REQUIRES(lock_);
  void sift_down(std::uint32_t i) GORT_REQUIRES(lock_);
  void place(std::uint32_t i, const Entry& e) GORT_REQUIRES(lock_);
  void publish_next() GORT_REQUIRES(lock_);

  Lock lock_;
  std::vector<Entry> heap_ GORT_GUARDED_BY(lock_);
  std::atomic<std::int64_t> next_when_{0};
};

// Arms t to fire at `when` (absolute, os::nanotime()), then every period ns if period > 0,
// replacing any previous arming. Returns whether t was armed before (Go's Reset result).
// Context: a thread of the running runtime, or any thread while it runs; the timer goes
// to the caller's P, else to P 0.
bool timer_arm(TimerCore* t, std::int64_t when, std::int64_t period);
// Prevents t from firing. Returns whether it was armed (Go's Stop result). Any thread.
bool timer_disarm(TimerCore* t);
// Fires h's timers due at `now`. Returns how many fired. Context: g0 of an M with a P.
int run_timers(TimerHeap& h, std::int64_t now);
// The earliest pending timer of any P, or 0 if none.
std::int64_t earliest_timer(const Sched& s) noexcept;
// Runtime teardown: every heap lets go of its timers (armed timers stay unfired).
void drop_timers(Sched& s);

}  // namespace gort::runtime

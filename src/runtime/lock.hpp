// The runtime's internal lock: a futex mutex (Drepper's "Futexes Are Tricky", mutex 3).
// It blocks the OS thread, never parks a goroutine, so it must only guard short critical
// sections that never switch goroutines. Annotated for clang's -Wthread-safety.
//
// Lock order (outermost first; take a later one only while holding earlier ones):
//   1. sema bucket lock (sema.cpp)
//   2. Sched::lock (idle Ps and Ms, global run queue)
//   3. Sched::gfree_lock (global free G list)
//   4. StackArena::lock_ (slab list)
//   5. Sched::allg_lock
// Leaf locks, taken with any of the above held and holding nothing else: the contention
// profile and threadcreate record locks (mprof.cpp).
// Timers (timer.cpp) form a separate chain, taken with none of the above held and
// holding nothing else: TimerCore::lock_, then TimerHeap::lock_.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/annotations.hpp"
#include "base/cpu.hpp"
#include "os/os.hpp"

namespace gort::runtime {

// The lock algorithm on a bare word, so that public types (NotifyList) can embed one.
// 0 unlocked, 1 locked, 2 locked with (possible) waiters.
struct LockWord {
  static void lock(std::atomic<std::uint32_t>& w) {
    std::uint32_t c = 0;
    if (w.compare_exchange_strong(c, 1, std::memory_order_acquire)) return;
    lock_slow(w, c);
  }
  static void unlock(std::atomic<std::uint32_t>& w) {
    // Release pairs with the acquire CAS/exchange of the next owner.
    if (w.exchange(0, std::memory_order_release) == 2) os::futex_wake(&w, 1);
  }
  static void lock_slow(std::atomic<std::uint32_t>& state_, std::uint32_t c) {
    // Spin briefly: critical sections here are tens of nanoseconds. Watch the word with
    // plain loads and try the CAS only when it reads unlocked: a CAS on every iteration
    // would pull the cache line away from the holder, whose unlock then waits for it.
    for (int i = 0; i < 100; ++i) {
      base::cpu_relax();
      c = state_.load(std::memory_order_relaxed);
      if (c == 0 && state_.compare_exchange_weak(c, 1, std::memory_order_acquire)) return;
    }
    if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      os::futex_wait(&state_, 2);
      c = state_.exchange(2, std::memory_order_acquire);
    }
  }
};

class GORT_CAPABILITY("mutex") Lock {
 public:
  void lock() GORT_ACQUIRE() { LockWord::lock(state_); }
  void unlock() GORT_RELEASE() { LockWord::unlock(state_); }

 private:
  std::atomic<std::uint32_t> state_{0};
};

class GORT_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(Lock& l) GORT_ACQUIRE(l) : l_(l) { l_.lock(); }
  ~LockGuard() GORT_RELEASE() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& l_;
};

}  // namespace gort::runtime

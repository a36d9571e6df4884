// Goroutine-aware synchronisation (Go's sync package). Waiting parks the goroutine, never
// the OS thread; called from a plain thread, waiting blocks that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>

#include "gort/detail/sema.hpp"

namespace gort {

// sync.Mutex: lock(), unlock(), try_lock() (a C++ Lockable: std::scoped_lock works).
// Waiting parks the goroutine after a brief spin. Starvation mode as in Go's
// sync/mutex.go: a waiter that waited more than 1 ms gets the lock handed to it directly,
// so no waiter starves behind newcomers. Unlocking an unlocked Mutex is a fatal error.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    std::int32_t unlocked = 0;
    // acquire: pairs with the release in unlock(); the critical section starts here.
    if (state_.compare_exchange_strong(unlocked, kLocked, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() {
    std::int32_t old = state_.load(std::memory_order_relaxed);
    if ((old & (kLocked | kStarving)) != 0) return false;
    return state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire);
  }
  void unlock() {
    // release: publishes the critical section to the next owner.
    const std::int32_t now = state_.fetch_sub(kLocked, std::memory_order_release) - kLocked;
    if (now != 0) unlock_slow(now);
  }

 private:
  friend class RWMutex;
  static constexpr std::int32_t kLocked = 1;
  static constexpr std::int32_t kWoken = 2;
  static constexpr std::int32_t kStarving = 4;
  static constexpr int kWaiterShift = 3;

  void lock_slow();
  void unlock_slow(std::int32_t now);

  // Bits 0-2: locked, woken, starving; the rest: number of waiters (Go's layout).
  std::atomic<std::int32_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

// sync.RWMutex: any number of readers or one writer; a blocked writer keeps new readers
// out, so writers are not starved. Also SharedLockable (std::shared_lock works).
class RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  void lock();
  bool try_lock();
  void unlock();
  void lock_shared();
  bool try_lock_shared();
  void unlock_shared();

 private:
  static constexpr std::int32_t kMaxReaders = 1 << 30;
  Mutex w_;                                    // held while writers are pending
  std::atomic<std::uint32_t> writer_sem_{0};   // writers wait here for departing readers
  std::atomic<std::uint32_t> reader_sem_{0};   // readers wait here for the writer
  std::atomic<std::int32_t> reader_count_{0};  // < 0: a writer is pending
  std::atomic<std::int32_t> reader_wait_{0};   // readers the pending writer waits for
};

// sync.Once: call(f) runs f exactly once across all callers; the others wait for it to
// finish. If f throws, the Once still counts as done (Go's rule) and the exception
// propagates to the caller that ran it.
class Once {
 public:
  template <class F>
  void call(F&& f) {
    // acquire: pairs with the release store after f ran, so f's effects are visible.
    if (done_.load(std::memory_order_acquire) != 0) return;
    std::scoped_lock l(m_);
    if (done_.load(std::memory_order_relaxed) != 0) return;
    struct MarkDone {
      std::atomic<std::uint32_t>& d;
      ~MarkDone() { d.store(1, std::memory_order_release); }
    } mark{done_};
    std::forward<F>(f)();
  }

 private:
  std::atomic<std::uint32_t> done_{0};
  Mutex m_;
};

// sync.Cond, bound to a Mutex: wait() atomically unlocks it and parks until signal() or
// broadcast(), then relocks it before returning (wakeups may be spurious in spirit: wait
// in a loop on the condition, as in Go).
class Cond {
 public:
  explicit Cond(Mutex& m) : mu_(m) {}
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  void wait() {
    const std::uint32_t ticket = detail::notify_list_add(&notify_);
    mu_.unlock();
    detail::notify_list_wait(&notify_, ticket);
    mu_.lock();
  }
  void signal() { detail::notify_list_notify_one(&notify_); }
  void broadcast() { detail::notify_list_notify_all(&notify_); }
  Mutex& mutex() { return mu_; }

 private:
  Mutex& mu_;
  detail::NotifyList notify_;
};

// sync.WaitGroup. add() with a negative result throws gort::Panic("sync: negative
// WaitGroup counter"); reusing a WaitGroup before a previous wait() returned throws too.
class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  void add(int delta);
  void done() { add(-1); }
  void wait();

 private:
  // High 32 bits: counter. Low 32 bits: number of waiters. As in Go's sync/waitgroup.go.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

}  // namespace gort

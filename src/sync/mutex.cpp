// sync.Mutex and sync.RWMutex, after Go's sync/mutex.go and sync/rwmutex.go.
//
// Mutex fairness (Go's design, quoted in substance): the mutex has two modes. In normal
// mode waiters queue FIFO, but a woken waiter competes with newly arriving goroutines,
// which have the advantage of already running on a CPU, so a woken waiter can lose
// repeatedly. A waiter that fails to get the lock for more than 1 ms switches the mutex to
// starvation mode: unlock then hands the mutex directly to the waiter at the front, and
// newcomers neither try to grab it nor spin, they queue at the tail. The mutex returns to
// normal mode when the waiter that got it is the last one, or waited less than 1 ms.
// Normal mode performs much better (a goroutine can take the mutex several times in a
// row); starvation mode bounds tail latency.
#include "gort/runtime.hpp"
#include "gort/sync.hpp"

namespace gort {

namespace {
constexpr std::int64_t kStarvationThresholdNs = 1'000'000;
}

void Mutex::lock_slow() {
  std::int64_t wait_start = 0;
  bool starving = false;
  bool awoke = false;
  int iter = 0;
  std::int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Spin while the mutex is locked in normal mode and spinning may pay off. Setting
    // kWoken tells unlock not to wake a parked waiter: we are about to take it.
    if ((old & (kLocked | kStarving)) == kLocked && detail::sync_can_spin(iter)) {
      if (!awoke && (old & kWoken) == 0 && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_strong(old, old | kWoken, std::memory_order_relaxed)) {
        awoke = true;
      }
      detail::sync_do_spin();
      ++iter;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    std::int32_t want = old;
    if ((old & kStarving) == 0) want |= kLocked;  // don't grab a starving mutex
    if ((old & (kLocked | kStarving)) != 0) want += 1 << kWaiterShift;
    if (starving && (old & kLocked) != 0) want |= kStarving;
    if (awoke) {
      if ((want & kWoken) == 0) detail::sync_fatal("sync: inconsistent mutex state");
      want &= ~kWoken;
    }
    if (!state_.compare_exchange_strong(old, want, std::memory_order_acq_rel)) continue;
    if ((old & (kLocked | kStarving)) == 0) return;  // locked it with the CAS
    // Queue up: at the front if we already waited before (LIFO), else at the back.
    const bool lifo = wait_start != 0;
    if (wait_start == 0) wait_start = detail::sync_nanotime();
    detail::sema_acquire(&sema_, detail::WaitReason::kSyncMutexLock, lifo);
    starving = starving || detail::sync_nanotime() - wait_start > kStarvationThresholdNs;
    old = state_.load(std::memory_order_acquire);
    if ((old & kStarving) != 0) {
      // Handed to us in starvation mode: the state is inconsistent until we fix it.
      if ((old & (kLocked | kWoken)) != 0 || (old >> kWaiterShift) == 0)
        detail::sync_fatal("sync: inconsistent mutex state");
      std::int32_t delta = kLocked - (1 << kWaiterShift);
      if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;  // exit starvation
      state_.fetch_add(delta, std::memory_order_acq_rel);
      return;
    }
    awoke = true;
    iter = 0;
  }
}

void Mutex::unlock_slow(std::int32_t now) {
  if (((now + kLocked) & kLocked) == 0) detail::sync_fatal("sync: unlock of unlocked mutex");
  if ((now & kStarving) != 0) {
    // Starvation mode: hand the mutex to the first waiter and yield our slice to it.
    detail::sema_release(&sema_, /*handoff=*/true);
    return;
  }
  std::int32_t old = now;
  for (;;) {
    // Nobody to wake, or someone already woken/locking it: done.
    if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving)) != 0) return;
    const std::int32_t want = (old - (1 << kWaiterShift)) | kWoken;
    if (state_.compare_exchange_strong(old, want, std::memory_order_release)) {
      detail::sema_release(&sema_, false);
      return;
    }
  }
}

void RWMutex::lock_shared() {
  if (reader_count_.fetch_add(1, std::memory_order_acq_rel) + 1 < 0) {
    // A writer is pending: wait for it.
    detail::sema_acquire(&reader_sem_, detail::WaitReason::kSyncRWMutexRLock);
  }
}

bool RWMutex::try_lock_shared() {
  std::int32_t c = reader_count_.load(std::memory_order_relaxed);
  while (c >= 0) {
    if (reader_count_.compare_exchange_weak(c, c + 1, std::memory_order_acquire)) return true;
  }
  return false;
}

void RWMutex::unlock_shared() {
  const std::int32_t r = reader_count_.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (r >= 0) return;
  if (r + 1 == 0 || r + 1 == -kMaxReaders) detail::sync_fatal("sync: RUnlock of unlocked RWMutex");
  // A writer is pending: the last departing reader lets it in.
  if (reader_wait_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0)
    detail::sema_release(&writer_sem_);
}

void RWMutex::lock() {
  w_.lock();  // first, resolve competition with other writers
  // Announce the writer to readers; r is the number of active readers.
  const std::int32_t r = reader_count_.fetch_sub(kMaxReaders, std::memory_order_acq_rel);
  if (r != 0 && reader_wait_.fetch_add(r, std::memory_order_acq_rel) + r != 0)
    detail::sema_acquire(&writer_sem_, detail::WaitReason::kSyncRWMutexLock);
}

bool RWMutex::try_lock() {
  if (!w_.try_lock()) return false;
  std::int32_t zero = 0;
  if (!reader_count_.compare_exchange_strong(zero, -kMaxReaders, std::memory_order_acquire)) {
    w_.unlock();
    return false;
  }
  return true;
}

void RWMutex::unlock() {
  // Announce to readers that there is no active writer.
  const std::int32_t r =
      reader_count_.fetch_add(kMaxReaders, std::memory_order_acq_rel) + kMaxReaders;
  if (r >= kMaxReaders) detail::sync_fatal("sync: Unlock of unlocked RWMutex");
  for (std::int32_t i = 0; i < r; ++i) detail::sema_release(&reader_sem_);  // blocked readers
  w_.unlock();
}

}  // namespace gort

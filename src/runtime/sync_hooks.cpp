// The runtime side of the sync package: spinning policy, clock, fatal errors, and Go's
// notifyList (runtime/sema.go) behind Cond.
#include "base/cpu.hpp"
#include "base/fatal.hpp"
#include "gort/detail/sema.hpp"
#include "runtime/sched.hpp"

namespace gort::detail {

using namespace gort::runtime;

bool sync_can_spin(int iter) noexcept {
  // After Go's sync_runtime_canSpin: a Mutex is cooperative, so spin only a few times,
  // and only with GOMAXPROCS > 1 and another P running (the holder may be on it).
  // One difference: Go never spins while other goroutines wait on our P; we spin twice
  // (~1 us here) even then, and four times when none waits. The holder of a contended
  // mutex is usually on another P and about to unlock; parking instead costs a park, a
  // wake and a run-queue trip (more than the spin) and moves the lock's line once more.
  // With 100 goroutines on 2 Ps (bench/compare, mutex_contended) this took gort from
  // 51-62 ns to 32-35 ns per lock+unlock against Go's 49-52 (docs/benchmarks.md); the
  // delay it adds to the waiting goroutines is bounded by the two spins.
  constexpr int kActiveSpin = 4;
  constexpr int kSpinWithWork = 2;
  if (iter >= kActiveSpin) return false;
  M* m = current_m();
  if (m == nullptr || m->p == nullptr) return false;
  const Sched& s = *m->sched;
  if (s.gomaxprocs <=
      s.npidle.load(std::memory_order_relaxed) + s.nmspinning.load(std::memory_order_relaxed) + 1)
    return false;
  const bool others_wait =
      !m->p->runq.empty() || m->p->runnext.load(std::memory_order_relaxed) != nullptr;
  return !others_wait || iter < kSpinWithWork;
}

void sync_do_spin() noexcept {
  for (int i = 0; i < 30; ++i) base::cpu_relax();  // Go's procyield(30)
}

std::int64_t sync_nanotime() noexcept {
  return os::nanotime();
}

void sync_fatal(const char* msg) noexcept {
  base::fatal(msg);
}

// ---- notifyList ---------------------------------------------------------------------
//
// Cond.Wait takes a ticket (notify_list_add) *before* unlocking the user's mutex, then
// waits for that ticket. Signal notifies the oldest unnotified ticket; Broadcast all of
// them. A waiter whose ticket was notified before it queued returns at once, so no
// wakeup is lost between unlocking the mutex and parking.

namespace {

struct NotifyWaiter {
  std::uint32_t ticket = 0;
  G* g = nullptr;  // null: a thread, sleeping on note
  os::Note note;
  NotifyWaiter* next = nullptr;
  bool notified = false;  // set by the notifier that took it off the list
};

// Wrap-around comparison of tickets.
bool ticket_less(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b) < 0;
}

bool unlock_word(void* arg, G*) {
  LockWord::unlock(*static_cast<std::atomic<std::uint32_t>*>(arg));
  return true;
}

void wake_waiter(NotifyWaiter* w) {
  w->notified = true;
  if (w->g != nullptr) {
    ready(w->g, true);
  } else {
    w->note.wakeup();
  }
}

}  // namespace

std::uint32_t notify_list_add(NotifyList* l) noexcept {
  return l->wait.fetch_add(1, std::memory_order_acq_rel);
}

void notify_list_wait(NotifyList* l, std::uint32_t ticket) {
  LockWord::lock(l->lock);
  if (ticket_less(ticket, l->notify.load(std::memory_order_relaxed))) {  // already notified
    LockWord::unlock(l->lock);
    return;
  }
  NotifyWaiter w;
  w.ticket = ticket;
  w.g = current_g();
  if (l->tail != nullptr) {
    static_cast<NotifyWaiter*>(l->tail)->next = &w;
  } else {
    l->head = &w;
  }
  l->tail = &w;
  if (w.g != nullptr) {
    park(WaitReason::kSyncCondWait, unlock_word, &l->lock);
    // Only a notifier that unlinked w wakes it (else w's record stays listed; see sema).
    if (!w.notified) base::fatal("runtime: Cond waiter woken while still queued");
  } else {
    LockWord::unlock(l->lock);
    w.note.sleep();
  }
}

void notify_list_notify_all(NotifyList* l) {
  if (l->wait.load(std::memory_order_acquire) == l->notify.load(std::memory_order_acquire)) return;
  LockWord::lock(l->lock);
  auto* w = static_cast<NotifyWaiter*>(l->head);
  l->head = l->tail = nullptr;
  l->notify.store(l->wait.load(std::memory_order_acquire), std::memory_order_release);
  LockWord::unlock(l->lock);
  while (w != nullptr) {
    NotifyWaiter* next = w->next;  // read before waking: w may vanish
    wake_waiter(w);
    w = next;
  }
}

void notify_list_notify_one(NotifyList* l) {
  if (l->wait.load(std::memory_order_acquire) == l->notify.load(std::memory_order_acquire)) return;
  LockWord::lock(l->lock);
  const std::uint32_t t = l->notify.load(std::memory_order_relaxed);
  if (t == l->wait.load(std::memory_order_acquire)) {
    LockWord::unlock(l->lock);
    return;
  }
  l->notify.store(t + 1, std::memory_order_release);
  // The waiter with ticket t may not have queued yet: then it will see notify > t and
  // return without parking.
  NotifyWaiter* prev = nullptr;
  for (auto* w = static_cast<NotifyWaiter*>(l->head); w != nullptr; prev = w, w = w->next) {
    if (w->ticket != t) continue;
    NotifyWaiter* next = w->next;
    if (prev != nullptr) {
      prev->next = next;
    } else {
      l->head = next;
    }
    if (l->tail == w) l->tail = prev;
    w->next = nullptr;
    LockWord::unlock(l->lock);
    wake_waiter(w);
    return;
  }
  LockWord::unlock(l->lock);
}

}  // namespace gort::detail

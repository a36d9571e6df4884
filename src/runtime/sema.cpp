// The runtime semaphore (Go's runtime/sema.go), the blocking core of the sync package.
//
// The count lives in user memory (*addr). Waiters are kept in a fixed table of 251 buckets
// (Go's semTabSize) keyed by address; each bucket has a lock and a list of per-address
// FIFO queues. A waiter record lives on the waiting goroutine's (or thread's) own stack —
// a parked stack never moves — so blocking allocates nothing.
//
// Lost-wakeup protocol: an acquirer increments the bucket's nwait *then* re-tries the
// count (both under the bucket lock); a releaser increments the count *then* reads nwait.
// Both are seq_cst, so at least one of them sees the other: either the acquirer takes the
// count, or the releaser sees a waiter and takes the lock to wake it.
//
// Waiters are goroutines (parked with the bucket lock released by the park commit step,
// on g0, so a releaser cannot ready a goroutine that is still running) or plain threads
// (blocked on a futex Note).
#include <thread>

#include "base/cache.hpp"
#include "gort/detail/sema.hpp"
#include "runtime/mprof.hpp"
#include "runtime/sched.hpp"

namespace gort::detail {

using namespace gort::runtime;

namespace {

struct Waiter {
  std::atomic<std::uint32_t>* addr = nullptr;
  G* g = nullptr;  // null: a thread waiter, sleeping on `note`
  os::Note note;
  Waiter* next = nullptr;       // next waiter for the same address
  Waiter* next_addr = nullptr;  // heads only: next address queue in the bucket
  Waiter* tail = nullptr;       // heads only: last waiter of this address queue
  bool ticket = false;          // the releaser handed the count over directly
  bool dequeued = false;        // set by the releaser that took it off the queue
  // When this waiter started waiting on a lock, while the mutex profile is on (else 0);
  // the releaser that wakes it records the wait (Go's sudog.acquiretime).
  std::int64_t acquire_time = 0;
};

struct alignas(base::kCacheLine) Bucket {
  Lock lock;
  Waiter* heads GORT_GUARDED_BY(lock) = nullptr;
  std::atomic<std::uint32_t> nwait{0};
};

constexpr std::size_t kBuckets = 251;
Bucket g_table[kBuckets];

Bucket& bucket_for(const void* addr) {
  return g_table[(reinterpret_cast<std::uintptr_t>(addr) >> 3) % kBuckets];
}

bool try_acquire(std::atomic<std::uint32_t>* addr) {
  std::uint32_t v = addr->load(std::memory_order_seq_cst);
  while (v > 0)
    if (addr->compare_exchange_weak(v, v - 1, std::memory_order_acquire)) return true;
  return false;
}

void enqueue(Bucket& b, Waiter* w, bool lifo) GORT_REQUIRES(b.lock) {
  Waiter** link = &b.heads;
  for (Waiter* h = b.heads; h != nullptr; link = &h->next_addr, h = h->next_addr) {
    if (h->addr != w->addr) continue;
    if (lifo) {  // w becomes the head
      w->next = h;
      w->tail = h->tail;
      w->next_addr = h->next_addr;
      *link = w;
    } else {
      w->next = nullptr;  // w may be re-queued after a lost race: clear its old link
      h->tail->next = w;
      h->tail = w;
    }
    return;
  }
  w->next = nullptr;
  w->tail = w;
  w->next_addr = b.heads;
  b.heads = w;
}

Waiter* dequeue(Bucket& b, const void* addr) GORT_REQUIRES(b.lock) {
  Waiter** link = &b.heads;
  for (Waiter* h = b.heads; h != nullptr; link = &h->next_addr, h = h->next_addr) {
    if (h->addr != addr) continue;
    if (Waiter* n = h->next) {
      n->tail = h->tail;
      n->next_addr = h->next_addr;
      *link = n;
    } else {
      *link = h->next_addr;
    }
    return h;
  }
  return nullptr;
}

// How long w waited for the lock (0 if not profiled). The waiters still queued behind it
// start counting now, so the same interval is never charged twice (as in Go).
std::int64_t contention_of(Waiter* w) {
  if (w->acquire_time == 0) return 0;
  const std::int64_t now = os::nanotime();
  for (Waiter* x = w->next; x != nullptr; x = x->next)
    if (x->acquire_time != 0) x->acquire_time = now;
  return now - w->acquire_time;
}

bool unlock_bucket(void* arg, G*) GORT_NO_THREAD_SAFETY_ANALYSIS {
  static_cast<Lock*>(arg)->unlock();
  return true;
}

}  // namespace

// Context: run() teardown, after every M stopped. Goroutines abandoned when main returned
// may still be queued here; their waiter records live on stacks about to be unmapped.
void sema_forget_goroutines() noexcept GORT_NO_THREAD_SAFETY_ANALYSIS {
  for (Bucket& b : g_table) {
    LockGuard l(b.lock);
    Waiter** link = &b.heads;
    while (Waiter* h = *link) {
      Waiter* const next_addr = h->next_addr;
      // Rebuild this address's queue without goroutine waiters.
      Waiter* keep_head = nullptr;
      Waiter* keep_tail = nullptr;
      std::uint32_t dropped = 0;
      for (Waiter* w = h; w != nullptr;) {
        Waiter* next = w->next;
        if (w->g != nullptr) {
          ++dropped;
        } else {
          w->next = nullptr;
          if (keep_tail != nullptr) {
            keep_tail->next = w;
          } else {
            keep_head = w;
          }
          keep_tail = w;
        }
        w = next;
      }
      b.nwait.fetch_sub(dropped, std::memory_order_relaxed);
      if (keep_head != nullptr) {
        keep_head->tail = keep_tail;
        keep_head->next_addr = next_addr;
        *link = keep_head;
        link = &keep_head->next_addr;
      } else {
        *link = next_addr;
      }
    }
  }
}

// The bucket lock is released on g0 by the park's commit step, which the thread-safety
// analysis cannot follow; the protocol is explained at the top of this file.
void sema_acquire(std::atomic<std::uint32_t>* addr, WaitReason why,
                  bool lifo) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (try_acquire(addr)) return;
  Bucket& b = bucket_for(addr);
  Waiter w;
  w.addr = addr;
  w.g = current_g();
  if (g_mutex_profile_fraction.load(std::memory_order_relaxed) > 0 && is_mutex_wait(why))
    w.acquire_time = os::nanotime();
  for (;;) {
    b.lock.lock();
    b.nwait.fetch_add(1, std::memory_order_seq_cst);
    if (try_acquire(addr)) {
      b.nwait.fetch_sub(1, std::memory_order_relaxed);
      b.lock.unlock();
      return;
    }
    w.ticket = false;
    w.dequeued = false;
    enqueue(b, &w, lifo);
    if (w.g != nullptr) {
      park(why, unlock_bucket, &b.lock);  // the commit step releases the bucket lock
    } else {
      w.note.clear();
      b.lock.unlock();
      w.note.sleep();
    }
    // Only the releaser that dequeued w wakes it. A wake from anywhere else (a stale
    // ready) would leave w's record queued on a stack about to be reused: stop here.
    if (!w.dequeued) base::fatal("runtime: sema waiter woken while still queued");
    if (w.ticket || try_acquire(addr)) return;
  }
}

void sema_release(std::atomic<std::uint32_t>* addr, bool handoff) {
  addr->fetch_add(1, std::memory_order_seq_cst);
  Bucket& b = bucket_for(addr);
  if (b.nwait.load(std::memory_order_seq_cst) == 0) return;
  b.lock.lock();
  if (b.nwait.load(std::memory_order_relaxed) == 0) {
    b.lock.unlock();
    return;
  }
  Waiter* w = dequeue(b, addr);
  if (w != nullptr) {
    b.nwait.fetch_sub(1, std::memory_order_relaxed);
    w->dequeued = true;
  }
  const std::int64_t waited = w != nullptr ? contention_of(w) : 0;
  b.lock.unlock();
  if (w == nullptr) return;
  if (waited > 0) mutex_event(waited, 1);  // skips sema_release: the stack starts at its caller
  const bool handed = handoff && try_acquire(addr);
  w->ticket = handed;
  // After the wake below, w (on the waiter's stack) may be gone: touch nothing of it.
  if (w->g != nullptr) {
    ready(w->g, true);
  } else {
    w->note.wakeup();
  }
  if (handed && current_g() != nullptr) gort::yield();  // let the waiter run now
}

}  // namespace gort::detail

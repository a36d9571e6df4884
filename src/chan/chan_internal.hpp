// Channel internals shared by chan.cpp and select.cpp. See chan.cpp for the design.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/annotations.hpp"
#include "base/cache.hpp"
#include "gort/detail/chan_core.hpp"
#include "gort/detail/sema.hpp"
#include "lockfree/chan_ring.hpp"
#include "os/os.hpp"
#include "runtime/lock.hpp"
#include "runtime/sched.hpp"

namespace gort::detail {

// Shared by all the waiters of one blocked select: the first waker to win `done` owns it.
struct SelectState {
  std::atomic<std::uint32_t> done{0};
  struct Sudog* winner = nullptr;  // set by the waker that won `done`, before waking
  os::Note note;                   // thread (non-goroutine) selects sleep here
};

// How a waiter's operation ended, set by the waker before it wakes the waiter.
enum class WaitResult : std::uint8_t {
  kClosed,  // the channel was closed: a receiver gets nothing, a sender panics
  kOk,      // done: the value was moved out of (send) or into (receive) elem
  kRetry,   // nothing done; run the operation again (lock-free buffered channels only)
};

// A goroutine (or thread) waiting on a channel: Go's sudog. Lives on the waiter's stack,
// which does not move while it waits.
struct Sudog {
  runtime::G* g = nullptr;  // null: a plain thread, sleeping on *note
  os::Note* note = nullptr;
  SelectState* sel = nullptr;  // non-null when waiting in a select
  void* elem = nullptr;        // the value to send, or storage to receive into
  std::size_t case_index = 0;
  WaitResult result = WaitResult::kClosed;
  bool queued = false;
  Sudog* next = nullptr;
  Sudog* prev = nullptr;
};

// FIFO of waiters (sendq or recvq). Guarded by the channel's lock, except that the head
// pointer is atomic so that the lock-free buffered path can ask has_waiters() without the
// lock (see chan.cpp, "Lock-free buffered channels"). Under the lock it is read and
// written relaxed: the lock orders those accesses.
class WaitQueue {
 public:
  void push(Sudog* s) {
    s->next = nullptr;
    s->prev = last_;
    if (last_ != nullptr) {
      last_->next = s;
    } else {
      first_.store(s, std::memory_order_relaxed);
    }
    last_ = s;
    s->queued = true;
  }
  // Unlinks s if it is still queued (a waker may have taken it already).
  void remove(Sudog* s) {
    if (!s->queued) return;
    if (s->prev != nullptr) {
      s->prev->next = s->next;
    } else {
      first_.store(s->next, std::memory_order_relaxed);
    }
    (s->next != nullptr ? s->next->prev : last_) = s->prev;
    s->next = s->prev = nullptr;
    s->queued = false;
  }
  // The first waiter that can still be completed. A select waiter whose select was
  // already won through another channel is dropped (Go's selectDone).
  Sudog* pop() {
    while (Sudog* s = first_.load(std::memory_order_relaxed)) {
      remove(s);
      if (s->sel != nullptr && !claim(s)) continue;
      return s;
    }
    return nullptr;
  }
  Sudog* front() const { return first_.load(std::memory_order_relaxed); }
  // Wins s's select for s. False: another case of that select has won already.
  static bool claim(Sudog* s) {
    if (s->sel->done.exchange(1, std::memory_order_acq_rel) != 0) return false;
    s->sel->winner = s;
    return true;
  }
  bool empty() const { return first_.load(std::memory_order_relaxed) == nullptr; }
  // Without the lock: seq_cst, the second half of a Dekker pair (chan.cpp).
  bool has_waiters() const { return first_.load() != nullptr; }

 private:
  std::atomic<Sudog*> first_{nullptr};
  Sudog* last_ = nullptr;
};

// Waiters taken off the queues under a channel's lock, to be woken after it is released
// (in FIFO order), chained through Sudog::next (free once a sudog is off its queue).
class WakeList {
 public:
  void add(Sudog* s) {
    s->next = nullptr;
    (last_ != nullptr ? last_->next : first_) = s;
    last_ = s;
  }
  bool empty() const { return first_ == nullptr; }
  // Wakes every waiter, except those of the calling goroutine's own operation (`self`
  // for a plain send or receive, or any sudog of select `self_sel`): they are not
  // parked. Context: any; no channel lock held.
  void wake_all(const Sudog* self = nullptr, const struct SelectState* self_sel = nullptr);

 private:
  Sudog* first_ = nullptr;
  Sudog* last_ = nullptr;
};

// How elements move (chosen once, from ElemOps): a fixed-size byte copy for the common
// small trivially copyable types, else through ElemOps.
enum class ElemCopy : std::uint8_t { kBytes8, kBytes4, kBytes16, kBytes, kOps };

// Laid out for the locked buffered fast path: the first cache line holds everything a
// send or receive that does not block reads or writes, lock included, so it moves between
// cores with the lock in one transfer. The wait queues (written only when goroutines
// block) and the reference count live on the second line, which the fast path only reads
// (the queue heads) and so stays shared between cores. A lock-free buffered channel
// (`ring`) reads only the second line and the ring.
class alignas(base::kCacheLine) ChanCore {
 public:
  ChanCore(const ElemOps* ops, std::size_t cap);
  ~ChanCore();

  // ---- first cache line
  mutable runtime::Lock lock;
  bool closed GORT_GUARDED_BY(lock) = false;
  const ElemCopy copy;
  std::size_t qcount GORT_GUARDED_BY(lock) = 0;
  std::size_t sendx GORT_GUARDED_BY(lock) = 0;
  std::size_t recvx GORT_GUARDED_BY(lock) = 0;
  const std::size_t cap;
  const std::size_t stride;
  unsigned char* buf = nullptr;  // set by the constructor, then constant
  const ElemOps* const ops;
  // ---- second cache line
  alignas(base::kCacheLine) WaitQueue recvq GORT_GUARDED_BY(lock);
  WaitQueue sendq GORT_GUARDED_BY(lock);
  std::atomic<long> refs{1};
  // Non-null (set by the constructor, then constant): a buffered channel of trivially
  // copyable elements, whose buffer is this lock-free ring instead of buf/qcount/sendx/
  // recvx/closed; see chan.cpp, "Lock-free buffered channels". On this line because its
  // fast path reads the ring and the queue heads, not the lock's line.
  lockfree::ChanRing* const ring;

  void* slot(std::size_t i) { return buf + i * stride; }
  // Move-constructs the element at src into raw storage dst (src is still to be destroyed).
  void move_elem(void* dst, void* src) const {
    switch (copy) {
      case ElemCopy::kBytes8:
        std::memcpy(dst, src, 8);
        return;
      case ElemCopy::kBytes4:
        std::memcpy(dst, src, 4);
        return;
      case ElemCopy::kBytes16:
        std::memcpy(dst, src, 16);
        return;
      case ElemCopy::kBytes:
        std::memcpy(dst, src, ops->size);
        return;
      case ElemCopy::kOps:
        break;
    }
    ops->move_construct(dst, src);
  }
  void destroy_elem(void* p) const {
    if (copy == ElemCopy::kOps) ops->destroy(p);
  }
  // The ring index after i (no division: this runs under the lock).
  std::size_t next_index(std::size_t i) const { return i + 1 == cap ? 0 : i + 1; }
};
static_assert(offsetof(ChanCore, ring) < 2 * base::kCacheLine);

// Operations that complete immediately; the caller holds c->lock and releases it after,
// then wakes the waiter involved (if any) with wake(). Inline: they run under the lock.
// Sends *elem to the waiting receiver r.
inline void send_to_waiter(ChanCore* c, Sudog* r, void* elem) GORT_REQUIRES(c->lock) {
  c->move_elem(r->elem, elem);
  r->result = WaitResult::kOk;
}
// Receives into out from the waiting sender s (through the full buffer when buffered).
inline void recv_from_waiter(ChanCore* c, Sudog* s, void* out) GORT_REQUIRES(c->lock) {
  if (c->cap == 0) {
    c->move_elem(out, s->elem);
  } else {
    // The buffer is full (a sender waits): take its head, append the sender's value.
    void* head = c->slot(c->recvx);
    c->move_elem(out, head);
    c->destroy_elem(head);
    c->move_elem(head, s->elem);
    c->recvx = c->next_index(c->recvx);
    c->sendx = c->recvx;
  }
  s->result = WaitResult::kOk;
}
inline void buffer_put(ChanCore* c, void* elem) GORT_REQUIRES(c->lock) {
  c->move_elem(c->slot(c->sendx), elem);
  c->sendx = c->next_index(c->sendx);
  ++c->qcount;
}
inline void buffer_take(ChanCore* c, void* out) GORT_REQUIRES(c->lock) {
  void* head = c->slot(c->recvx);
  c->move_elem(out, head);
  c->destroy_elem(head);
  c->recvx = c->next_index(c->recvx);
  --c->qcount;
}
// Wakes a waiter taken off a queue. Context: any; no channel lock held.
void wake(Sudog* s);

// Lock-free buffered channels (c->ring non-null; chan.cpp).
// Serves queued waiters from the ring, and fails receivers once it is closed and drained,
// until neither queue can move; the waiters served go on wl.
void ring_pump(ChanCore* c, WakeList& wl) GORT_REQUIRES(c->lock);
// After a lock-free push (pop): if receivers (senders) wait, takes the lock and pumps.
// Context: any; c->lock not held.
void ring_after_push(ChanCore* c);
void ring_after_pop(ChanCore* c);
// Blocks the caller forever (nil channel, empty select).
[[noreturn]] void block_forever(WaitReason why);

}  // namespace gort::detail

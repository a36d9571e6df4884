// Channel internals shared by chan.cpp and select.cpp. See chan.cpp for the design.
#pragma once

#include <atomic>
#include <cstddef>

#include "base/annotations.hpp"
#include "gort/detail/chan_core.hpp"
#include "gort/detail/sema.hpp"
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

// A goroutine (or thread) waiting on a channel: Go's sudog. Lives on the waiter's stack,
// which does not move while it waits.
struct Sudog {
  runtime::G* g = nullptr;  // null: a plain thread, sleeping on *note
  os::Note* note = nullptr;
  SelectState* sel = nullptr;  // non-null when waiting in a select
  void* elem = nullptr;        // the value to send, or storage to receive into
  std::size_t case_index = 0;
  bool success = false;  // true: the operation happened; false: channel closed
  bool queued = false;
  Sudog* next = nullptr;
  Sudog* prev = nullptr;
};

// FIFO of waiters (sendq or recvq). Guarded by the channel's lock.
class WaitQueue {
 public:
  void push(Sudog* s) {
    s->next = nullptr;
    s->prev = last_;
    if (last_ != nullptr) {
      last_->next = s;
    } else {
      first_ = s;
    }
    last_ = s;
    s->queued = true;
  }
  // Unlinks s if it is still queued (a waker may have taken it already).
  void remove(Sudog* s) {
    if (!s->queued) return;
    (s->prev != nullptr ? s->prev->next : first_) = s->next;
    (s->next != nullptr ? s->next->prev : last_) = s->prev;
    s->next = s->prev = nullptr;
    s->queued = false;
  }
  // The first waiter that can still be completed. A select waiter whose select was
  // already won through another channel is dropped (Go's selectDone).
  Sudog* pop() {
    while (Sudog* s = first_) {
      remove(s);
      if (s->sel != nullptr) {
        if (s->sel->done.exchange(1, std::memory_order_acq_rel) != 0) continue;
        s->sel->winner = s;
      }
      return s;
    }
    return nullptr;
  }
  bool empty() const { return first_ == nullptr; }

 private:
  Sudog* first_ = nullptr;
  Sudog* last_ = nullptr;
};

class ChanCore {
 public:
  ChanCore(const ElemOps* ops, std::size_t cap);
  ~ChanCore();

  const ElemOps* ops;
  const std::size_t cap;
  const std::size_t stride;
  unsigned char* buf = nullptr;
  mutable runtime::Lock lock;
  std::size_t qcount GORT_GUARDED_BY(lock) = 0;
  std::size_t sendx GORT_GUARDED_BY(lock) = 0;
  std::size_t recvx GORT_GUARDED_BY(lock) = 0;
  bool closed GORT_GUARDED_BY(lock) = false;
  WaitQueue recvq GORT_GUARDED_BY(lock);
  WaitQueue sendq GORT_GUARDED_BY(lock);
  std::atomic<long> refs{1};

  void* slot(std::size_t i) { return buf + i * stride; }
};

// Operations that complete immediately; the caller holds c->lock and releases it after,
// then wakes the waiter involved (if any) with wake().
// Sends *elem to the waiting receiver r.
void send_to_waiter(ChanCore* c, Sudog* r, void* elem) GORT_REQUIRES(c->lock);
// Receives into out from the waiting sender s (through the full buffer when buffered).
void recv_from_waiter(ChanCore* c, Sudog* s, void* out) GORT_REQUIRES(c->lock);
void buffer_put(ChanCore* c, void* elem) GORT_REQUIRES(c->lock);
void buffer_take(ChanCore* c, void* out) GORT_REQUIRES(c->lock);
// Wakes a waiter taken off a queue. Context: any; no channel lock held.
void wake(Sudog* s);
// Blocks the caller forever (nil channel, empty select).
[[noreturn]] void block_forever(WaitReason why);

}  // namespace gort::detail

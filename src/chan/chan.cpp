// Channels, after Go's runtime/chan.go.
//
// A channel is a lock, an optional ring buffer of `cap` elements, and two FIFO queues of
// waiters (sudogs): receivers blocked on an empty channel, senders blocked on a full one.
// Every operation takes the lock, and:
//   send: closed -> panic; a receiver waits -> hand the value straight to it (no copy
//         through the buffer); room in the buffer -> enqueue; else queue up and park.
//   recv: a sender waits -> take its value (for a buffered channel, which is then full:
//         take the head and put the sender's value at the tail, keeping FIFO order);
//         buffer not empty -> dequeue; closed -> (nothing, false); else queue up and park.
//   close: mark closed and wake every waiter; senders then panic, receivers get nothing.
// A parking goroutine releases the channel lock in its park commit step, on g0, after it
// is off its stack: so a waker that dequeues its sudog (under the lock) always finds it
// fully parked. The waker completes the operation on the waiter's behalf (moving the value
// into or out of the waiter's stack) before waking it.
//
// Elements are type-erased through ElemOps (move-construct, destroy), so T may be
// move-only and need not be default-constructible. Values are moved, never copied: a
// blocked sender's value is moved directly from its stack into the receiver's storage.
// For a trivially copyable T, a move is a byte copy and destruction is a no-op, so the
// channel copies the bytes inline (ChanCore::move_elem) instead of calling through
// ElemOps: the lock is held for less time.
//
// Contention. The buffered fast path (lock, copy one element, unlock) is what producers
// and consumers on different Ps fight over; its cost is the cache-line transfers of the
// lock word. So ChanCore keeps everything that path writes or reads on the lock's cache
// line (see its layout), and the ring index wraps without a division.
//
// Lifetime: Chan<T> handles are reference-counted; a goroutine blocked in send/recv/select
// holds a handle, so a channel outlives its waiters. The last release destroys the
// elements still buffered.
#include <algorithm>
#include <new>

#include "base/fatal.hpp"
#include "chan/chan_internal.hpp"
#include "gort/runtime.hpp"

namespace gort::detail {

using runtime::LockGuard;

namespace {
std::size_t round_up(std::size_t n, std::size_t a) {
  return (n + a - 1) / a * a;
}
std::size_t buffer_align(const ElemOps* ops) {
  return std::max(ops->align, alignof(std::max_align_t));
}

bool unlock_chan(void* arg, runtime::G*) GORT_NO_THREAD_SAFETY_ANALYSIS {
  static_cast<runtime::Lock*>(arg)->unlock();
  return true;
}

// Queues s (already filled in) and blocks until a waker completes it. Releases c->lock.
void wait_on(ChanCore* c, Sudog* s, WaitReason why) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (s->g != nullptr) {
    runtime::park(why, unlock_chan, &c->lock);
  } else {
    c->lock.unlock();
    s->note->sleep();
  }
}
}  // namespace

namespace {
ElemCopy elem_copy(const ElemOps* ops) {
  if (!ops->trivial) return ElemCopy::kOps;
  switch (ops->size) {
    case 8:
      return ElemCopy::kBytes8;
    case 4:
      return ElemCopy::kBytes4;
    case 16:
      return ElemCopy::kBytes16;
    default:
      return ElemCopy::kBytes;
  }
}
}  // namespace

ChanCore::ChanCore(const ElemOps* o, std::size_t capacity)
    : copy(elem_copy(o)), cap(capacity), stride(round_up(o->size, o->align)), ops(o) {
  if (cap > 0) {
    buf = static_cast<unsigned char*>(
        ::operator new(cap* stride, std::align_val_t(buffer_align(ops))));
  }
}

ChanCore::~ChanCore() GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (copy == ElemCopy::kOps) {
    for (std::size_t i = 0; i < qcount; ++i) ops->destroy(slot((recvx + i) % cap));
  }
  if (buf != nullptr) ::operator delete(buf, std::align_val_t(buffer_align(ops)));
}

void wake(Sudog* s) {
  if (s->g != nullptr) {
    runtime::ready(s->g, true);
  } else {
    s->note->wakeup();  // after this, s (on the waiter's stack) may be gone
  }
}

void block_forever(WaitReason why) {
  if (runtime::current_g() != nullptr) {
    runtime::park(why, nullptr, nullptr);
    base::fatal("runtime: goroutine blocked forever was woken");
  }
  os::Note never;
  never.sleep();
  base::fatal("runtime: thread blocked forever was woken");
}

ChanCore* chan_make(const ElemOps* ops, std::size_t cap) {
  return new ChanCore(ops, cap);
}

void chan_retain(ChanCore* c) noexcept {
  c->refs.fetch_add(1, std::memory_order_relaxed);
}

void chan_release(ChanCore* c) noexcept {
  // acq_rel: the last owner must see every element the others buffered before deleting.
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;
}

// chan_send and chan_recv hand the channel lock to wait_on(), which releases it in the park
// commit step: beyond what -Wthread-safety can follow.
void chan_send(ChanCore* c, void* elem) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (c == nullptr) block_forever(WaitReason::kChanSendNilChan);
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    throw Panic("send on closed channel");
  }
  if (Sudog* r = c->recvq.pop()) {
    send_to_waiter(c, r, elem);
    c->lock.unlock();
    wake(r);
    return;
  }
  if (c->qcount < c->cap) {
    buffer_put(c, elem);
    c->lock.unlock();
    return;
  }
  os::Note note;
  Sudog s;
  s.g = runtime::current_g();
  s.note = &note;
  s.elem = elem;
  c->sendq.push(&s);
  wait_on(c, &s, WaitReason::kChanSend);
  if (!s.success) throw Panic("send on closed channel");
}

bool chan_recv(ChanCore* c, void* out) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (c == nullptr) block_forever(WaitReason::kChanReceiveNilChan);
  c->lock.lock();
  if (Sudog* s = c->sendq.pop()) {
    recv_from_waiter(c, s, out);
    c->lock.unlock();
    wake(s);
    return true;
  }
  if (c->qcount > 0) {
    buffer_take(c, out);
    c->lock.unlock();
    return true;
  }
  if (c->closed) {
    c->lock.unlock();
    return false;
  }
  os::Note note;
  Sudog r;
  r.g = runtime::current_g();
  r.note = &note;
  r.elem = out;
  c->recvq.push(&r);
  wait_on(c, &r, WaitReason::kChanReceive);
  return r.success;
}

void chan_close(ChanCore* c) {
  if (c == nullptr) throw Panic("close of nil channel");
  Sudog* wake_list = nullptr;
  {
    LockGuard l(c->lock);
    if (c->closed) throw Panic("close of closed channel");
    c->closed = true;
    // Every waiter fails: receivers get nothing, senders panic. Chain them through `next`
    // (free once popped) and wake them after unlocking.
    for (WaitQueue* q : {&c->recvq, &c->sendq}) {
      while (Sudog* s = q->pop()) {
        s->success = false;
        s->next = wake_list;
        wake_list = s;
      }
    }
  }
  while (wake_list != nullptr) {
    Sudog* s = wake_list;
    wake_list = s->next;  // read before waking: s may vanish
    wake(s);
  }
}

std::size_t chan_len(const ChanCore* c) noexcept {
  if (c == nullptr) return 0;
  LockGuard l(c->lock);
  return c->qcount;
}

std::size_t chan_cap(const ChanCore* c) noexcept {
  return c != nullptr ? c->cap : 0;
}

}  // namespace gort::detail

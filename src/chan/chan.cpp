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
// Lock-free buffered channels. A buffered channel of trivially copyable elements (the
// common case: ints, pointers, small structs) keeps its buffer in a lockfree::ChanRing
// (src/lockfree/chan_ring.hpp), so a send or receive that does not block takes no lock:
// it claims a ring position by CAS and copies the bytes. The lock and the wait queues
// remain for goroutines that must block. Everything else (unbuffered channels, elements
// with move constructors or destructors, whose user code must not run between a ring
// claim and its publication) keeps the locked buffer above.
//   send: try_push; done -> if receivers wait, pump (below). Closed -> panic. Full ->
//         lock, queue up, pump, park unless served (or unless the pump served others:
//         then withdraw, wake them, and start over).
//   recv: try_pop; done -> if senders wait, pump. Closed and drained -> nothing. Empty ->
//         lock, queue up, pump, park unless served (likewise).
//   close: lock, set the ring's closed bit (no send is claimed after it), pump.
//   pump (under the lock): while the head receiver can be served, move the head item into
//         its storage (or, once closed and drained, fail it) and dequeue it; while the
//         head sender can be served, push its value (or, once closed, fail it) and dequeue
//         it; repeat until neither queue moves. Waiters are served in FIFO order, and a
//         waiter served by a pump is done (kOk or kClosed), as with Go's direct hand-off. A
//         plain waiter is served by trying the ring operation in its place (it stays
//         queued if that finds the ring empty/full). A select waiter must first be
//         claimed, which cannot be undone: the pump claims it only when the ring's
//         positions say it can be served, and if a fast-path operation takes that item
//         (room) in between, the select is woken with kRetry and runs again.
// No lost wake-ups. Invariant: a goroutine parks in recvq (sendq) only after its own pump,
// run after it was queued, found the ring with no item (no room), and every ring change
// after that pump is followed by a pump. That is Dekker's pattern between the waiter
// (store: queue head, via push; seq_cst fence; loads: the ring's positions in the pump)
// and the fast path (the seq_cst CAS that claims its position; then the seq_cst load of
// the opposite queue head in has_waiters()): either the fast path sees the waiter and
// pumps, or the waiter's pump sees the fast path's claim. A position claimed but not yet
// published counts as an item (room) for the pump, whose attempt then waits for the
// publication (chan_ring.hpp, "In-flight steps" and "Blocking"); a pump that finds the ring
// closed and drained fails the remaining receivers, and a sender claimed before close
// publishes and then pumps, so receivers waiting at close get every item sent before it.
// Pumping under the lock also keeps the queues consistent with select, which holds the
// locks of all its channels while it queues its sudogs (select.cpp).
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
    : copy(elem_copy(o)),
      cap(capacity),
      stride(round_up(o->size, o->align)),
      ops(o),
      ring(capacity > 0 && o->trivial ? new lockfree::ChanRing(capacity, o->size, o->align)
                                      : nullptr) {
  if (cap > 0 && ring == nullptr) {
    buf = static_cast<unsigned char*>(
        ::operator new(cap* stride, std::align_val_t(buffer_align(ops))));
  }
}

ChanCore::~ChanCore() GORT_NO_THREAD_SAFETY_ANALYSIS {
  delete ring;  // trivially copyable elements: nothing to destroy
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

void WakeList::wake_all(const Sudog* self, const SelectState* self_sel) {
  Sudog* s = first_;
  first_ = last_ = nullptr;
  while (s != nullptr) {
    Sudog* next = s->next;  // read before waking: s may vanish
    if (s != self && (self_sel == nullptr || s->sel != self_sel)) wake(s);
    s = next;
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

// ---- Lock-free buffered channels (see the top of this file).

using lockfree::RingStatus;

namespace {
WaitResult result_of(RingStatus st) {
  switch (st) {
    case RingStatus::kOk:
      return WaitResult::kOk;
    case RingStatus::kClosed:
      return WaitResult::kClosed;
    case RingStatus::kBlock:
      break;
  }
  return WaitResult::kRetry;  // the item (room) the pump saw was taken by a fast path
}

void pump_locked(ChanCore* c) {
  WakeList wl;
  {
    LockGuard l(c->lock);
    ring_pump(c, wl);
  }
  wl.wake_all();
}

// The slow path of ring_send/ring_recv: queue s on q, pump, and park unless the pump
// served s or anyone else. Returns with s->result set (kRetry: run the operation again).
void ring_wait(ChanCore* c, WaitQueue& q, Sudog* s, WaitReason why) GORT_NO_THREAD_SAFETY_ANALYSIS {
  WakeList wl;
  s->result = WaitResult::kRetry;
  c->lock.lock();
  q.push(s);
  // Dekker: the queue head store above before the pump's loads of the ring's positions
  // (pairs with the fast path's seq_cst position CAS and has_waiters() load).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ring_pump(c, wl);
  if (s->queued && wl.empty()) {
    wait_on(c, s, why);  // releases the lock once parked; a pump serves s
    return;
  }
  // Our own pump served s, or only others: then do not park (they must be woken first,
  // and the lock released to wake them); withdraw and run the operation again.
  q.remove(s);
  c->lock.unlock();
  wl.wake_all(s);
}

void ring_send(ChanCore* c, void* elem) {
  lockfree::ChanRing& r = *c->ring;
  for (;;) {
    const RingStatus st = r.try_push(elem);
    if (st == RingStatus::kOk) {
      ring_after_push(c);
      return;
    }
    if (st == RingStatus::kClosed) throw Panic("send on closed channel");
    os::Note note;
    Sudog s;
    s.g = runtime::current_g();
    s.note = &note;
    s.elem = elem;
    ring_wait(c, c->sendq, &s, WaitReason::kChanSend);
    if (s.result == WaitResult::kOk) return;
    if (s.result == WaitResult::kClosed) throw Panic("send on closed channel");
  }
}

bool ring_recv(ChanCore* c, void* out) {
  lockfree::ChanRing& r = *c->ring;
  for (;;) {
    const RingStatus st = r.try_pop(out);
    if (st == RingStatus::kOk) {
      ring_after_pop(c);
      return true;
    }
    if (st == RingStatus::kClosed) return false;
    os::Note note;
    Sudog s;
    s.g = runtime::current_g();
    s.note = &note;
    s.elem = out;
    ring_wait(c, c->recvq, &s, WaitReason::kChanReceive);
    if (s.result == WaitResult::kOk) return true;
    if (s.result == WaitResult::kClosed) return false;
  }
}
}  // namespace

void ring_pump(ChanCore* c, WakeList& wl) {
  lockfree::ChanRing& r = *c->ring;
  for (bool moved = true; moved;) {
    moved = false;
    while (Sudog* w = c->recvq.front()) {
      RingStatus st;
      if (w->sel == nullptr) {
        // A plain waiter is tried in place and leaves the queue only when served, so the
        // queue never looks empty to has_waiters() while it waits.
        st = r.try_pop(w->elem);
        if (st == RingStatus::kBlock) break;
        c->recvq.remove(w);
      } else {
        // A select's waiter must be claimed before its case runs; if a fast path takes
        // the item first, the select runs again (kRetry).
        if (!r.has_item() && !r.closed_and_drained()) break;
        c->recvq.remove(w);
        if (!WaitQueue::claim(w)) continue;  // won through another channel
        st = r.try_pop(w->elem);
      }
      w->result = result_of(st);
      wl.add(w);
      moved = true;
    }
    while (Sudog* w = c->sendq.front()) {
      RingStatus st;
      if (w->sel == nullptr) {
        st = r.try_push(w->elem);
        if (st == RingStatus::kBlock) break;
        c->sendq.remove(w);
      } else {
        if (!r.has_room() && !r.closed()) break;
        c->sendq.remove(w);
        if (!WaitQueue::claim(w)) continue;
        st = r.try_push(w->elem);
      }
      w->result = result_of(st);
      wl.add(w);
      moved = true;
    }
  }
}

// Without the lock, the queue heads are read only through has_waiters() (atomic).
void ring_after_push(ChanCore* c) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (c->recvq.has_waiters()) pump_locked(c);
}

void ring_after_pop(ChanCore* c) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (c->sendq.has_waiters()) pump_locked(c);
}

// chan_send and chan_recv hand the channel lock to wait_on(), which releases it in the park
// commit step: beyond what -Wthread-safety can follow.
void chan_send(ChanCore* c, void* elem) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (c == nullptr) block_forever(WaitReason::kChanSendNilChan);
  if (c->ring != nullptr) return ring_send(c, elem);
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
  if (s.result != WaitResult::kOk) throw Panic("send on closed channel");
}

bool chan_recv(ChanCore* c, void* out) GORT_NO_THREAD_SAFETY_ANALYSIS {
  if (c == nullptr) block_forever(WaitReason::kChanReceiveNilChan);
  if (c->ring != nullptr) return ring_recv(c, out);
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
  return r.result == WaitResult::kOk;
}

void chan_close(ChanCore* c) {
  if (c == nullptr) throw Panic("close of nil channel");
  if (c->ring != nullptr) {
    WakeList wl;
    {
      LockGuard l(c->lock);
      if (!c->ring->close()) throw Panic("close of closed channel");
      ring_pump(c, wl);  // fails every sender; receivers get what is left, then nothing
    }
    wl.wake_all();
    return;
  }
  Sudog* wake_list = nullptr;
  {
    LockGuard l(c->lock);
    if (c->closed) throw Panic("close of closed channel");
    c->closed = true;
    // Every waiter fails: receivers get nothing, senders panic. Chain them through `next`
    // (free once popped) and wake them after unlocking.
    for (WaitQueue* q : {&c->recvq, &c->sendq}) {
      while (Sudog* s = q->pop()) {
        s->result = WaitResult::kClosed;
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
  if (c->ring != nullptr) return c->ring->len();
  LockGuard l(c->lock);
  return c->qcount;
}

std::size_t chan_cap(const ChanCore* c) noexcept {
  return c != nullptr ? c->cap : 0;
}

}  // namespace gort::detail

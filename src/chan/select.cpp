// select, after Go's runtime/select.go (selectgo).
//
//   1. Poll order: the non-nil cases in a uniformly random permutation, so that among
//      ready cases each is equally likely to run.
//   2. Lock order: the distinct channels sorted by address. Every select locks in this
//      global order, so two selects over the same channels in opposite orders cannot
//      deadlock.
//   3. Pass 1, all channels locked: run the first ready case in poll order.
//   4. None ready: return the default if there is one. Else queue one sudog per case, all
//      sharing a SelectState, and park; the commit step unlocks the channels.
//   5. A waker (send, recv or close on one of the channels) pops one of our sudogs; the
//      WaitQueue::pop protocol lets exactly one waker win `done` and record the winner;
//      losers' sudogs are dropped by whoever meets them.
//   6. Woken: lock all channels again, unlink the other sudogs, unlock, report the winner.
//
// Lock-free buffered channels (chan.cpp) need two more steps. In pass 1 their cases try
// the ring (the locks held do not stop fast-path operations of others), and a case that
// moves an item pumps that channel's queues. After queueing (step 4), the select pumps
// each of them itself, with our sudogs queued: the waiter's half of the lost-wake-up
// protocol in chan.cpp. If that pump served one of our sudogs, or anyone else, the select
// does not park: it withdraws its sudogs, wakes the others, and reports the case served
// or starts over. A waker may also complete a case with kRetry (nothing moved): the
// select then starts over, as after a spurious wake-up.
//
// The sudogs and both orders live in this function's frame on the goroutine's stack. The
// park commit reads them while unlocking; a waker may already have readied the goroutine
// by then, but the goroutine's first step after waking is to lock all channels again,
// which waits for the commit to finish, so the frame is not touched meanwhile.
#include <memory>
#include <vector>

#include "base/rand.hpp"
#include "chan/chan_internal.hpp"
#include "gort/runtime.hpp"

namespace gort::detail {

namespace {

// Small selects (the common case) keep their bookkeeping on the stack.
constexpr std::size_t kInlineCases = 8;

template <class T>
class SmallArray {
 public:
  explicit SmallArray(std::size_t n) {
    if (n > kInlineCases) {
      heap_.reset(new T[n]);
      data_ = heap_.get();
    }
  }
  T& operator[](std::size_t i) { return data_[i]; }
  T* data() { return data_; }

 private:
  T inline_[kInlineCases];
  std::unique_ptr<T[]> heap_;
  T* data_ = inline_;
};

std::uint32_t random_below(std::uint32_t n) {
  if (runtime::M* m = runtime::current_m()) return m->rand.below(n);
  thread_local base::FastRand rand(reinterpret_cast<std::uintptr_t>(&rand) ^
                                   static_cast<std::uint64_t>(os::nanotime()));
  return rand.below(n);
}

struct Locked {
  SelectCase* cases;
  std::size_t* lockorder;
  std::size_t n;
};

void lock_all(const Locked& l) GORT_NO_THREAD_SAFETY_ANALYSIS {
  ChanCore* last = nullptr;
  for (std::size_t k = 0; k < l.n; ++k) {
    ChanCore* c = l.cases[l.lockorder[k]].chan;
    if (c != last) c->lock.lock();
    last = c;
  }
}

// Go's selunlock. As the park commit, this runs on g0 while the goroutine may already have
// been readied through a channel unlocked here: nothing of the goroutine's frame may be
// read after the last unlock. A channel is released only on moving past its last case
// (the woken goroutine then blocks relocking a channel still held), and the final release
// comes after every read.
void unlock_all(const Locked& l) GORT_NO_THREAD_SAFETY_ANALYSIS {
  ChanCore* last = nullptr;
  for (std::size_t k = 0; k < l.n; ++k) {
    ChanCore* c = l.cases[l.lockorder[k]].chan;
    if (c != last && last != nullptr) last->lock.unlock();
    last = c;
  }
  if (last != nullptr) last->lock.unlock();  // touch nothing after this
}

bool unlock_all_commit(void* arg, runtime::G*) {
  unlock_all(*static_cast<Locked*>(arg));
  return true;
}

// Pumps each lock-free buffered channel of the select once; all of them are locked
// (lock_all), which the thread-safety analysis cannot follow.
void pump_rings(const Locked& l, WakeList& wl) GORT_NO_THREAD_SAFETY_ANALYSIS {
  ChanCore* last = nullptr;
  for (std::size_t k = 0; k < l.n; ++k) {
    ChanCore* c = l.cases[l.lockorder[k]].chan;
    if (c != last && c->ring != nullptr) ring_pump(c, wl);
    last = c;
  }
}

// Pass 1 for a case on a lock-free buffered channel (c->lock held).
bool try_ring_case(SelectCase& sc, bool* recv_ok, WakeList& wl) GORT_NO_THREAD_SAFETY_ANALYSIS {
  ChanCore* c = sc.chan;
  using lockfree::RingStatus;
  if (sc.is_send) {
    switch (c->ring->try_push(sc.elem)) {
      case RingStatus::kOk:
        ring_pump(c, wl);
        return true;
      case RingStatus::kClosed:
        throw Panic("send on closed channel");  // caller unlocks (see below)
      case RingStatus::kBlock:
        break;
    }
    return false;
  }
  switch (c->ring->try_pop(sc.elem)) {
    case RingStatus::kOk:
      *recv_ok = true;
      ring_pump(c, wl);
      return true;
    case RingStatus::kClosed:
      *recv_ok = false;
      return true;
    case RingStatus::kBlock:
      break;
  }
  return false;
}

// Pass 1 for one case. Returns true if it ran; waiters to wake afterwards go on wl.
bool try_case(SelectCase& sc, bool* recv_ok, WakeList& wl) GORT_NO_THREAD_SAFETY_ANALYSIS {
  ChanCore* c = sc.chan;
  if (c->ring != nullptr) return try_ring_case(sc, recv_ok, wl);
  if (sc.is_send) {
    if (c->closed) throw Panic("send on closed channel");  // caller unlocks (see below)
    if (Sudog* r = c->recvq.pop()) {
      send_to_waiter(c, r, sc.elem);
      wl.add(r);
      return true;
    }
    if (c->qcount < c->cap) {
      buffer_put(c, sc.elem);
      return true;
    }
    return false;
  }
  if (Sudog* s = c->sendq.pop()) {
    recv_from_waiter(c, s, sc.elem);
    wl.add(s);
    *recv_ok = true;
    return true;
  }
  if (c->qcount > 0) {
    buffer_take(c, sc.elem);
    *recv_ok = true;
    return true;
  }
  if (c->closed) {
    *recv_ok = false;
    return true;
  }
  return false;
}

}  // namespace

std::size_t select_run(SelectCase* cases, std::size_t n, bool has_default, bool* recv_ok) {
  // Poll order: the non-nil cases, shuffled (Fisher-Yates).
  SmallArray<std::size_t> pollorder(n), lockorder(n);
  std::size_t live = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (cases[i].chan == nullptr) continue;
    const std::size_t j = random_below(static_cast<std::uint32_t>(live + 1));
    pollorder[live] = pollorder[j];
    pollorder[j] = i;
    ++live;
  }
  if (live == 0) {
    if (has_default) return n;
    block_forever(n == 0 ? WaitReason::kSelectNoCases : WaitReason::kSelect);
  }
  // Lock order starts from the shuffled poll order and is sorted stably: cases on the same
  // channel keep a random relative order, which decides which of them a waker completes
  // when the select blocks (their sudogs are queued in lock order), as in Go.
  // (Insertion sort: stable, in place, no allocation; selects have few cases.)
  for (std::size_t k = 0; k < live; ++k) {
    const std::size_t i = pollorder[k];
    std::size_t j = k;
    for (; j > 0 && cases[lockorder[j - 1]].chan > cases[i].chan; --j)
      lockorder[j] = lockorder[j - 1];
    lockorder[j] = i;
  }
  Locked locked{cases, lockorder.data(), live};
  bool any_ring = false;
  for (std::size_t k = 0; k < live; ++k) any_ring |= cases[pollorder[k]].chan->ring != nullptr;

  for (;;) {  // once, unless a lock-free buffered channel asks for another round
    lock_all(locked);
    for (std::size_t k = 0; k < live; ++k) {
      const std::size_t i = pollorder[k];
      WakeList wl;
      bool ran;
      try {
        ran = try_case(cases[i], recv_ok, wl);
      } catch (...) {
        unlock_all(locked);
        throw;
      }
      if (ran) {
        unlock_all(locked);
        wl.wake_all();
        return i;
      }
    }
    if (has_default) {
      unlock_all(locked);
      return n;
    }

    // Nothing ready: wait on every channel at once.
    SelectState state;
    SmallArray<Sudog> sudogs(n);
    runtime::G* self = runtime::current_g();
    for (std::size_t k = 0; k < live; ++k) {
      const std::size_t i = lockorder[k];
      Sudog& s = sudogs[i];
      s.g = self;
      s.note = &state.note;
      s.sel = &state;
      s.elem = cases[i].elem;
      s.case_index = i;
      (cases[i].is_send ? cases[i].chan->sendq : cases[i].chan->recvq).push(&s);
    }
    bool parked = true;
    if (any_ring) {
      // The waiter's half of chan.cpp's protocol: queued, then look at the rings again.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      WakeList wl;
      pump_rings(locked, wl);
      // Nobody else can have claimed the select: every waker pops under a lock we hold.
      if (state.done.load(std::memory_order_relaxed) != 0 || !wl.empty()) {
        parked = false;
        for (std::size_t k = 0; k < live; ++k) {
          const std::size_t i = lockorder[k];
          (cases[i].is_send ? cases[i].chan->sendq : cases[i].chan->recvq).remove(&sudogs[i]);
        }
        unlock_all(locked);
        wl.wake_all(nullptr, &state);
        if (state.winner == nullptr) continue;  // served others only: start over
      }
    }
    if (parked) {
      if (self != nullptr) {
        runtime::park(WaitReason::kSelect, unlock_all_commit, &locked);
      } else {
        unlock_all(locked);
        state.note.sleep();
      }
      lock_all(locked);
      for (std::size_t k = 0; k < live; ++k) {
        const std::size_t i = lockorder[k];
        if (&sudogs[i] == state.winner) continue;
        (cases[i].is_send ? cases[i].chan->sendq : cases[i].chan->recvq).remove(&sudogs[i]);
      }
      unlock_all(locked);
    }
    const Sudog* winner = state.winner;
    if (winner->result == WaitResult::kRetry) continue;
    const std::size_t i = winner->case_index;
    if (cases[i].is_send) {
      if (winner->result != WaitResult::kOk) throw Panic("send on closed channel");
    } else {
      *recv_ok = winner->result == WaitResult::kOk;
    }
    return i;
  }
}

}  // namespace gort::detail

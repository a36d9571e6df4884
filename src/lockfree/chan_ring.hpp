// ChanRing: the buffer of a buffered channel whose elements are trivially copyable, as a
// bounded multi-producer, multi-consumer ring that sends and receives claim slots of
// without a lock. src/chan/chan.cpp builds the channel around it (the locked slow path,
// wait queues, close); this file is only the ring.
//
// Why. A buffered channel guarded by one lock makes every send and every receive move
// the lock's cache line to its core: with a producer and a consumer on two cores, each
// item costs two transfers of one contended line, and profiles of the 1x1 and 4x4
// buffered benchmarks put most of the time there. Here senders claim slots by a CAS on
// `sendpos_` and receivers by a CAS on `recvpos_`, two words on separate lines, and the
// data moves through per-slot lines that the two sides touch at different times while
// the buffer is neither empty nor full. (The shape is the well-known bounded MPMC queue
// with a sequence number per slot; Vyukov's proposal for lock-free Go channels made the
// same split between a lock-free buffer and locked blocking.)
//
// Positions. A position names a slot and a lap: pos = lap * kLap + index, index < cap,
// kLap = the power of two above cap (so stepping never divides: next() bumps the index
// or moves to index 0 of the next lap). Positions only grow; sendpos_ is the next
// position a sender claims, recvpos_ the next a receiver claims, and the ring holds the
// items at positions [recvpos_, sendpos_). The top bit of sendpos_ is the closed flag:
// closing is one fetch_or, and a sender's claim (a CAS on the whole word) fails once it
// is set, so no send can be claimed after close.
//
// Slot sequence numbers. Slot i starts with seq = i. For position p in slot i:
//   seq == p         free: the sender of p may claim it (CAS sendpos_ p -> next(p)),
//                    copy the element in, then publish seq = p + 1;
//   seq == p + 1     published: the receiver of p may claim it (CAS recvpos_), copy the
//                    element out, then free it for the next lap: seq = p + kLap;
//   seq <  p         still holds (or is still being emptied of) the previous lap's item.
// kLap > cap keeps the three apart even for cap = 1.
//
// In-flight steps. Between its CAS and its seq store a sender (receiver) has claimed a
// position whose element is not yet in (out of) the slot. An operation that needs that
// slot waits for the store instead of reporting empty (full): "empty" is decided only
// when sendpos_ == recvpos_, and "full" only when recvpos_ has not passed the slot's
// previous item. So every outcome, including the would-block ones a non-blocking select
// reports, is what a locked buffer would say at one instant between the operation's
// loads (the ring is linearizable; a plain Vyukov queue says "empty" while an earlier
// claim is in flight, even after a later send has returned). The wait is short: the
// claim-to-publish step copies bytes and runs no user code and no scheduling point
// (goroutines are never switched asynchronously), so it only lasts longer if the OS
// deschedules that thread; the waiter then yields its thread.
//
// Blocking. try_push/try_pop never block: kBlock means full/empty, and the channel then
// queues the goroutine under its lock. Against lost wake-ups the channel uses Dekker's
// pattern: a waiter publishes itself in a wait queue, then (seq_cst fence) re-reads the
// positions through the peeks below; a sender (receiver) claims its position with a
// seq_cst CAS, then reads the opposite wait queue (seq_cst). Either the claimer sees the
// waiter, or the waiter's peek sees the claim. The peeks therefore judge by positions
// alone (has_item, has_room, closed_and_drained, seq_cst loads): a claim counts as soon
// as it is made, and an operation the channel then runs for the waiter waits for the
// claim's seq store as above. So the seq stores themselves need only release order (a
// plain store on x86), and each operation costs one locked instruction, its CAS.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "base/cache.hpp"
#include "base/cpu.hpp"
#include "os/os.hpp"

namespace gort::lockfree {

enum class RingStatus : std::uint8_t { kOk, kBlock, kClosed };

class ChanRing {
 public:
  // cap > 0 elements of `size` bytes aligned to `align`, trivially copyable.
  ChanRing(std::size_t cap, std::size_t size, std::size_t align)
      : cap_(cap),
        lap_(std::bit_ceil(static_cast<std::uint64_t>(cap) + 1)),
        size_(size),
        align_(align < alignof(Slot) ? alignof(Slot) : align),
        data_off_(round_up(sizeof(Slot), align_)),
        stride_(round_up(data_off_ + size, align_)) {
    slots_ = static_cast<unsigned char*>(
        ::operator new(cap_* stride_, std::align_val_t(buffer_align())));
    for (std::size_t i = 0; i < cap_; ++i) new (slots_ + i * stride_) Slot{i};
  }
  ~ChanRing() { ::operator delete(slots_, std::align_val_t(buffer_align())); }
  ChanRing(const ChanRing&) = delete;
  ChanRing& operator=(const ChanRing&) = delete;

  // Copies the element at src into the ring. kClosed: closed (nothing copied); kBlock:
  // full.
  RingStatus try_push(const void* src) {
    // Relaxed: a stale position only makes the slot check below fail; the acquire on the
    // slot's seq is what orders our copy after the previous receiver's.
    std::uint64_t p = sendpos_.load(std::memory_order_relaxed);
    int pauses = kFirstBackoff;
    for (;;) {
      if ((p & kClosedBit) != 0) return RingStatus::kClosed;
      Slot* s = slot(p);
      // Acquire pairs with the exchange that freed the slot (the previous lap's receiver
      // has copied its element out before we overwrite it).
      const std::uint64_t seq = s->seq.load(std::memory_order_acquire);
      if (seq == p) {
        if (sendpos_.compare_exchange_weak(p, next(p))) {
          copy(data(s), src);
          // Release: publishes the element to the receiver's acquire load of seq.
          s->seq.store(p + 1, std::memory_order_release);
          return RingStatus::kOk;
        }
        backoff(pauses);
        continue;  // p reloaded by the failed CAS
      }
      if (seq < p) {
        // The slot still holds position p - lap_. Full, unless a receiver has claimed
        // that position and is copying it out: then wait for it.
        // (seq < p only happens from the second lap on: p >= lap_.)
        if (recvpos_.load() <= p - lap_) return RingStatus::kBlock;
        spin_until([&] { return s->seq.load(std::memory_order_acquire) >= p; });
      }
      p = sendpos_.load(std::memory_order_relaxed);
    }
  }

  // Copies the head element to dst. kClosed: closed and drained; kBlock: empty.
  RingStatus try_pop(void* dst) {
    std::uint64_t p = recvpos_.load(std::memory_order_relaxed);  // as in try_push
    int pauses = kFirstBackoff;
    for (;;) {
      Slot* s = slot(p);
      // Acquire pairs with the sender's publishing exchange: the element is in.
      const std::uint64_t seq = s->seq.load(std::memory_order_acquire);
      if (seq == p + 1) {
        if (recvpos_.compare_exchange_weak(p, next(p))) {
          copy(dst, data(s));
          // Release: our copy is done before the next lap's sender overwrites the slot.
          s->seq.store(p + lap_, std::memory_order_release);
          return RingStatus::kOk;
        }
        backoff(pauses);
        continue;
      }
      if (seq < p + 1) {
        // Not published. Empty if no sender has claimed p; else one is copying: wait.
        const std::uint64_t w = sendpos_.load();
        if ((w & ~kClosedBit) == p) {
          return (w & kClosedBit) != 0 ? RingStatus::kClosed : RingStatus::kBlock;
        }
        spin_until([&] { return s->seq.load(std::memory_order_acquire) > p; });
      }
      p = recvpos_.load(std::memory_order_relaxed);
    }
  }

  // Sets the closed flag. Returns false if it was already set.
  bool close() { return (sendpos_.fetch_or(kClosedBit) & kClosedBit) == 0; }
  bool closed() const { return (sendpos_.load() & kClosedBit) != 0; }

  // Peeks (seq_cst loads; see "Blocking"). Each may be stale by the time it returns; the
  // channel uses them under its lock to decide whether a queued waiter can be served.
  // recvpos_ is read before sendpos_: positions only grow and recvpos_ <= sendpos_, so
  // the older recvpos_ never passes the newer sendpos_ (no wrap-around in distance()).
  // An item is published or being published at the head: try_pop would not say kBlock.
  bool has_item() const {
    const std::uint64_t r = recvpos_.load();
    return (sendpos_.load() & ~kClosedBit) != r;
  }
  // Not closed, and fewer than cap positions are claimed: try_push would not say kBlock.
  bool has_room() const {
    const std::uint64_t r = recvpos_.load();
    const std::uint64_t w = sendpos_.load();
    if ((w & kClosedBit) != 0) return false;
    return distance(r, w) < cap_;
  }
  // Closed and every claimed position has been claimed by a receiver: try_pop says
  // kClosed from now on.
  bool closed_and_drained() const {
    const std::uint64_t r = recvpos_.load();
    const std::uint64_t w = sendpos_.load();
    return (w & kClosedBit) != 0 && (w & ~kClosedBit) == r;
  }

  // Items claimed by senders and not yet by receivers (Go's len; racy, as there).
  std::size_t len() const {
    const std::uint64_t r = recvpos_.load(std::memory_order_relaxed);
    const std::uint64_t w = sendpos_.load(std::memory_order_relaxed) & ~kClosedBit;
    const std::size_t d = distance(r, w);
    return d > cap_ ? cap_ : d;  // the two loads are not one snapshot
  }
  std::size_t cap() const { return cap_; }

 private:
  static constexpr std::uint64_t kClosedBit = std::uint64_t{1} << 63;
  struct Slot {
    std::atomic<std::uint64_t> seq;
  };
  static std::size_t round_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
  std::size_t buffer_align() const { return align_ > base::kCacheLine ? align_ : base::kCacheLine; }
  Slot* slot(std::uint64_t p) const {
    return std::launder(reinterpret_cast<Slot*>(slots_ + (p & (lap_ - 1)) * stride_));
  }
  unsigned char* data(Slot* s) const { return reinterpret_cast<unsigned char*>(s) + data_off_; }
  std::uint64_t next(std::uint64_t p) const {
    return (p & (lap_ - 1)) + 1 < cap_ ? p + 1 : (p & ~(lap_ - 1)) + lap_;
  }
  // Number of positions from r up to w (r <= w, both without the closed bit).
  std::size_t distance(std::uint64_t r, std::uint64_t w) const {
    const int shift = std::countr_zero(lap_);
    const std::uint64_t laps = (w >> shift) - (r >> shift);
    return static_cast<std::size_t>(laps * cap_ + (w & (lap_ - 1)) - (r & (lap_ - 1)));
  }
  void copy(void* dst, const void* src) const {
    switch (size_) {  // fixed sizes become plain moves
      case 8:
        std::memcpy(dst, src, 8);
        return;
      case 4:
        std::memcpy(dst, src, 4);
        return;
      case 16:
        std::memcpy(dst, src, 16);
        return;
      default:
        std::memcpy(dst, src, size_);
    }
  }
  // After a lost CAS: pause, twice as long as last time in this operation, up to
  // kMaxBackoff pauses (~5 us where a pause is ~20 ns). A lost CAS means another core
  // does the same operation on the same position line right now; retrying at once makes
  // the line (and the slot lines, four slots to a line) change cores on every item. Backing
  // off lets the winner finish a run of items while it owns the lines, as Go's runtime
  // lock does (procyield). Measured on 2 vCPUs where a line takes ~230 ns to change cores
  // (docs/benchmarks.md, "Lock-free buffered channels"): 4x4 buffered 72-155 ns per item
  // without backoff, 10 ns with it; 1x1 unchanged (it rarely loses a CAS).
  static constexpr int kFirstBackoff = 8;
  static constexpr int kMaxBackoff = 256;
  static void backoff(int& pauses) {
    for (int i = 0; i < pauses; ++i) base::cpu_relax();
    pauses = pauses * 2 > kMaxBackoff ? kMaxBackoff : pauses * 2;
  }
  template <class F>
  static void spin_until(F done) {
    for (int i = 0; !done(); ++i) {
      if (i < 256) {
        base::cpu_relax();
      } else {
        os::thread_yield();  // the in-flight thread was descheduled
      }
    }
  }

  // Read-only after construction: shared by every core.
  const std::size_t cap_;
  const std::uint64_t lap_;
  const std::size_t size_;
  const std::size_t align_;
  const std::size_t data_off_;
  const std::size_t stride_;
  unsigned char* slots_ = nullptr;
  // Each position on its own pair of lines (adjacent-line prefetch pairs 64-byte lines).
  alignas(2 * base::kCacheLine) std::atomic<std::uint64_t> sendpos_{0};
  alignas(2 * base::kCacheLine) std::atomic<std::uint64_t> recvpos_{0};
  char pad_[2 * base::kCacheLine - sizeof(std::atomic<std::uint64_t>)];
};

}  // namespace gort::lockfree

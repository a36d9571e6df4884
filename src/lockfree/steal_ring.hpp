// StealRing: a bounded single-producer, multi-consumer ring with "steal half", the shape of
// Go's per-P run queue (runtime/proc.go: runqput, runqget, runqgrab, runqsteal).
//
// Protocol. The owner (the M holding the P) is the only writer of `tail_` and of the slots
// between head and tail. Anyone may consume from the head by CAS: the owner takes one
// element (pop), a thief takes half (grab). Because only the owner pushes, a slot in
// [head, tail) is never overwritten while a consumer might still read it: the owner
// writes slot (tail % N) only after observing head > tail - N (the slot's previous
// occupant was consumed, and that consumer's CAS on head happened-before the load).
//
// Invariants.
//   * head <= tail, tail - head <= N (indices are free-running 32-bit counters).
//   * A consumer reads slots [h, h+n) BEFORE its CAS(head, h, h+n); if the CAS fails the
//     values read are discarded, so a racing overwrite is harmless. Slots are relaxed
//     atomics so that such a discarded racy read is not undefined behaviour.
//
// Orderings (each pairs as named):
//   * push: slot store relaxed, then tail store-release  -> pairs with consumers'
//     tail load-acquire, which makes the slot contents visible.
//   * pop/grab: head CAS-release -> pairs with the owner's head load-acquire in push,
//     so the owner never reuses a slot before the consumer finished reading it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/cache.hpp"

namespace gort::lockfree {

template <class T, std::uint32_t N>
class StealRing {
  static_assert((N & (N - 1)) == 0, "capacity must be a power of two");
  static_assert(std::atomic<T>::is_always_lock_free);

 public:
  static constexpr std::uint32_t kCapacity = N;

  // Owner only. Returns false if full (the caller then spills, as Go's runqputslow does).
  bool push(T v) {
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    if (t - h >= N) return false;
    slots_[t % N].store(v, std::memory_order_relaxed);
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only. Pushes as many of batch[0..n) as fit; returns how many were pushed.
  std::uint32_t push_batch(const T* batch, std::uint32_t n) {
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t room = N - (t - h);
    if (n > room) n = room;
    for (std::uint32_t i = 0; i < n; ++i)
      slots_[(t + i) % N].store(batch[i], std::memory_order_relaxed);
    tail_.store(t + n, std::memory_order_release);
    return n;
  }

  // Owner only (the owner is the only one that can pop from the head without stealing half,
  // but any thread may call it safely). Returns false if empty.
  bool pop(T& out) {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      if (t == h) return false;
      T v = slots_[h % N].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release,
                                      std::memory_order_relaxed))
        return (out = v), true;
    }
  }

  // Owner only, and only while no other consumer can exist (no thieves: a runtime with a
  // single P). No CAS: the owner is the only writer of head too. Returns false if empty.
  bool pop_single_consumer(T& out) {
    const std::uint32_t h = head_.load(std::memory_order_relaxed);
    if (tail_.load(std::memory_order_relaxed) == h) return false;
    out = slots_[h % N].load(std::memory_order_relaxed);
    head_.store(h + 1, std::memory_order_relaxed);
    return true;
  }

  // Any thread: takes half (rounded up) of the elements, oldest first, into out, which
  // must hold N/2 elements. Returns the number taken; 0 if empty.
  std::uint32_t grab(T* out) {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n = n - n / 2;
      if (n == 0) return 0;
      if (n > N / 2) continue;  // read an inconsistent h/t pair (h moved on); retry
      for (std::uint32_t i = 0; i < n; ++i)
        out[i] = slots_[(h + i) % N].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_release,
                                      std::memory_order_relaxed))
        return n;
    }
  }

  // Any thread: the element at the head, or T{} if empty. A hint only (for prefetching):
  // it may be consumed by the time the caller looks at it.
  T peek() const {
    const std::uint32_t h = head_.load(std::memory_order_relaxed);
    if (tail_.load(std::memory_order_relaxed) == h) return T{};
    return slots_[h % N].load(std::memory_order_relaxed);
  }

  // Any thread; a snapshot, exact only when the owner is quiescent.
  std::uint32_t size() const {
    for (;;) {
      const std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      if (head_.load(std::memory_order_acquire) == h) return t - h;
    }
  }
  bool empty() const { return size() == 0; }

 private:
  alignas(base::kCacheLine) std::atomic<std::uint32_t> head_{0};  // consumers CAS it
  alignas(base::kCacheLine) std::atomic<std::uint32_t> tail_{0};  // owner writes it
  alignas(base::kCacheLine) std::atomic<T> slots_[N] = {};
};

}  // namespace gort::lockfree

// Goroutine stacks.
//
// Each goroutine runs on a fixed-size region of reserved address space whose pages the
// kernel commits on first touch, so a goroutine that uses 2 KiB of stack costs one page of
// memory however large its reservation. Below each stack is a guard region; touching it
// faults, and the fault handler (fault.cpp) reports "fatal error: stack overflow".
//
// Layout of one slot (addresses grow to the right; the stack grows to the left):
//
//   | guard (kGuardSize) | usable stack ................ | closure | G |
//   ^ slot base          ^ Stack::lo                      <- sp starts here, minus a random
//                                                            offset of up to ~1 KiB
//
// The G lives at the top of its own stack: it shares the first committed page with the
// goroutine's first frames and its closure, so a parked goroutine costs one page in all.
// Goroutines start at a random 64-byte-multiple offset below the closure: identical
// alignments would make every goroutine's hot frames collide in the same L1 sets.
//
// Why slabs: 64 slots are mapped with one mmap, and guards are installed with
// MADV_GUARD_INSTALL, which marks page-table entries without splitting the mapping. A
// million goroutines thus need ~16 thousand mappings, far under vm.max_map_count (65530).
// On kernels before 6.13 guards fall back to mprotect, one extra mapping per stack.
//
// Reuse and release: stacks are reused with their G (free lists in sched.cpp). A stack
// whose goroutine was seen deeper than kKeepBytes, or that joins a large global free list
// after a burst, gets its pages beyond the top kKeepBytes returned with madvise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/annotations.hpp"
#include "runtime/lock.hpp"

namespace gort::runtime {

struct Stack {
  std::uintptr_t lo = 0;  // lowest usable address (just above the guard)
  std::uintptr_t hi = 0;  // one past the highest usable address (where the G begins)
};

class StackArena {
 public:
  static constexpr std::size_t kGuardSize = 64 * 1024;  // catches frames up to 64 KiB
  static constexpr std::size_t kSlotsPerSlab = 64;
  static constexpr std::size_t kKeepBytes = 2 * 4096;  // kept committed on release
  static constexpr std::size_t kMinStackSize = 16 * 1024;
  static constexpr std::size_t kDefaultStackSize = 256 * 1024;

  explicit StackArena(std::size_t stack_size);
  ~StackArena();  // unmaps every slab
  StackArena(const StackArena&) = delete;
  StackArena& operator=(const StackArena&) = delete;

  // A fresh slot's usable range [lo, hi_of_slot). Throws std::system_error when the
  // kernel refuses the mapping or the guard.
  Stack carve() GORT_EXCLUDES(lock_);
  // Returns the pages of s below its top kKeepBytes to the kernel.
  static void trim(const Stack& s) noexcept;

  std::size_t stack_size() const { return stack_size_; }
  std::size_t slab_count() const;

 private:
  std::size_t stack_size_;
  std::size_t slot_size_;
  mutable Lock lock_;
  std::vector<std::pair<void*, std::size_t>> slabs_ GORT_GUARDED_BY(lock_);
  std::uintptr_t next_ GORT_GUARDED_BY(lock_) = 0;  // next unused slot in the last slab
  std::uintptr_t end_ GORT_GUARDED_BY(lock_) = 0;
};

// Resolves Options::stack_size (0: $GORT_STACK_SIZE, else the default) to whole pages.
std::size_t resolve_stack_size(std::size_t requested);

}  // namespace gort::runtime

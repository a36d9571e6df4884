// Goroutine-aware synchronisation (Go's sync package). Waiting parks the goroutine, never
// the OS thread; called from a plain thread, waiting blocks that thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "gort/detail/sema.hpp"

namespace gort {

// sync.WaitGroup. add() with a negative result throws gort::Panic("sync: negative
// WaitGroup counter"); reusing a WaitGroup before a previous wait() returned throws too.
class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  void add(int delta);
  void done() { add(-1); }
  void wait();

 private:
  // High 32 bits: counter. Low 32 bits: number of waiters. As in Go's sync/waitgroup.go.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

}  // namespace gort

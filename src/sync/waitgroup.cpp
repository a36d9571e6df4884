// sync.WaitGroup, as Go's sync/waitgroup.go: one 64-bit word holds the counter (high half)
// and the number of waiters (low half), so add() can tell in one atomic step whether it
// released the last unit of work and how many waiters to wake.
#include "gort/runtime.hpp"
#include "gort/sync.hpp"

namespace gort {

void WaitGroup::add(int delta) {
  const std::uint64_t inc = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
  // acq_rel: a done() publishes the work it finished to the waiter that sees zero.
  const std::uint64_t state = state_.fetch_add(inc, std::memory_order_acq_rel) + inc;
  const auto counter = static_cast<std::int32_t>(state >> 32);
  auto waiters = static_cast<std::uint32_t>(state);
  if (counter < 0) throw Panic("sync: negative WaitGroup counter");
  if (waiters != 0 && delta > 0 && counter == delta)
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  if (counter > 0 || waiters == 0) return;
  // Counter reached zero with waiters: nobody may touch the state now but us.
  if (state_.load(std::memory_order_relaxed) != state)
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  state_.store(0, std::memory_order_relaxed);
  for (; waiters != 0; --waiters) detail::sema_release(&sema_);
}

void WaitGroup::wait() {
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) == 0) return;
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) {
      detail::sema_acquire(&sema_, detail::WaitReason::kSyncWaitGroupWait);
      if (state_.load(std::memory_order_acquire) != 0)
        throw Panic("sync: WaitGroup is reused before previous Wait has returned");
      return;
    }
  }
}

}  // namespace gort

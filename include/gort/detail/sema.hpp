// The runtime's semaphore (Go's runtime/sema.go): the one blocking primitive the sync
// package is built on. The counter lives in the user's object; waiters live in a table
// inside the runtime keyed by the counter's address, so sync types need no runtime state.
#pragma once

#include <atomic>
#include <cstdint>

namespace gort::detail {

// Why a goroutine is parked; shown in goroutine dumps. Values are stable (profiles).
enum class WaitReason : std::uint8_t {
  kNone = 0,
  kSyncWaitGroupWait,
  kSyncMutexLock,
  kSyncRWMutexLock,
  kSyncRWMutexRLock,
  kSyncCondWait,
  kSemacquire,
  kChanReceive,
  kChanSend,
  kChanReceiveNilChan,
  kChanSendNilChan,
  kSelect,
  kSelectNoCases,
  kSleep,
  kIOWait,
  kLockedThread,
};
const char* wait_reason_string(WaitReason r) noexcept;

// Blocks until *addr > 0, then decrements it. Parks a goroutine; blocks a plain thread.
void sema_acquire(std::atomic<std::uint32_t>* addr, WaitReason why, bool lifo = false);
// Increments *addr and wakes one waiter on addr, if any. With handoff, the count goes
// straight to the woken waiter and the caller yields to it (Go's starvation-mode unlock).
void sema_release(std::atomic<std::uint32_t>* addr, bool handoff = false);

// Runtime teardown only: drops goroutine waiters (threads stay queued).
void sema_forget_goroutines() noexcept;

}  // namespace gort::detail

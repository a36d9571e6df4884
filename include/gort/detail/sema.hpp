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

// Hooks for the sync package (Go's sync_runtime_* functions).
// Whether a goroutine contending for a Mutex should spin (iteration iter) rather than
// park: only briefly, only with other Ps running and nothing else runnable on ours.
bool sync_can_spin(int iter) noexcept;
void sync_do_spin() noexcept;  // ~30 PAUSE instructions
std::int64_t sync_nanotime() noexcept;
// Go's fatal (unrecoverable, unlike a panic): prints "fatal error: msg", exits 2.
[[noreturn]] void sync_fatal(const char* msg) noexcept;

// Go's notifyList (runtime/sema.go), the core of Cond: a ticket-ordered list of waiters.
struct NotifyList {
  std::atomic<std::uint32_t> wait{0};    // ticket of the next waiter
  std::atomic<std::uint32_t> notify{0};  // ticket of the next waiter to notify
  std::atomic<std::uint32_t> lock{0};    // guards head/tail (runtime lock word)
  void* head = nullptr;
  void* tail = nullptr;
};
std::uint32_t notify_list_add(NotifyList* l) noexcept;
void notify_list_wait(NotifyList* l, std::uint32_t ticket);
void notify_list_notify_one(NotifyList* l);
void notify_list_notify_all(NotifyList* l);

// Runtime teardown only: drops goroutine waiters (threads stay queued).
void sema_forget_goroutines() noexcept;

}  // namespace gort::detail

// The OS seam. Everything gort needs from the kernel goes through this header; each
// function states the contract a port must meet. Today's only backend is Linux
// (os_linux.cpp). Nothing above src/os/ includes a system header for these services.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gort::os {

// errno: functions here leave the caller's errno unchanged unless they report a failure
// through it (goroutines run them, and errno is goroutine-local user state).

// ---- Clocks -------------------------------------------------------------------------
// Monotonic nanoseconds (CLOCK_MONOTONIC). Context: any, async-signal-safe.
std::int64_t nanotime() noexcept;
// CLOCK_MONOTONIC as of the kernel's last tick (CLOCK_MONOTONIC_COARSE): about 5x cheaper
// than nanotime(), never ahead of it, and behind it by about one tick
// (coarse_nanotime_lag()). For "is this deadline still far?" checks on hot paths.
// Context: any, async-signal-safe.
std::int64_t coarse_nanotime() noexcept;
// How far coarse_nanotime() may trail nanotime(): two ticks (clock_getres of the coarse
// clock, twice: a tick may be a little late), read once.
std::int64_t coarse_nanotime_lag() noexcept;

// ---- Threads -------------------------------------------------------------------------
// Gives up the CPU to another runnable thread, if any (sched_yield). For spin loops that
// wait on another thread's short critical step. Context: any.
void thread_yield() noexcept;

// ---- Futex --------------------------------------------------------------------------
// Blocks while *addr == expected, or until woken, or until timeout_ns (<0: forever)
// passes. Spurious returns are allowed; callers re-check their condition.
void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                std::int64_t timeout_ns = -1) noexcept;
// Wakes up to n threads blocked in futex_wait on addr.
void futex_wake(std::atomic<std::uint32_t>* addr, int n) noexcept;

// A one-shot event for parking a thread (Go's note): sleep() blocks until wakeup() has
// been called since the last clear(). Exactly one thread sleeps on a Note at a time;
// any thread may wake it.
class Note {
 public:
  void clear() noexcept { key_.store(0, std::memory_order_relaxed); }
  void wakeup() noexcept;
  void sleep() noexcept;
  // Returns true if woken, false on timeout.
  bool sleep_for(std::int64_t ns) noexcept;

 private:
  std::atomic<std::uint32_t> key_{0};
};

// ---- I/O readiness (epoll) ------------------------------------------------------------
// An edge-triggered readiness poller for the netpoller (runtime/netpoll.cpp). Every
// registered fd carries an opaque tag that comes back with its events. wait() may be
// interrupted from any thread by wake(); wakes that arrive while nobody waits are not lost
// (the next wait returns at once) and several wakes collapse into one.
struct PollEvent {
  void* tag;
  bool readable;  // readable, peer hung up, or error: a reader should retry
  bool writable;  // writable, hung up, or error: a writer should retry
};

class Poller {
 public:
  Poller() = default;
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  ~Poller();

  // Creates the kernel objects. Returns false (errno set) on failure.
  bool open() noexcept;
  // Registers fd for read and write readiness, edge-triggered. Returns 0 or an errno.
  int add(int fd, void* tag) noexcept;
  // Unregisters fd (before it is closed). Returns 0 or an errno.
  int remove(int fd) noexcept;
  // Waits up to timeout_ns (<0: forever, 0: just look) for events; fills at most max of
  // them into out and returns how many. A wake() ends the wait early (returns 0 events if
  // nothing else happened). Nanosecond timeouts where the kernel has epoll_pwait2, else
  // rounded up to milliseconds.
  int wait(std::int64_t timeout_ns, PollEvent* out, int max) noexcept;
  // Makes a current or the next wait() return. Any thread; async-signal-safe.
  void wake() noexcept;

 private:
  int epfd_ = -1;
  int wakefd_ = -1;  // an eventfd, registered with a null tag
  std::atomic<bool> wake_pending_{false};
};

// ---- Threads ------------------------------------------------------------------------
// The kernel thread id of the caller (gettid). Never cached by the compiler across a
// goroutine switch (it is an out-of-line call).
int thread_id() noexcept;
// The calling thread's stack: lowest address and size (pthread_getattr_np).
void current_thread_stack(const void** bottom, std::size_t* size) noexcept;
// Number of CPUs this process may run on (sched_getaffinity), at least 1.
int usable_cpus() noexcept;

// ---- Process-wide memory barrier ---------------------------------------------------
// The heavy side of an asymmetric fence (Linux membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED;
// folly calls the pair asymmetricHeavyBarrier/asymmetricLightBarrier). When
// process_barrier() returns true, every other thread of the process has executed a full
// memory barrier at some instruction boundary between the call and its return (a thread
// that was not running did so when it was switched out). A thread whose ordering must pair
// with it needs only a compiler barrier, std::atomic_signal_fence(seq_cst): two stores and
// loads separated by either fence then behave as if both sides had a full fence.
// process_barrier_init() registers the process for the command (once; idempotent) and
// returns whether the kernel supports it; process_barrier() must only be called after it
// returned true, and returns false if the kernel refused (callers then stop relying on it).
// Context: any thread; may take microseconds (an IPI to every CPU running the process).
bool process_barrier_init() noexcept;
bool process_barrier() noexcept;

// ---- Virtual memory -----------------------------------------------------------------
std::size_t page_size() noexcept;
// Reserves size bytes of readable/writable address space that the kernel commits lazily,
// page by page, on first touch, without charging it to the commit limit (MAP_NORESERVE),
// and without transparent huge pages. Returns nullptr on failure (errno set).
void* reserve_lazy(std::size_t size) noexcept;
void release(void* p, std::size_t size) noexcept;
// Maps kHugeBufferSize bytes of readable/writable memory, aligned to it, asking for
// transparent huge pages: a buffer filled sequentially then faults once per 2 MiB instead
// of once per page (first touches cost microseconds each in VMs). Free with release().
// Returns nullptr on failure (errno set).
inline constexpr std::size_t kHugeBufferSize = 2 * 1024 * 1024;
void* map_huge_buffer() noexcept;
// Gives the physical pages of [p, p+size) back to the kernel; the range stays reserved
// and reads as zero afterwards.
void decommit(void* p, std::size_t size) noexcept;

enum class GuardKind { kGuardInstall, kMprotect };
// Makes [p, p+size) fault on any access. Uses MADV_GUARD_INSTALL (Linux >= 6.13), which
// marks page-table entries and does not split the mapping, so a million guarded stacks fit
// in the default vm.max_map_count; falls back to mprotect(PROT_NONE) (one more mapping
// per guard) elsewhere. Returns false on failure (errno set).
bool install_guard(void* p, std::size_t size) noexcept;
GuardKind guard_kind() noexcept;

// ---- Signals ------------------------------------------------------------------------
// Handler for synchronous faults (SIGSEGV, SIGBUS). It runs on the thread's alternate
// signal stack. Returns true if it handled the fault (it normally does not return then);
// false to pass the fault on to the previously installed handler or the default action.
using FaultHandler = bool (*)(void* fault_addr) noexcept;
// Installs handler for SIGSEGV and SIGBUS process-wide; idempotent. Previous handlers are
// chained for faults the handler declines.
void install_fault_handler(FaultHandler handler) noexcept;

// The signal that stops a goroutine's thread for a stack scan (the collector, gc/mark.cpp).
// SIGURG, as Go uses for preemption: programs rarely use it, and the kernel sends it only
// for out-of-band socket data to processes that asked (F_SETOWN).
int stop_signal() noexcept;
// Installs handler for stop_signal() (SA_SIGINFO | SA_RESTART, on the interrupted stack:
// the handler must run on the goroutine's stack, which it lets the collector scan).
using StopHandler = void (*)(int sig, void* info, void* ucontext);
void install_stop_handler(StopHandler handler) noexcept;
// Sends stop_signal() to the thread tid of this process. False if it no longer exists.
bool signal_thread(int tid) noexcept;
// From a signal handler's ucontext: the interrupted code's general-purpose registers
// (into regs, at most max; returns how many) and the lowest address of its stack that may
// hold its data (sp, minus the red zone where the ABI has one). Vector and floating-point
// registers are left out: a conservative scan would mistake stale bit patterns there for
// pointers. Context: signal handler.
int interrupted_registers(const void* ucontext, std::uintptr_t* regs, int max,
                          std::uintptr_t* stack_low) noexcept;
// SIGQUIT: while installed, the signal calls handler (async-signal context: it may only
// do async-signal-safe things, such as waking a Note) instead of the default action.
// restore_quit_handler puts the previous disposition back.
using QuitHandler = void (*)() noexcept;
void install_quit_handler(QuitHandler handler) noexcept;
void restore_quit_handler() noexcept;

// An alternate signal stack for the calling thread, so a fault on an exhausted goroutine
// stack can still be reported. Freed with the object; the thread's previous alternate
// stack is restored.
class AltStack {
 public:
  AltStack() noexcept;
  ~AltStack();
  AltStack(const AltStack&) = delete;
  AltStack& operator=(const AltStack&) = delete;

 private:
  void* mem_ = nullptr;
  std::size_t size_ = 0;
  bool had_previous_ = false;
  alignas(16) unsigned char previous_[32] = {};  // a stack_t
};

}  // namespace gort::os

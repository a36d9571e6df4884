// gort's runtime: goroutines on an M:N work-stealing scheduler (Go's G/M/P).
//
// Thread-local state and goroutines. A goroutine may resume on a different OS thread after
// any scheduling point (a channel operation, a lock, yield(), WaitGroup::wait(), ...).
// Compilers assume a function runs on one thread and may keep the address of a
// `thread_local` variable or of `errno` (glibc's __errno_location is declared const) in a
// register across calls. The rule for code running in goroutines:
//   * errno is goroutine-local: the runtime saves it when a goroutine stops and restores it
//     on whichever thread resumes it. Read it in a function that does not also contain the
//     scheduling point, or after re-computing it (for example through a noinline helper).
//   * a thread_local names the *current thread's* variable; re-read it after a scheduling
//     point through a noinline accessor, or use gort::GoroutineLocal<T> for per-goroutine
//     state, or gort::lock_os_thread() to pin the goroutine to its thread.
// See docs/design/scheduler.md, "Thread-local storage".
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gort/detail/closure.hpp"

#ifndef GORT_RACE_MODE_DEFAULT
#define GORT_RACE_MODE_DEFAULT 0
#endif

namespace gort {

// The exception type for runtime panics (Go's runtime.Error / panic values).
class Panic : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  // Number of Ps (GOMAXPROCS). 0: $GOMAXPROCS if set, else the CPUs this process may use.
  int procs = 0;
  // Reserved size of each goroutine stack in bytes (committed lazily, page by page).
  // 0: $GORT_STACK_SIZE if set, else 256 KiB. Rounded up to whole pages; at least 16 KiB.
  std::size_t stack_size = 0;
  // Randomise scheduling decisions (skip runnext, shuffle spilled batches) so that
  // order-dependent bugs show up, as Go's -race does. On by default in TSan builds.
  bool race_randomize = GORT_RACE_MODE_DEFAULT != 0;
  // Report "all goroutines are asleep - deadlock!" when nothing can wake any goroutine.
  // Disable when threads outside gort wake goroutines (Go has no such threads).
  bool detect_deadlock = true;
  // Let the runtime's monitor hand the P of a goroutine that has run for 10 ms without a
  // scheduling point to another thread, so it cannot starve the others (Go's preemption;
  // the goroutine keeps its thread and waits for a P at its next scheduling point). Needs
  // Linux membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED); without it, off.
  bool preempt = true;
};

namespace detail {
// Runs body as goroutine 1 and destroys it when it returns. Returns non-zero only for a
// runtime failure; main's own result travels through the closure.
int run_main(Closure* body, const Options& opts);
}  // namespace detail

// Starts the runtime with opts, runs main (returning void or int) as goroutine 1 and
// returns its result (0 for void). Goroutines still alive when main returns are
// abandoned, as in Go: their stacks are released without unwinding them, so what their
// frames and closures own is not destroyed (LeakSanitizer reports it); wait for the
// goroutines whose resources matter before returning from main. May be
// called again after it returns; not from inside a goroutine, not from two threads at once.
template <class F>
int run(F main, Options opts = {}) {
  using R = std::invoke_result_t<F&>;
  static_assert(std::is_void_v<R> || std::is_convertible_v<R, int>,
                "gort::run: main must return void or int");
  struct Main final : detail::Closure {
    Main(F&& f, int* out) : fn(std::move(f)), result(out) {}
    void run() override {
      if constexpr (std::is_void_v<R>) {
        fn();
      } else {
        *result = static_cast<int>(fn());
      }
    }
    void destroy() noexcept override { this->~Main(); }
    F fn;
    int* result;
  };
  // The body lives in the caller's frame; the runtime destroys it (not this scope) when
  // goroutine 1 returns, so main's captures die on the goroutine, as any goroutine's do.
  int result = 0;
  alignas(Main) unsigned char storage[sizeof(Main)];
  Main* body = ::new (static_cast<void*>(storage)) Main(std::move(main), &result);
  int rc = detail::run_main(body, opts);
  return rc != 0 ? rc : result;
}

// `go f(args...)`: f and args are decay-copied into the new goroutine, as with std::thread.
// Throws gort::Panic outside gort::run, std::system_error if no stack can be mapped.
template <class F, class... Args>
void go(F&& f, Args&&... args) {
  using Body = detail::BoundCall<std::decay_t<F>, std::decay_t<Args>...>;
  detail::SpawnSlot slot = detail::spawn_begin(sizeof(Body), alignof(Body));
  Body* body;
  try {
    body = ::new (slot.storage) Body(std::forward<F>(f), std::forward<Args>(args)...);
  } catch (...) {
    detail::spawn_abort(slot);
    throw;
  }
  detail::spawn_commit(slot, body);
}

namespace detail {
bool blocking_enter();  // false: not in a goroutine (or already in blocking): call plainly
void blocking_exit();
}  // namespace detail

// Runs f, a call that may block its thread for long (a C library, a syscall gort does not
// wrap), without holding a P: Go's entersyscall/exitsyscall around a cgo call. Other
// goroutines keep running on the other Ps, and the runtime's monitor (sysmon) hands this
// goroutine's P to another thread if the call lasts more than ~20 us while there is
// work. Returns f's result; an exception from f is rethrown after the goroutine is back
// on a P. Inside f, do not use gort primitives that can park (channels, Mutex, sleep...):
// f runs on the thread, not as a goroutine. run() waits for calls still in progress to
// return before it returns. Outside goroutines, simply calls f.
template <class F>
std::invoke_result_t<F&&> blocking(F&& f) {
  using R = std::invoke_result_t<F&&>;
  static_assert(std::is_void_v<R> || std::is_move_constructible_v<R>,
                "gort::blocking: f's result must be void or movable");
  if (!detail::blocking_enter()) return std::invoke(std::forward<F>(f));
  // The exception is carried out of its handler before the goroutine may move to another
  // thread (exit can switch threads, and an exception being handled is thread state).
  std::exception_ptr error;
  if constexpr (std::is_void_v<R>) {
    try {
      std::invoke(std::forward<F>(f));
    } catch (...) {
      error = std::current_exception();
    }
    detail::blocking_exit();
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<R> result;
    try {
      result.emplace(std::invoke(std::forward<F>(f)));
    } catch (...) {
      error = std::current_exception();
    }
    detail::blocking_exit();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }
}

// runtime.Gosched(): lets other goroutines run; the caller stays runnable.
void yield();
// runtime.NumGoroutine(): goroutines that exist now (running, runnable or waiting).
int num_goroutine();
// runtime.GOMAXPROCS(0): the number of Ps of the running runtime (0 outside run()).
int gomaxprocs();
// The current goroutine's id (run's main is 1); 0 when not called from a goroutine.
std::uint64_t goid();

// runtime.LockOSThread / UnlockOSThread: while locked (calls nest), the calling goroutine
// runs only on its current OS thread and that thread runs no other goroutine.
void lock_os_thread();
void unlock_os_thread();

// Scheduler counters. Each P counts its own events; the snapshot is their sum.
struct ProcStats {
  int id = 0;
  std::uint64_t goroutines_created = 0;  // go statements executed on this P
  std::uint64_t switches = 0;            // goroutines started or resumed on this P
  std::uint64_t yields = 0;              // yield() calls
  std::uint64_t parks = 0;               // goroutines that blocked
  std::uint64_t steals = 0;              // successful steals from other Ps
  std::uint64_t stolen_goroutines = 0;   // goroutines moved here by those steals
  std::uint64_t spins = 0;               // times an M started spinning with this P
  std::uint64_t global_queue_gets = 0;   // goroutines taken from the global run queue
};
struct SchedStats {
  int procs = 0;
  int threads = 0;  // Ms created (including the thread that called run)
  int goroutines = 0;
  std::uint64_t goroutines_created = 0;
  std::uint64_t switches = 0;
  std::uint64_t yields = 0;
  std::uint64_t parks = 0;
  std::uint64_t steals = 0;
  std::uint64_t stolen_goroutines = 0;
  std::uint64_t spins = 0;
  std::uint64_t global_queue_gets = 0;
  std::uint64_t thread_wakeups = 0;  // idle Ms woken to run goroutines
  std::uint64_t sysmon_retakes = 0;  // Ps taken from threads blocked in gort::blocking
  std::uint64_t preemptions = 0;     // Ps taken from goroutines running 10 ms without a switch
  bool preemption_enabled = false;   // Options::preempt, and the kernel supports it
  std::vector<ProcStats> per_proc;
};
// A snapshot of the running runtime's counters; all zero outside run().
SchedStats sched_stats();

// Per-goroutine storage: get() returns the calling goroutine's own T, default-constructed
// on first use and destroyed when the goroutine exits. Outside goroutines it throws Panic.
namespace detail {
std::size_t gls_new_key();
void* gls_get(std::size_t key);
void gls_set(std::size_t key, void* value, void (*destroy)(void*));
}  // namespace detail

template <class T>
class GoroutineLocal {
 public:
  T& get() {
    if (void* p = detail::gls_get(key_)) return *static_cast<T*>(p);
    T* fresh = new T();
    detail::gls_set(key_, fresh, [](void* v) { delete static_cast<T*>(v); });
    return *fresh;
  }

 private:
  std::size_t key_ = detail::gls_new_key();
};

}  // namespace gort

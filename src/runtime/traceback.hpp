// Goroutine tracebacks for profiles and debug pages: a snapshot of every goroutine with its
// status, wait reason and return addresses (Go's runtime/traceback.go + mprof.go's
// goroutineProfileWithLabels, without the stop-the-world).
//
// How frames are found. The runtime, and the code that includes gort's headers with
// -fno-omit-frame-pointer, keeps a frame-pointer chain: each frame's fp points at
// [caller's fp, return address]. A goroutine that is not running left the state of
// gort_switch_context on its stack at its saved sp (switch_*.S: on x86-64 MXCSR/FPCW,
// r15..rbx, rbp, then the return address; on AArch64 d8..d15, x19..x28, then x29 and x30).
// So the walk starts from the saved fp and pc there and follows the chain.
//
// Why no stop-the-world: gort has no preemption, so stopping every goroutine to read their
// stacks would wait for the slowest one to reach a scheduling point. Instead:
//   * a goroutine running on another thread is never walked (its stack is live); it is
//     reported with its status and no frames, as Go reports one it cannot stop;
//   * a parked or runnable goroutine is walked in place, and the walk is validated: its
//     status and saved sp are read before and after, and the frames are kept only if both
//     are unchanged (a goroutine that resumed and parked again at the same sp in between is
//     the one case not caught; its frames are then a mix of two moments, never a crash);
//   * every word read lies in the goroutine's own stack [lo, hi), which stays mapped for
//     the whole run (stacks are reused, never unmapped, while the runtime runs), each fp must
//     be above the previous one and 8-aligned, and the walk stops after max_frames. A broken
//     chain (code built without frame pointers) ends the walk, it cannot fault.
// The reads of another goroutine's stack and G are deliberately racy (a validated
// optimistic read, like a seqlock's), so they are exempt from TSan and ASan instrumentation.
#pragma once

#include <cstdint>
#include <vector>

#include "gort/detail/sema.hpp"
#include "runtime/sched.hpp"

namespace gort::runtime {

struct GoroutineTrace {
  std::uint64_t id = 0;
  GStatus status = GStatus::kIdle;
  detail::WaitReason waitreason = detail::WaitReason::kNone;
  bool is_current = false;          // the goroutine that took the snapshot
  bool locked = false;              // wired to its thread (lock_os_thread)
  bool frames_known = false;        // false: running elsewhere, or it moved during the walk
  std::vector<std::uintptr_t> pcs;  // return addresses, innermost first
  std::uintptr_t gopc = 0;          // return address of the go statement; 0 for main
  const void* labels = nullptr;     // its pprof labels (interned, never freed), or none
};

// Every live goroutine (runnable, running or waiting) in creation order of their G, the
// caller first. Context: goroutine; takes allg_lock briefly (only to copy the G list);
// allocates.
std::vector<GoroutineTrace> trace_goroutines(Sched& s, int max_frames);

// The calling goroutine's (or thread's) own return addresses, innermost first, starting
// with its caller. Context: any.
std::vector<std::uintptr_t> trace_self(int max_frames);

// An address range a frame-pointer walk may read: [lo, hi).
struct StackRange {
  std::uintptr_t lo = 0, hi = 0;
  bool holds(std::uintptr_t p, std::size_t len) const { return p >= lo && p + len <= hi; }
};

// The one frame-pointer walker (tracebacks, the CPU profiler's signal handler, contention
// records). Follows the chain from fp, storing return addresses in out (at most max),
// after dropping the first `skip`. Every word read lies in r, each fp is aligned and above
// the previous one, and a null return address (gort_context_trampoline's) ends the walk,
// so a broken chain stops it instead of faulting. Async-signal-safe. Returns how many.
int walk_frame_pointers(std::uintptr_t fp, StackRange r, std::uintptr_t* out, int max,
                        int skip = 0) noexcept;

// The stack m's thread runs on: its current goroutine's, else its g0 (thread) stack.
// Async-signal-safe (reads m's fields only).
StackRange stack_of(const M* m) noexcept;
// The stack the caller runs on: stack_of(its M) when known, else its thread's stack.
StackRange current_stack() noexcept;

}  // namespace gort::runtime

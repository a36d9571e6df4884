// The runtime's narrow view of the collector (src/gc/, docs/design/gc.md): what the
// scheduler tells it at each goroutine switch, and the attach/detach of a runtime. Nothing
// else of the collector is visible to src/runtime/.
//
// G::gc_word. Bit 0: the goroutine is running (set just before each switch to it, by the
// M switching, cleared once its context is saved at the switch out). Bits 1..31: a
// generation bumped with it. Bits 32..63: the collector cycle in which its stack was last scanned.
// The collector scans a stopped goroutine's stack [sp, hi) without stopping anything, then CASes
// the cycle in with the word it read before: the CAS fails if the goroutine ran meanwhile (the
// generation moved), and the scan is retried. A goroutine that switches in during a mark phase
// unscanned scans its own stack first (gc/mark.cpp, self_scan).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/fiber_sanitizer.hpp"
#include "runtime/sched.hpp"

namespace gort::runtime::gc_hooks {

inline constexpr std::uint64_t kRunning = 1;
inline constexpr std::uint64_t kGenMask = 0xFFFF'FFFEull;
inline constexpr int kCycleShift = 32;

// Nonzero while the collector marks: the cycle whose stacks must be scanned.
extern std::atomic<std::uint32_t> g_scan_cycle;
// Scans the calling goroutine's own stack for the current cycle (gc/mark.cpp).
void self_scan(G* gp) noexcept;

// Context: the M about to switch to gp, on its own stack (g0, or the goroutine switching
// directly), before the switch: from here on gp's stack may change.
inline void will_run(G* gp) noexcept {
  std::uint64_t w = gp->gc_word.load(std::memory_order_relaxed);
  const std::uint64_t gen = ((w & kGenMask) + 2) & kGenMask;
  w = (w & ~(kGenMask | kRunning)) | gen | kRunning;
  gp->gc_word.store(w, std::memory_order_relaxed);
#if !defined(__x86_64__)
  // The generation must be visible before gp's stack writes (x86 keeps stores in order;
  // elsewhere a fence does).
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// Context: gp, at every resume point (finish_switch_in), before its own code.
inline void resumed(G* gp) noexcept {
  const std::uint32_t cycle = g_scan_cycle.load(std::memory_order_relaxed);
  if (cycle != 0 && (gp->gc_word.load(std::memory_order_relaxed) >> kCycleShift) != cycle)
      [[unlikely]]
    self_scan(gp);
}

// Context: the M that ran gp, once gp's context is saved (on g0, or in the goroutine
// switched to).
// TSan only: the address on which every point where a goroutine's stack becomes scannable
// (switch out, scan, stop signal) releases and every span sweep acquires. A cell is freed
// only after the stacks of all goroutines were scanned in that cycle, so a goroutine's
// earlier reads of the cell's dead object come before its reuse; but that order runs
// through the conservative stack scan, which TSan cannot see (it reported the reused
// cell's new constructor against a dead object's last read, in the TSan demo).
inline char g_tsan_reuse_sync;

inline void switched_out(G* gp) noexcept {
  san::tsan_release(&g_tsan_reuse_sync);
  // Release: the saved context and stack are complete before a collector sees it stopped.
  gp->gc_word.store(gp->gc_word.load(std::memory_order_relaxed) & ~kRunning,
                    std::memory_order_release);
}

// ---- Mark work on the Ps (gc/worker.cpp) ----------------------------------------------
// Nonzero while the collector wants the Ps to mark (the mark phase of a cycle).
extern std::atomic<std::uint32_t> g_mark_workers;
// Grey objects are queued for workers to take.
bool mark_work_available();
// Fractional mode: the cycle's background marking is under its budget (25% of GOMAXPROCS)
// and there is work; and whether a run may take another slice (under 1.2 x the budget,
// and no goroutine waiting).
bool fractional_mark_wanted();
bool fractional_mark_may_go_on(bool goroutines_wait);
enum class MarkSlice {
  kMarked,      // a full slice; there may be more
  kMarkedLast,  // marked, then found no more work
  kNoWork,      // found no work
  kStop,        // marking is over, or being checked for completion
};
// Context: g0 of an M holding a P. Scans up to one slice of grey objects.
MarkSlice mark_slice(bool idle);

// A runtime starts (its goroutine stacks become roots) and ends (its Ps' caches go back).
void attach(Sched* s);
void detach(Sched* s);
// GOMAXPROCS of the attached runtime (1 if none), safe against its teardown.
int attached_procs();
// Its idle Ps (nothing to run on them) at this moment; -1 if no runtime is attached.
int attached_idle_procs();

}  // namespace gort::runtime::gc_hooks

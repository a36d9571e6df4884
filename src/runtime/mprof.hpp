// Contention profiles kept by the runtime (Go's runtime/mprof.go, the block and mutex
// parts): buckets of call stacks with a count and a total delay, filled where goroutines
// block, read by src/pprof to write the "block" and "mutex" profiles.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "gort/detail/sema.hpp"

namespace gort::runtime {

enum class ContentionKind { kBlock, kMutex };

// runtime.SetBlockProfileRate: sample blocking events of about rate ns (1: all; 0: off).
extern std::atomic<std::int64_t> g_block_profile_rate;
// runtime.SetMutexProfileFraction: sample 1 in rate contention events (0: off).
extern std::atomic<std::int64_t> g_mutex_profile_fraction;

// Whether a park for `why` counts as blocking for the block profile (channel operations,
// select and sync; not sleeps, I/O or a select with no cases, as in Go).
bool blocks_for_profile(detail::WaitReason why) noexcept;
// Whether waiting with `why` is lock contention for the mutex profile.
bool is_mutex_wait(detail::WaitReason why) noexcept;

// Records a blocking event of delay_ns if sampled, with the caller's stack (minus `skip`
// runtime frames). Context: goroutine or thread, after the wait.
void block_event(std::int64_t delay_ns, int skip);
// Records a contention event (delay_ns waited by a goroutine the caller releases), with
// the releaser's stack, if sampled.
void mutex_event(std::int64_t delay_ns, int skip);

struct ContentionRecord {
  std::vector<std::uintptr_t> stack;  // return addresses, innermost first
  double count = 0;
  std::int64_t delay_ns = 0;
};
// A copy of the profile's records, as sampled (unscaled).
std::vector<ContentionRecord> contention_records(ContentionKind kind);

// The threadcreate profile: the stack that created each M of the running runtime (the
// caller of the go statement, ready() or wakeup that started it; run()'s caller for M0).
// Context: the creating thread, just before the M's thread starts. Rare: a lock is fine.
struct Sched;
void thread_create_event(const Sched* s);
// The recorded stacks of runtime s's Ms, in creation order.
std::vector<std::vector<std::uintptr_t>> thread_create_records(const Sched* s);

// The CPU profiler's per-thread timers (src/pprof/cpu_profile.cpp), Go's
// setThreadCPUProfiler: while a profile runs, every M samples its own CPU clock. An M
// calls these on its own thread: when it starts (after its tid is set) and before it
// exits (a timer outlives its thread otherwise). Rare: they take a lock.
void cpu_profile_thread_start(int tid);
void cpu_profile_thread_exit(int tid);
// The collector's thread (not an M) registers itself once: it is sampled in every profile,
// its samples attributed to the synthetic frame _GC.
void cpu_profile_gc_thread_start();

// The calling goroutine's (or thread's) return addresses, innermost first, by walking frame
// pointers within its stack; skips `skip` frames. Never faults.
int capture_stack(std::uintptr_t* out, int max, int skip) noexcept;

}  // namespace gort::runtime

// Profiling: Go's runtime/pprof for gort programs. Profiles are pprof's profile.proto,
// gzipped, with function names and the process's mappings (with GNU build ids), so
// `go tool pprof` and Google's `pprof` read them directly.
//
// CPU profile: every M (thread running goroutines) gets a timer on its own CPU-time clock
// that sends it SIGPROF hz times per CPU-second, so each thread is sampled in proportion to
// the CPU it uses. The handler walks frame pointers within the current goroutine's stack
// and pushes the stack into a lock-free buffer that a goroutine drains (docs/design/pprof.md).
// Build your own code with -fno-omit-frame-pointer for complete stacks (gort's is).
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace gort::pprof {

// pprof.StartCPUProfile: samples until stop_cpu_profile(), then writes the profile to out
// (which must outlive the profile). hz: samples per CPU-second (Go's default 100). Throws
// std::logic_error if a CPU profile is already running, std::runtime_error outside gort::run.
void start_cpu_profile(std::ostream& out, int hz = 100);
// pprof.StopCPUProfile: stops sampling and writes the profile. No-op if none is running.
void stop_cpu_profile();

// Goroutine labels (pprof.Labels): key/value pairs attached to the samples a goroutine
// takes, inherited by the goroutines it starts. Keys are unique; order is irrelevant.
using LabelSet = std::vector<std::pair<std::string, std::string>>;
// pprof.SetGoroutineLabels: replaces the calling goroutine's labels.
void set_goroutine_labels(const LabelSet& labels);
// The calling goroutine's labels.
LabelSet goroutine_labels();
// pprof.Do: runs f with the calling goroutine's labels extended by labels (a key already
// present takes the new value), then restores them (also when f throws).
template <class F>
decltype(auto) do_with_labels(const LabelSet& labels, F&& f) {
  struct Restore {
    LabelSet saved;
    ~Restore() { set_goroutine_labels(saved); }
  } restore{goroutine_labels()};
  LabelSet merged = restore.saved;
  for (const auto& [k, v] : labels) {
    bool replaced = false;
    for (auto& [mk, mv] : merged)
      if (mk == k) {
        mv = v;
        replaced = true;
      }
    if (!replaced) merged.emplace_back(k, v);
  }
  set_goroutine_labels(merged);
  return std::forward<F>(f)();
}

// runtime.SetBlockProfileRate: the "block" profile samples blocking events (channel
// operations, select, sync waits) of about rate nanoseconds: 1 records every event, 0
// (the default) turns it off. Sleeps and I/O waits are not blocking, as in Go.
void set_block_profile_rate(int rate);
// runtime.SetMutexProfileFraction: the "mutex" profile records 1 in rate contention events
// on gort::Mutex and RWMutex (the time waiters waited, at the unlocker's stack); 0 turns it
// off. Returns the previous rate; a negative rate only reads it.
int set_mutex_profile_fraction(int rate);

}  // namespace gort::pprof

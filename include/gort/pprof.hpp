// Profiling: Go's runtime/pprof for gort programs.
//
// CPU profile: pprof's profile.proto, gzipped, with function names and the process's
// mappings (with GNU build ids), so `go tool pprof` and Google's `pprof` read it directly.
// Every M (thread running goroutines) gets a timer on its own CPU-time clock that sends it
// SIGPROF hz times per CPU-second, so each thread is sampled in proportion to the CPU it
// uses. The handler walks frame pointers within the current goroutine's stack and pushes
// the stack into a lock-free buffer that a goroutine drains (docs/design/pprof.md).
//
// Goroutine profile (write_profile("goroutine", out, 1|2)): Go's two text forms (debug=1:
// identical stacks grouped with counts; debug=2: every goroutine with its id, state, wait
// reason and frames, as a Go program prints them). File and line are unknown for now
// ("?:0"). A goroutine running on another thread at the time is listed without frames:
// gort does not stop the world, and never reads a stack that is in use
// (docs/design/pprof.md).
//
// Build your own code with -fno-omit-frame-pointer for complete stacks (gort's is).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
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

// runtime.MemProfileRate: the "heap" and "allocs" profiles sample about one allocation on
// the collected heap (gort::gc) per rate bytes; 1 records every allocation, 0 none.
// Default 512 KiB, as Go. Returns the previous rate. Set it before allocating, as in Go.
int set_memprofile_rate(int rate);

// pprof.Lookup(name).WriteTo(out, debug). name: "goroutine", "heap" (objects on the
// collected heap that are live, with where they were allocated), "allocs" (the same
// samples, all allocations shown by default), "block", "mutex" or "threadcreate" (the stack
// that created each thread running goroutines).
// debug: 0 for the gzipped profile.proto, 1 (and 2 for "goroutine") for Go's text forms.
// Throws std::invalid_argument for an unknown profile, and gort::Panic outside gort::run
// for "goroutine".
void write_profile(std::string_view name, std::ostream& out, int debug = 0);

// Delta profiles (net/http/pprof's ?seconds=N): a copy of the cumulative "block" or
// "mutex" profile as it is now; write_profile_delta then writes, as profile.proto, only
// what the profile recorded after the snapshot.
namespace detail {
struct SnapshotData;
}
struct ProfileSnapshot {
  std::string name;
  std::shared_ptr<const detail::SnapshotData> data;
};
// Throws std::invalid_argument for a profile without a delta form (all but block, mutex).
ProfileSnapshot snapshot_profile(std::string_view name);
void write_profile_delta(const ProfileSnapshot& since, std::ostream& out);

// A profile write_profile knows, for indexes such as /debug/pprof/.
struct ProfileInfo {
  std::string name;
  std::int64_t count = 0;  // entries now (goroutines for "goroutine")
  std::string description;
};
// Every profile write_profile knows, sorted by name. Outside gort::run, counts are 0.
std::vector<ProfileInfo> profiles();

}  // namespace gort::pprof

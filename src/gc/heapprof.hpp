// The heap profile's records (Go's runtime/mprof.go, memory part): allocations sampled
// about once per MemProfileRate bytes (an exponential distance between samples, so every
// byte has the same chance), with the allocating stack; sweeping reports the frees of
// sampled objects. src/pprof/heap_profile.cpp writes the "heap" and "allocs" profiles.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gort::gc::detail {

// runtime.MemProfileRate: mean bytes between samples (0: off; 1: every allocation).
extern std::atomic<std::int64_t> g_memprofile_rate;

struct HeapRecord {
  std::vector<std::uintptr_t> stack;  // return addresses, innermost first
  std::int64_t allocs = 0, alloc_bytes = 0, frees = 0, free_bytes = 0;
};
// A copy of the records as of the last completed cycle (unscaled samples): Go's
// MemProfile, which "may be up to two garbage collection cycles old".
std::vector<HeapRecord> heap_records();
// The collector's cycle edges: at mark termination, before sweeping starts; and once the
// sweep of that cycle has finished.
void heap_profile_next_cycle();
void heap_profile_swept();

// Bytes to allocate before the next sample (exponential with mean rate; 0 rate: never).
std::int64_t next_sample_distance();
// Records an allocation of `bytes` at `cell` with the caller's stack (minus `skip` frames).
void sample_allocation(std::uintptr_t cell, std::size_t bytes, int skip);
// Sweep frees a cell whose state word says it was sampled.
void sampled_free(std::uintptr_t cell, std::size_t bytes);

}  // namespace gort::gc::detail

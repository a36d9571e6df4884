// Writer of the "heap" and "allocs" profiles, for write_profile and the debug server.
#pragma once

#include <cstdint>
#include <iosfwd>

namespace gort::pprof::detail {

// allocs: alloc_space is the default sample type. debug 0: gzipped profile.proto;
// debug >= 1: Go's text form.
void write_heap_profile(bool allocs, std::ostream& out, int debug);
// Number of distinct allocation stacks recorded.
std::int64_t heap_profile_count();

}  // namespace gort::pprof::detail

// Writers of the "block" and "mutex" profiles, for write_profile and the debug server.
#pragma once

#include <cstdint>
#include <iosfwd>

namespace gort::pprof::detail {

// debug 0: gzipped profile.proto; debug >= 1: Go's text form.
void write_contention_profile(bool mutex, std::ostream& out, int debug);
// Number of distinct stacks recorded (the count /debug/pprof/ shows).
std::int64_t contention_profile_count(bool mutex);

}  // namespace gort::pprof::detail

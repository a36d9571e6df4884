// Profiles in the forms Go's runtime/pprof writes them.
//
// Today: the goroutine profile in its two text forms (debug=1: identical stacks grouped
// with counts; debug=2: every goroutine with its id, state, wait reason and frames, as a
// Go program prints them). Functions are named from the ELF symbol tables; file and line
// are unknown for now ("?:0"), and frames show only code built with frame pointers
// (gort itself is; build your code with -fno-omit-frame-pointer for full stacks).
// A goroutine running on another thread at the time is listed without frames: gort does
// not stop the world, and never reads a stack that is in use (src/runtime/traceback.hpp).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace gort::pprof {

// pprof.Lookup(name).WriteTo(out, debug). name: "goroutine". debug: 1 or 2 (text forms);
// 0, the gzipped profile.proto, is not implemented yet. Throws std::invalid_argument for
// an unknown profile or a form not implemented (the message says which), and
// gort::Panic outside gort::run.
void write_profile(std::string_view name, std::ostream& out, int debug = 0);

// A profile write_profile knows, for indexes such as /debug/pprof/.
struct ProfileInfo {
  std::string name;
  std::int64_t count = 0;  // entries now (goroutines for "goroutine")
  std::string description;
};
// Every profile write_profile knows, sorted by name. Outside gort::run, counts are 0.
std::vector<ProfileInfo> profiles();

}  // namespace gort::pprof

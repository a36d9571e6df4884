// Helpers shared by the tests (and by the cross-built arch smoke program: no GoogleTest).
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gort/runtime.hpp"

// Sanitizer detection, for GCC (__SANITIZE_*__) and clang (__has_feature).
#if defined(__SANITIZE_THREAD__)
#define GORT_TEST_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define GORT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORT_TEST_TSAN 1
#elif __has_feature(address_sanitizer)
#define GORT_TEST_ASAN 1
#endif
#endif

namespace gort::test {

// Sanitizer builds are 2-20x slower and TSan keeps a heavy record per goroutine (each is
// a TSan fiber), so stress sizes shrink there; the logic under test is the same.
#if defined(GORT_TEST_TSAN)
inline constexpr std::size_t kScaleDiv = 50;
inline constexpr bool kTsan = true;
#elif defined(GORT_TEST_ASAN)
inline constexpr std::size_t kScaleDiv = 10;
inline constexpr bool kTsan = false;
#else
inline constexpr std::size_t kScaleDiv = 1;
inline constexpr bool kTsan = false;
#endif

constexpr std::size_t scaled(std::size_t n) {
  return n / kScaleDiv > 0 ? n / kScaleDiv : 1;
}

// The process's resident set in KiB (VmRSS), or -1.
inline long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Runs a shell command; returns what it wrote on stdout (redirect stderr in cmd to see it).
inline std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  pclose(p);
  return out;
}

// Whether `go` (golang-go, for `go tool pprof`) is installed.
inline bool have_go() {
  return std::system("go version >/dev/null 2>&1") == 0;
}

// Context: goroutine. Yields until every other goroutine has exited. Goroutines still
// alive when main returns are abandoned without unwinding (Go's semantics), so tests
// whose goroutines own resources (channel handles, ...) end with this.
inline void wait_for_other_goroutines() {
  while (gort::num_goroutine() > 1) gort::yield();
}

// Recurses with 4 KiB frames until the stack overflows (crash tests).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
__attribute__((noinline)) inline int overflow_stack(int depth) {
  volatile char pad[4096];
  pad[0] = static_cast<char>(depth);
  return overflow_stack(depth + 1) + pad[0];
}
#pragma GCC diagnostic pop

}  // namespace gort::test

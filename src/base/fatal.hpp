// Fatal errors: the runtime's "throw". A broken invariant or an unrecoverable condition
// (deadlock, stack overflow, an exception escaping a goroutine) prints Go's words to
// stderr and exits with status 2, as Go's runtime does.
//
// Context: any, including signal handlers and threads without a P: nothing here allocates
// or takes a lock; output goes straight to write(2).
#pragma once

#include <cstdint>
#include <string_view>

namespace gort::base {

// Writes s to stderr with write(2); async-signal-safe.
void raw_write(std::string_view s) noexcept;
// Writes v in decimal to stderr; async-signal-safe.
void raw_write_uint(std::uint64_t v) noexcept;

// Prints "fatal error: <msg>" and exits with status 2 without running destructors.
[[noreturn]] void fatal(std::string_view msg) noexcept;

// Exits the process with status 2 after flushing nothing (output already written).
[[noreturn]] void die() noexcept;

}  // namespace gort::base

// GORT_CHECK(cond): an internal invariant. Failing it is a runtime bug, never user error.
#define GORT_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (__builtin_expect(!(cond), 0))                                                              \
      ::gort::base::fatal("runtime: check failed: " #cond " at " __FILE__ ":" GORT_STR(__LINE__)); \
  } while (0)
#define GORT_STR2(x) #x
#define GORT_STR(x) GORT_STR2(x)

// GORT_DCHECK(cond): an invariant checked on hot paths only in debug and sanitizer builds.
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GORT_DCHECK_ON 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GORT_DCHECK_ON 1
#endif
#endif
#if defined(GORT_DCHECK_ON)
#define GORT_DCHECK(cond) GORT_CHECK(cond)
#else
#define GORT_DCHECK(cond) \
  do {                    \
  } while (0)
#endif

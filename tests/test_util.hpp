// Helpers shared by the tests.
#pragma once

#include <cstddef>

namespace gort::test {

// Sanitizer builds are 2-20x slower and TSan keeps a heavy record per goroutine (each is
// a TSan fiber), so stress sizes shrink there; the logic under test is the same.
#if defined(__SANITIZE_THREAD__)
inline constexpr std::size_t kScaleDiv = 50;
inline constexpr bool kTsan = true;
#elif defined(__SANITIZE_ADDRESS__)
inline constexpr std::size_t kScaleDiv = 10;
inline constexpr bool kTsan = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr std::size_t kScaleDiv = 50;
inline constexpr bool kTsan = true;
#elif __has_feature(address_sanitizer)
inline constexpr std::size_t kScaleDiv = 10;
inline constexpr bool kTsan = false;
#else
inline constexpr std::size_t kScaleDiv = 1;
inline constexpr bool kTsan = false;
#endif
#else
inline constexpr std::size_t kScaleDiv = 1;
inline constexpr bool kTsan = false;
#endif

constexpr std::size_t scaled(std::size_t n) {
  return n / kScaleDiv > 0 ? n / kScaleDiv : 1;
}

}  // namespace gort::test

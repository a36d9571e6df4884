// Cache-line padding. 64 bytes is the line size of every x86-64 and most aarch64 cores;
// std::hardware_destructive_interference_size is avoided because GCC warns that its value
// may change between compiler versions (an ABI hazard for an installed library).
#pragma once

#include <cstddef>

namespace gort::base {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
struct alignas(kCacheLine) CachePadded {
  T value{};
};

}  // namespace gort::base

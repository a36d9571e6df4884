// Sanitizer annotations of the collected heap. Free cells are poisoned for ASan, so a
// program that keeps a raw pointer to a collected object the collector freed gets a
// use-after-poison report instead of silently reading a reused cell; a cell is unpoisoned
// when it is allocated. Reuse is ordered for TSan through the span's lists and locks, and
// from the scans that proved a cell dead to its sweep by runtime/gc_hooks.hpp's
// g_tsan_reuse_sync.
#pragma once

#include <cstddef>

#include "runtime/fiber_sanitizer.hpp"

namespace gort::gc::detail::san {

// Whether free cells are poisoned (each freed cell needs a call).
#if GORT_ASAN
inline constexpr bool kPoisons = true;
#else
inline constexpr bool kPoisons = false;
#endif

inline void poison([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t n) {
#if GORT_ASAN
  __asan_poison_memory_region(p, n);
#endif
}

inline void unpoison([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t n) {
#if GORT_ASAN
  __asan_unpoison_memory_region(p, n);
#endif
}

}  // namespace gort::gc::detail::san

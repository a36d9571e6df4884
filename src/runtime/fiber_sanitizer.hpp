// Sanitizer annotations for goroutine switches. Without them ASan mistakes a switch for a
// stack overflow into another region and TSan merges all goroutines on a thread into one
// "thread" (hiding races between them). Each switch is bracketed:
//   before: asan_start_switch(&from->asan_fake_stack, to stack bounds); tsan_switch_to(to)
//   after:  asan_finish_switch(self->asan_fake_stack, &bounds of the stack we came from)
// A dying goroutine passes nullptr as its fake-stack slot so ASan frees its fake frames.
// TSan fibers are created per goroutine (not per reused G), so two goroutines that reuse
// one G are still two "threads" to TSan. The switches synchronise (flag 0): the scheduler's
// g0 hands state to and from goroutines through plain fields.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define GORT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GORT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORT_TSAN 1
#endif
#endif

#if GORT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if GORT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace gort::runtime::san {

inline void asan_start_switch([[maybe_unused]] void** fake_stack_save,
                              [[maybe_unused]] const void* bottom,
                              [[maybe_unused]] std::size_t size) {
#if GORT_ASAN
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#endif
}

inline void asan_finish_switch([[maybe_unused]] void* fake_stack_save,
                               [[maybe_unused]] const void** old_bottom,
                               [[maybe_unused]] std::size_t* old_size) {
#if GORT_ASAN
  __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#endif
}

// A reused stack may still carry redzone poison of frames that never returned (a goroutine
// exits by switching away from deep inside the runtime).
inline void asan_unpoison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) {
#if GORT_ASAN
  __asan_unpoison_memory_region(p, n);
#endif
}

// Happens-before edges TSan cannot see, e.g. through the kernel (an fd registered with
// epoll on one thread, its event handled on another): release on the sending side,
// acquire on the receiving side, on the same address.
inline void tsan_release([[maybe_unused]] void* addr) {
#if GORT_TSAN
  __tsan_release(addr);
#endif
}
inline void tsan_acquire([[maybe_unused]] void* addr) {
#if GORT_TSAN
  __tsan_acquire(addr);
#endif
}

inline void* tsan_current_fiber() {
#if GORT_TSAN
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}
inline void* tsan_create_fiber() {
#if GORT_TSAN
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}
inline void tsan_destroy_fiber([[maybe_unused]] void* f) {
#if GORT_TSAN
  if (f != nullptr) __tsan_destroy_fiber(f);
#endif
}
inline void tsan_switch_to([[maybe_unused]] void* f) {
#if GORT_TSAN
  __tsan_switch_to_fiber(f, 0);
#endif
}

}  // namespace gort::runtime::san

// Thread-local runtime state, read through out-of-line accessors (and, in leaf functions,
// current_m_in_leaf(): sched.hpp).
//
// A goroutine may resume on another thread after any switch. Inside one function the
// compiler may compute a thread-local's address once and reuse it after a call (GCC bug
// 26461 discusses the general problem), which after a migration would read the previous
// thread's variable. Each accessor is noinline and contains an opaque asm statement with a
// memory clobber, so it is neither inlined, nor merged, nor treated as pure: every call
// reads the variable of the thread executing it.
#include <cerrno>

#include "runtime/sched.hpp"

#if defined(__clang__)
#define GORT_OPAQUE_TLS __attribute__((noinline))
#else
#define GORT_OPAQUE_TLS __attribute__((noinline, noclone))
#endif

namespace gort::runtime {

constinit thread_local M* t_current_m = nullptr;

namespace {
std::atomic<Sched*> g_sched{nullptr};
}  // namespace

GORT_OPAQUE_TLS M* current_m() noexcept {
  asm volatile("" ::: "memory");
  return t_current_m;
}

GORT_OPAQUE_TLS void set_current_m(M* m) noexcept {
  asm volatile("" ::: "memory");
  t_current_m = m;
}

Sched* current_sched() noexcept {
  return g_sched.load(std::memory_order_acquire);
}
void set_current_sched(Sched* s) noexcept {
  g_sched.store(s, std::memory_order_release);
}

GORT_OPAQUE_TLS int* errno_slot() noexcept {
  asm volatile("" ::: "memory");
  return &errno;
}

}  // namespace gort::runtime

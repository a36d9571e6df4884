// The spin-wait hint, one definition for every spin loop: it tells the core that this is
// a busy-wait (x86 `pause`, aarch64 `yield`), which saves power, yields the pipeline to
// an SMT sibling and avoids the memory-order mis-speculation on leaving the loop.
#pragma once

namespace gort::base {

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace gort::base

#include "runtime/context.hpp"

#include <cstring>

namespace gort::runtime {

#if defined(__x86_64__)
// Frame popped by gort_switch_context (switch_x86_64.S), lowest address first.
struct InitialFrame {
  std::uint32_t mxcsr;
  std::uint16_t fpcw;
  std::uint16_t pad;
  std::uint64_t r15, r14, r13, r12, rbx, rbp;
  void* ret;              // gort_context_trampoline
  std::uint64_t zero[1];  // the trampoline's caller slot: a null "return address"
};
static_assert(sizeof(InitialFrame) == 72);

void* make_context(void* stack_top, ContextEntry entry, void* arg) noexcept {
  auto top = reinterpret_cast<std::uintptr_t>(stack_top) & ~std::uintptr_t{15};
  // After `ret` pops InitialFrame::ret, rsp = &zero, which must be 16-byte aligned so the
  // trampoline's `call` leaves the entry function with the ABI's rsp % 16 == 8.
  auto* f = reinterpret_cast<InitialFrame*>(top - 16 - offsetof(InitialFrame, zero));
  std::memset(static_cast<void*>(f), 0, sizeof *f);
  f->mxcsr = 0x1F80;  // the ABI's initial values: all exceptions masked, round to nearest
  f->fpcw = 0x037F;
  f->rbx = reinterpret_cast<std::uint64_t>(entry);
  f->r12 = reinterpret_cast<std::uint64_t>(arg);
  f->rbp = 0;  // terminates the frame-pointer chain
  f->ret = reinterpret_cast<void*>(&gort_context_trampoline);
  return f;
}
#elif defined(__aarch64__)
// Frame popped by gort_switch_context (switch_aarch64.S), lowest address first.
struct InitialFrame {
  std::uint64_t d[8];         // d8..d15
  std::uint64_t x19_x28[10];  // x19 = entry, x20 = arg
  std::uint64_t fp, lr;       // x29 = 0 terminates the chain, x30 = trampoline
};
static_assert(sizeof(InitialFrame) == 160);

void* make_context(void* stack_top, ContextEntry entry, void* arg) noexcept {
  auto top = reinterpret_cast<std::uintptr_t>(stack_top) & ~std::uintptr_t{15};
  auto* f = reinterpret_cast<InitialFrame*>(top - sizeof(InitialFrame));
  std::memset(static_cast<void*>(f), 0, sizeof *f);
  f->x19_x28[0] = reinterpret_cast<std::uint64_t>(entry);
  f->x19_x28[1] = reinterpret_cast<std::uint64_t>(arg);
  f->fp = 0;
  f->lr = reinterpret_cast<std::uint64_t>(&gort_context_trampoline);
  return f;
}
#else
#error "gort: no context switch for this architecture (x86-64 and aarch64 are supported)"
#endif

}  // namespace gort::runtime

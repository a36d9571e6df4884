// Context switching between goroutine stacks.
//
// Why hand-written rather than Boost.Context's fcontext: the scheduler needs (1) the saved
// stack pointer stored into the G *before* the switch jumps, so a parked G is complete the
// moment the M's g0 runs (fcontext hands the "from" context to the resumed side instead,
// one more store on the hot path); (2) a trampoline that terminates the frame-pointer chain
// and the CFI chain of a new goroutine, for the CPU profiler's frame walker and for the
// unwinder that must find "no handler" for an exception escaping a goroutine; (3) known
// code bounds for attributing profiler samples that land mid-switch. The cost is the same
// instruction sequence as fcontext's; bench/bench_switch.cpp measures both side by side
// (docs/benchmarks.md has the numbers).
//
// Two entry points, chosen by measurement (bench_sched, docs/benchmarks.md). A `ret` into
// another context is predicted by the return-stack buffer only if the target called from
// the same site: true for a direct yield (G -> G, both sides in try_direct_yield) and
// mostly for a direct park (a channel ping-pong pair parks in direct_park on both sides),
// false for G <-> g0. So gort_switch_context resumes with an indirect `jmp` (the branch
// predictor learns G <-> g0 patterns; spawn/join 430 -> 330 ns per goroutine), and
// gort_switch_context_symmetric with `ret` (yield ping-pong 21 ns per switch instead of
// 40 ns with `jmp`). Restoring MXCSR/x87 CW only when they differ was tried and measured
// no faster; the unconditional restore stays.
//
// Protocol: gort_switch_context(&from_sp, to_sp, arg) pushes the callee-saved registers
// (and, on x86-64, MXCSR and the x87 control word, which the SysV ABI makes callee-saved)
// onto the current stack, stores the stack pointer into *from_sp, loads to_sp, pops the
// target's registers and returns arg in the target. A fresh context made by make_context
// "returns" into gort_context_trampoline, which calls entry(arg) and never returns.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
void* gort_switch_context(void** save_sp, void* load_sp, void* arg);
void* gort_switch_context_symmetric(void** save_sp, void* load_sp, void* arg);
void gort_context_trampoline();
}

namespace gort::runtime {

using ContextEntry = void (*)(void*);

// Prepares the stack whose highest usable address is stack_top so that the first switch to
// the returned stack pointer calls entry(arg) with a null frame pointer. stack_top need not
// be aligned.
void* make_context(void* stack_top, ContextEntry entry, void* arg) noexcept;

}  // namespace gort::runtime

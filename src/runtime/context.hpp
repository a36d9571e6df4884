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
// Resuming with `jmp` rather than `ret`: a `ret` into another context never matches the
// return-stack buffer's prediction (it predicts a return to *this* context's caller) and
// costs a full misprediction on every switch. Popping the resume address and jumping
// indirectly lets the indirect-branch predictor learn switch patterns. Measured with
// bench_sched BM_RawSwitch: 13.4 ns per switch with `ret`, see docs/benchmarks.md for the
// current figure (Boost.Context's fcontext does the same).
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
void gort_context_trampoline();
}

namespace gort::runtime {

using ContextEntry = void (*)(void*);

// Prepares the stack whose highest usable address is stack_top so that the first switch to
// the returned stack pointer calls entry(arg) with a null frame pointer. stack_top need not
// be aligned.
void* make_context(void* stack_top, ContextEntry entry, void* arg) noexcept;

}  // namespace gort::runtime

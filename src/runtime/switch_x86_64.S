// x86-64 System V context switch. See context.hpp for the protocol and for why there are
// two entry points that differ only in how they resume the target.
#if defined(__x86_64__)

// Saves the callee-saved state on the current stack, stores rsp in *rdi, switches to rsi
// and restores the target's state, leaving its resume address on top of the stack.
.macro SWITCH_BODY
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        movq    %rdx, %rax
.endm

        .text
// void* gort_switch_context(void** save_sp /*rdi*/, void* load_sp /*rsi*/, void* arg /*rdx*/)
// Resumes with an indirect jump: for switches between different call sites (G <-> g0).
        .globl  gort_switch_context
        .type   gort_switch_context, @function
        .p2align 4
gort_switch_context:
        .cfi_startproc
        SWITCH_BODY
        popq    %rcx
        jmp     *%rcx
        .cfi_endproc
        .size   gort_switch_context, .-gort_switch_context

// Same, resuming with `ret`: for symmetric switches (G -> G in a direct yield), where both
// sides call from the same site and the return-stack buffer predicts the target.
        .globl  gort_switch_context_symmetric
        .type   gort_switch_context_symmetric, @function
        .p2align 4
gort_switch_context_symmetric:
        .cfi_startproc
        SWITCH_BODY
        ret
        .cfi_endproc
        .size   gort_switch_context_symmetric, .-gort_switch_context_symmetric

        .globl  gort_context_trampoline
        .type   gort_context_trampoline, @function
        .p2align 4
// First code a new goroutine runs: entry (rbx) is called with arg (r12).
gort_context_trampoline:
        .cfi_startproc
        .cfi_undefined rip      // outermost frame: unwinders stop here
        movq    %r12, %rdi
        callq   *%rbx
        ud2                     // entry never returns
        .cfi_endproc
        .size   gort_context_trampoline, .-gort_context_trampoline
#endif
        .section .note.GNU-stack,"",@progbits

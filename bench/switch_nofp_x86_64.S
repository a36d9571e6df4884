// A variant of gort_switch_context that does not save MXCSR and the x87 control word (as
// Go's gogo does not). Only for bench_sched's RawSwitch comparison, which decides whether
// saving them is worth its cost (see src/runtime/context.hpp).
#if defined(__x86_64__)
        .text
        .globl  bench_switch_context_nofp
        .type   bench_switch_context_nofp, @function
        .p2align 4
bench_switch_context_nofp:
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        movq    %rdx, %rax
        popq    %rcx
        jmp     *%rcx
        .size   bench_switch_context_nofp, .-bench_switch_context_nofp
#endif
        .section .note.GNU-stack,"",@progbits

// x86-64 System V context switch. See context.hpp for the protocol.
#if defined(__x86_64__)
        .text
        .globl  gort_switch_context
        .type   gort_switch_context, @function
        .p2align 4
// void* gort_switch_context(void** save_sp /*rdi*/, void* load_sp /*rsi*/, void* arg /*rdx*/)
gort_switch_context:
        .cfi_startproc
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
        popq    %rcx            // the target's resume address
        movq    %rdx, %rax
        jmp     *%rcx           // not `ret`: see context.hpp
        .cfi_endproc
        .size   gort_switch_context, .-gort_switch_context

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

// AArch64 (AAPCS64) context switch. See context.hpp for the protocol.
#if defined(__aarch64__)
        .text
        .globl  gort_switch_context
        .type   gort_switch_context, %function
        .p2align 4
// void* gort_switch_context(void** save_sp /*x0*/, void* load_sp /*x1*/, void* arg /*x2*/)
gort_switch_context:
        .cfi_startproc
        sub     sp, sp, #160
        stp     d8, d9, [sp, #0]
        stp     d10, d11, [sp, #16]
        stp     d12, d13, [sp, #32]
        stp     d14, d15, [sp, #48]
        stp     x19, x20, [sp, #64]
        stp     x21, x22, [sp, #80]
        stp     x23, x24, [sp, #96]
        stp     x25, x26, [sp, #112]
        stp     x27, x28, [sp, #128]
        stp     x29, x30, [sp, #144]
        mov     x9, sp
        str     x9, [x0]
        mov     sp, x1
        ldp     d8, d9, [sp, #0]
        ldp     d10, d11, [sp, #16]
        ldp     d12, d13, [sp, #32]
        ldp     d14, d15, [sp, #48]
        ldp     x19, x20, [sp, #64]
        ldp     x21, x22, [sp, #80]
        ldp     x23, x24, [sp, #96]
        ldp     x25, x26, [sp, #112]
        ldp     x27, x28, [sp, #128]
        ldp     x29, x30, [sp, #144]
        add     sp, sp, #160
        mov     x0, x2
        ret
        .cfi_endproc
        .size   gort_switch_context, .-gort_switch_context

// The symmetric variant (see switch_x86_64.S): on AArch64 both end in `ret x30`, so it is
// an alias.
        .globl  gort_switch_context_symmetric
        .set    gort_switch_context_symmetric, gort_switch_context

        .globl  gort_context_trampoline
        .type   gort_context_trampoline, %function
        .p2align 4
gort_context_trampoline:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x20
        blr     x19
        brk     #0
        .cfi_endproc
        .size   gort_context_trampoline, .-gort_context_trampoline
#endif
        .section .note.GNU-stack,"",%progbits

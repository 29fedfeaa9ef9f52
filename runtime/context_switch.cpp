// weft_switch_context: see context_switch.hpp. The frame matches Boost.Context
// 1.6x+ fcontext on x86-64 SysV (make_fcontext's layout):
//   0x00 MXCSR, 0x04 x87 control word
//   0x08 r12, 0x10 r13, 0x18 r14, 0x20 r15, 0x28 rbx, 0x30 rbp
//   0x38 the address to resume at (a new context: make_fcontext's trampoline)
// The resumed side sees transfer_t{caller's frame, data} in rax:rdx (a return
// from this function) and in rdi:rsi (the first entry, a function taking
// transfer_t by value).

#include "runtime/context_switch.hpp"

#if defined(__x86_64__) && defined(__ELF__)
asm(R"(
    .text
    .globl weft_switch_context
    .hidden weft_switch_context
    .type weft_switch_context, @function
    .p2align 4
weft_switch_context:
    leaq  -0x38(%rsp), %rsp
    stmxcsr (%rsp)
    fnstcw 0x4(%rsp)
    movq  %r12, 0x08(%rsp)
    movq  %r13, 0x10(%rsp)
    movq  %r14, 0x18(%rsp)
    movq  %r15, 0x20(%rsp)
    movq  %rbx, 0x28(%rsp)
    movq  %rbp, 0x30(%rsp)
    movq  %rsp, %rax
    movq  %rdi, %rsp
    ldmxcsr (%rsp)
    fldcw 0x4(%rsp)
    movq  0x08(%rsp), %r12
    movq  0x10(%rsp), %r13
    movq  0x18(%rsp), %r14
    movq  0x20(%rsp), %r15
    movq  0x28(%rsp), %rbx
    movq  0x30(%rsp), %rbp
    leaq  0x38(%rsp), %rsp
    movq  %rsi, %rdx
    movq  %rax, %rdi
    ret
    .size weft_switch_context, .-weft_switch_context
)");
#endif

#pragma once
/// The context switch of weft::yield, inlined into the caller. Not part of the
/// public contract.
///
/// A switch made by a call into the library ends in a `ret` (or, in the
/// caller, in the `ret` of yield() itself): the return-stack predictor then
/// expects the call site this fiber came from, so every yield between fibers
/// that run different code (a producer and a consumer) mispredicts once. Here
/// the switch happens in the caller's own code: the suspended side's resume
/// address is a label right after it, pushed without a `call`, and the switch
/// ends in an indirect `jmp`, which the branch predictor learns from its
/// history. Nothing pushes or pops the return stack.
///
/// The frame is the one every weft switch lays out (runtime/context_switch.cpp,
/// Boost.Context's fcontext layout): a context suspended here may be resumed
/// by the library's switch and the other way round. x86-64 SysV only.

#if defined(__x86_64__) && defined(__ELF__) && defined(__GNUC__)
#define WEFT_INLINE_SWITCH 1

namespace weft::detail {

/// What the side that resumes gets: the context it came from, and the
/// `data` that the switching side passed.
struct InlineTransfer {
  void* from_context;
  void* data;
};

/// Suspends the caller into a frame on its own stack and resumes `to`,
/// handing it `data` (and, for a context that has never run, the two of them
/// as its entry's arguments, rdi:rsi, as make_fcontext's entry expects).
__attribute__((always_inline)) inline InlineTransfer switch_inline(void* to, void* data) noexcept {
  void* from_context;
  void* data_in = data;
  // The frame goes just below rsp. That is no leaf function's red zone: the
  // caller has called yield_begin (a compiler uses the red zone only in
  // functions that make no call). And at the resume label rsp is what it was
  // before the asm, so the caller's unwind tables hold there too (debuggers
  // and profilers walk a suspended fiber's stack from that label).
  asm volatile(
      "leaq 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "leaq -0x38(%%rsp), %%rsp\n\t"
      "stmxcsr (%%rsp)\n\t"
      "fnstcw 0x4(%%rsp)\n\t"
      "movq %%r12, 0x08(%%rsp)\n\t"
      "movq %%r13, 0x10(%%rsp)\n\t"
      "movq %%r14, 0x18(%%rsp)\n\t"
      "movq %%r15, 0x20(%%rsp)\n\t"
      "movq %%rbx, 0x28(%%rsp)\n\t"
      "movq %%rbp, 0x30(%%rsp)\n\t"
      "movq %%rsp, %%rax\n\t"
      "movq %%rdi, %%rsp\n\t"
      "ldmxcsr (%%rsp)\n\t"
      "fldcw 0x4(%%rsp)\n\t"
      "movq 0x08(%%rsp), %%r12\n\t"
      "movq 0x10(%%rsp), %%r13\n\t"
      "movq 0x18(%%rsp), %%r14\n\t"
      "movq 0x20(%%rsp), %%r15\n\t"
      "movq 0x28(%%rsp), %%rbx\n\t"
      "movq 0x30(%%rsp), %%rbp\n\t"
      "leaq 0x38(%%rsp), %%rsp\n\t"
      "movq %%rsi, %%rdx\n\t"
      "movq %%rax, %%rdi\n\t"
      "popq %%rcx\n\t"
      "jmpq *%%rcx\n\t"
      "1:\n\t"
      : "=a"(from_context), "=d"(data_in), "+D"(to), "+S"(data)
      :
      : "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"
#ifdef __AVX512F__
        ,
        "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
        "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6",
        "k7"
#endif
  );
  return InlineTransfer{from_context, data_in};
}

}  // namespace weft::detail

#endif

#pragma once
// The one instruction sequence that moves the CPU from one fiber to another.
//
// Fibers are Boost.Context fcontexts: make_fcontext builds a new one, and a
// suspended one is a stack pointer to the frame that jump_fcontext lays out
// (callee-saved registers, then the address to resume at). On x86-64 weft
// switches with its own routine over that same frame, saving what
// jump_fcontext saves (callee-saved registers, MXCSR and the x87 control
// word, as the SysV ABI asks), but ending in `ret` where jump_fcontext ends in
// `jmp *%r8`. The `call` into the switch pushed the return-stack predictor; an
// indirect jump leaves that entry behind, so the caller's own return then
// mispredicts on every switch. With `ret` the predictor stays balanced, and a
// yield costs half as much (16 ns -> 8 ns on the benchmark machine).
// Elsewhere, jump_fcontext itself. weft::yield does not come here: it
// switches inline in its caller (weft/runtime/detail/inline_switch.hpp).

#include <boost/context/detail/fcontext.hpp>

#include <cstdint>
#include <cstring>

namespace weft::detail {

using boost::context::detail::fcontext_t;
using boost::context::detail::transfer_t;

#if defined(__x86_64__) && defined(__ELF__)
extern "C" transfer_t weft_switch_context(fcontext_t to, void* data) noexcept
    __attribute__((visibility("hidden")));
#endif

/// Suspends the calling context and resumes `to`, which receives `data` and
/// the caller's context; returns what the next context to resume this one
/// passes.
inline transfer_t switch_context(fcontext_t to, void* data) noexcept {
#if defined(__x86_64__) && defined(__ELF__)
  return weft_switch_context(to, data);
#else
  return boost::context::detail::jump_fcontext(to, data);
#endif
}

/// The calling thread's floating-point control state, as the first 8 bytes of
/// an fcontext frame hold it (x86-64: MXCSR, then the x87 control word).
inline std::uint64_t current_fp_control() noexcept {
#if defined(__x86_64__)
  struct {
    std::uint32_t mxcsr;
    std::uint16_t x87_control;
    std::uint16_t unused = 0;
  } state;
  asm volatile("stmxcsr %0" : "=m"(state.mxcsr));
  asm volatile("fnstcw %0" : "=m"(state.x87_control));
  std::uint64_t bits;
  std::memcpy(&bits, &state, sizeof bits);
  return bits;
#else
  return 0;
#endif
}

/// Makes a context fresh from make_fcontext start with `fp_control` rather than
/// with the state of whichever fiber happened to be running when it was made.
inline void set_start_fp_control([[maybe_unused]] fcontext_t fresh,
                                 [[maybe_unused]] std::uint64_t fp_control) noexcept {
#if defined(__x86_64__)
  std::memcpy(fresh, &fp_control, sizeof fp_control);
#endif
}

}  // namespace weft::detail

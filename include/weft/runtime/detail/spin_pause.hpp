#pragma once
/// The pause a busy-wait makes between two looks, so the spinning core backs
/// off (and its hyperthread sibling gets the pipeline). Not part of the
/// public contract.

namespace weft::detail {

inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace weft::detail

#pragma once
// Sanitizer annotations around every fiber switch. Boost.Context's fcontext
// carries none, so without these ASan reports false stack-buffer overflows
// and TSan loses track of which stack it is on. Compiled to nothing in
// ordinary builds.

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace weft::detail {

#ifdef WEFT_ASAN
inline constexpr bool built_with_asan = true;
#else
inline constexpr bool built_with_asan = false;
#endif
#ifdef WEFT_TSAN
inline constexpr bool built_with_tsan = true;
#else
inline constexpr bool built_with_tsan = false;
#endif

/// Bounds of the stack a context runs on, as ASan wants them.
struct StackBounds {
  const void* bottom = nullptr;
  std::size_t size = 0;
};

/// Before leaving a context for one on `target`. `dying`: the context being
/// left will never run again, so ASan may free its fake stack.
inline void annotate_switch_out([[maybe_unused]] void** fake_stack_save,
                                [[maybe_unused]] bool dying, [[maybe_unused]] StackBounds target,
                                [[maybe_unused]] void* target_tsan_fiber) noexcept {
#ifdef WEFT_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : fake_stack_save, target.bottom, target.size);
#endif
#ifdef WEFT_TSAN
  __tsan_switch_to_fiber(target_tsan_fiber, 0);
#endif
}

/// First thing after a context resumes; returns the bounds of the stack left.
inline StackBounds annotate_switch_in([[maybe_unused]] void* fake_stack) noexcept {
  StackBounds left;
#ifdef WEFT_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, &left.bottom, &left.size);
#endif
  return left;
}

/// A reused stack still carries the redzone poison of the dead fiber's frames
/// (they never returned); clear it before a new fiber runs there.
inline void asan_unpoison_stack([[maybe_unused]] void* base,
                                [[maybe_unused]] std::size_t size) noexcept {
#ifdef WEFT_ASAN
  ASAN_UNPOISON_MEMORY_REGION(base, size);
#endif
}

inline void* tsan_create_fiber() noexcept {
#ifdef WEFT_TSAN
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}

inline void* tsan_current_fiber() noexcept {
#ifdef WEFT_TSAN
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}

inline void tsan_destroy_fiber([[maybe_unused]] void* fiber) noexcept {
#ifdef WEFT_TSAN
  if (fiber) __tsan_destroy_fiber(fiber);
#endif
}

}  // namespace weft::detail

#pragma once
/// Cooperative sleep and yield.

#include <chrono>

#include <weft/runtime/detail/deadline.hpp>
#include <weft/runtime/detail/inline_switch.hpp>

namespace weft {

namespace detail {
#ifdef WEFT_INLINE_SWITCH
/// weft::yield's halves (runtime/sleep.cpp), around the switch, which is
/// inlined into the caller (detail/inline_switch.hpp). `to`: the context to
/// switch to, handing it `self`; nullptr when the yield is already over.
struct YieldSwitch {
  void* to;
  void* self;
  void* hub;
};
YieldSwitch yield_begin();
void yield_end(void* hub, void* from_context, void* from);
#else
void yield_out_of_line();
#endif
}  // namespace detail

/// Lets every fiber that is ready now run to its next suspension point, polls
/// I/O and timers, then returns. Suspension point (kill and Timeout apply).
inline void yield() {
#ifdef WEFT_INLINE_SWITCH
  const detail::YieldSwitch next = detail::yield_begin();
  if (next.to) {
    const detail::InlineTransfer back = detail::switch_inline(next.to, next.self);
    detail::yield_end(next.hub, back.from_context, back.data);
  }
#else
  detail::yield_out_of_line();
#endif
}

/// Suspends the calling fiber for at least `duration` (never less). A zero or
/// negative duration is yield(). Suspension point. From a fiber.
void sleep(std::chrono::nanoseconds duration);

template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> duration) {
  sleep(detail::saturating_ns(duration));
}

/// Suspends the calling fiber until `deadline` (steady_clock, the hub's clock).
/// Fibers sleeping until the same deadline wake in the order they slept.
/// A deadline in the past is yield(). Suspension point. From a fiber.
void sleep_until(std::chrono::steady_clock::time_point deadline);

}  // namespace weft

#pragma once
/// Cooperative sleep and yield.

#include <chrono>

#include <weft/runtime/detail/deadline.hpp>

namespace weft {

/// Lets every fiber that is ready now run to its next suspension point, polls
/// I/O and timers, then returns. Suspension point (kill and Timeout apply).
void yield();

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

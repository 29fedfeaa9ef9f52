#pragma once
/// Timeout: a deadline for everything the calling fiber does inside a scope.

#include <chrono>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/runtime/detail/deadline.hpp>
#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/errors.hpp>

namespace weft {

/// RAII scope: `Timeout t(50ms);` makes the calling fiber throw a TimeoutError
/// (for which `e.is(t)` is true) at its first suspension point after the
/// deadline. Leaving the scope cancels it. Timeouts nest; each raises only
/// itself. From a fiber; not movable (the hub points at it).
class Timeout {
 public:
  explicit Timeout(std::chrono::nanoseconds duration);
  template <class Rep, class Period>
  explicit Timeout(std::chrono::duration<Rep, Period> duration)
      : Timeout(detail::saturating_ns(duration)) {}
  ~Timeout();
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;

  /// Disarms it; a TimeoutError it raised but the fiber has not seen yet is
  /// withdrawn too.
  void cancel() noexcept;
  /// True until it fires or is cancelled.
  bool pending() const noexcept { return timer_.armed(); }

 private:
  friend class TimeoutError;
  static void fire(detail::TimerNode* timer) noexcept;

  detail::TimerNode timer_;  // first member: fire() recovers the Timeout from it
  detail::FiberBase* fiber_;
  std::uint64_t serial_;
};

/// Runs `f()` under a Timeout of `duration`; lets its TimeoutError out.
template <class Rep, class Period, class F>
auto with_timeout(std::chrono::duration<Rep, Period> duration, F&& f) -> std::invoke_result_t<F> {
  Timeout timeout(duration);
  return std::forward<F>(f)();
}

/// Runs `f()` under a Timeout of `duration`; returns `timeout_value` if that
/// Timeout (and not an outer one) fired.
template <class Rep, class Period, class F, class T>
auto with_timeout(std::chrono::duration<Rep, Period> duration, F&& f, T timeout_value)
    -> std::invoke_result_t<F> {
  Timeout timeout(duration);
  try {
    return std::forward<F>(f)();
  } catch (const TimeoutError& e) {
    if (!e.is(timeout)) throw;
    return timeout_value;
  }
}

}  // namespace weft

#pragma once
/// Durations and deadlines that saturate instead of overflowing. Every timed
/// call converts the caller's duration with saturating_ns and turns it into a
/// deadline with deadline_after, so any representable duration, in any unit,
/// behaves: `hours::max()` or `duration<double>(1e300)` waits for ever (it
/// never wraps into the past), a negative one does not wait, and a fraction
/// of a nanosecond rounds up (a timer never fires early). Not part of the
/// public contract.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ratio>
#include <stdexcept>
#include <type_traits>

namespace weft::detail {

/// `d` in nanoseconds, rounded up, clamped to what nanoseconds can hold.
/// Throws std::invalid_argument for a floating-point duration that is NaN.
template <class Rep, class Period>
std::chrono::nanoseconds saturating_ns(std::chrono::duration<Rep, Period> d) {
  using std::chrono::nanoseconds;
  using PerUnit = std::ratio_divide<Period, std::nano>;  // nanoseconds in one unit of `d`
  constexpr auto max = std::numeric_limits<nanoseconds::rep>::max();
  constexpr auto min = std::numeric_limits<nanoseconds::rep>::min();
  if constexpr (std::is_floating_point_v<Rep> || (PerUnit::num != 1 && PerUnit::den != 1)) {
    if constexpr (std::is_floating_point_v<Rep>) {
      if (std::isnan(d.count()))
        throw std::invalid_argument("weft: a duration that is not a number");
    }
    const long double ns =
        std::ceil(static_cast<long double>(d.count()) * PerUnit::num / PerUnit::den);
    if (ns >= static_cast<long double>(max)) return nanoseconds::max();
    if (ns <= static_cast<long double>(min)) return nanoseconds::min();
    return nanoseconds(static_cast<nanoseconds::rep>(ns));
  } else if constexpr (PerUnit::den == 1) {  // whole nanoseconds per unit: may overflow
    nanoseconds::rep ns;
    if (__builtin_mul_overflow(d.count(), PerUnit::num, &ns)) {
      if constexpr (std::is_signed_v<Rep>) {
        if (d.count() < 0) return nanoseconds::min();
      }
      return nanoseconds::max();
    }
    return nanoseconds(ns);
  } else {  // finer than a nanosecond: dividing a 64-bit count by 2 or more cannot overflow
    return std::chrono::ceil<nanoseconds>(d);
  }
}

/// The current hub's clock (weft::now(), in ns since steady_clock's epoch) +
/// `timeout`, clamped to the largest deadline, which never passes (not even
/// on a virtual clock); a zero or negative timeout gives now.
std::int64_t deadline_after(std::chrono::nanoseconds timeout) noexcept;

template <class Rep, class Period>
std::int64_t deadline_after(std::chrono::duration<Rep, Period> timeout) {
  return deadline_after(saturating_ns(timeout));
}

}  // namespace weft::detail

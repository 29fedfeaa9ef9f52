#pragma once
/// The absolute schedule of PeriodicThread and PeriodicProcess: slot k
/// starts at origin + k·interval (steady_clock nanoseconds), saturated, so a
/// slot past the end of the clock never comes. A call that overran the next
/// slot is followed at once by the latest slot already due, and the ones it
/// skipped are dropped (no catch-up burst).

#include <algorithm>
#include <cstdint>
#include <limits>

namespace weft::detail {

class PeriodicSchedule {
 public:
  PeriodicSchedule(std::int64_t origin_ns, std::int64_t interval_ns) noexcept
      : origin_(origin_ns), step_(interval_ns) {}

  /// When the current slot starts (the first: at the origin).
  std::int64_t due() const noexcept { return slot(k_); }

  /// After a call that ended at `now_ns`: on to the next slot, or to the
  /// latest one already due.
  void advance(std::int64_t now_ns) noexcept {
    std::int64_t next = k_ + 1;
    if (step_ > 0 && slot(next) < now_ns) next = std::max(next, (now_ns - origin_) / step_);
    k_ = next;
  }

 private:
  std::int64_t slot(std::int64_t k) const noexcept {
    std::int64_t offset;
    if (__builtin_mul_overflow(k, step_, &offset) ||
        offset > std::numeric_limits<std::int64_t>::max() - origin_) {
      return std::numeric_limits<std::int64_t>::max();
    }
    return origin_ + offset;
  }

  const std::int64_t origin_;
  const std::int64_t step_;
  std::int64_t k_ = 0;
};

}  // namespace weft::detail

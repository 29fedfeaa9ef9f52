#pragma once
/// Exceptions that weft's runtime throws.

#include <cstdint>
#include <stdexcept>

namespace weft {

/// Thrown inside a fiber by `GreenThread::kill()` at its suspension point.
///
/// Deliberately NOT derived from `std::exception`: a `catch (const
/// std::exception&)` in user code must not swallow a kill (eventlet's
/// GreenletExit is a BaseException for the same reason). A fiber may catch it
/// to clean up, and may even return a value after catching it.
class FiberExit {
 public:
  const char* what() const noexcept { return "weft::FiberExit: fiber killed"; }
};

/// Thrown by calls that must run inside a hub (a fiber, or a thread that runs
/// a `Hub`) when there is none on the calling thread.
class NoHubError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class Timeout;

/// Thrown at the first suspension point after a `Timeout`'s deadline.
/// `is(t)` says whether it was `t` that fired (Timeouts nest).
class TimeoutError : public std::runtime_error {
 public:
  explicit TimeoutError(std::uint64_t timeout_serial);
  bool is(const Timeout& timeout) const noexcept;
  /// Which Timeout raised it: serials are unique in the process and grow with
  /// every Timeout made on one hub, so among a fiber's own a smaller one
  /// belongs to an older (outer) scope.
  std::uint64_t serial() const noexcept { return timeout_serial_; }

 private:
  std::uint64_t timeout_serial_;
};

namespace detail {
/// No more than the serial of any Timeout made on this thread's hub from now on.
std::uint64_t next_timeout_serial() noexcept;
}  // namespace detail

}  // namespace weft

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
  /// `fiber_id`: the id of the fiber whose Timeout it was (0: not known).
  explicit TimeoutError(std::uint64_t timeout_serial, std::uint64_t fiber_id = 0);
  bool is(const Timeout& timeout) const noexcept;
  /// Which Timeout raised it: serials are unique in the process and grow with
  /// every Timeout made on one hub, so among a fiber's own a smaller one
  /// belongs to an older (outer) scope.
  std::uint64_t serial() const noexcept { return timeout_serial_; }
  /// The fiber whose Timeout raised it: a TimeoutError handed on to another
  /// fiber (by GreenThread::wait) still names where it came from.
  std::uint64_t fiber_id() const noexcept { return fiber_id_; }

 private:
  std::uint64_t timeout_serial_;
  std::uint64_t fiber_id_;
};

namespace detail {
/// No more than the serial of any Timeout made on this thread's hub from now on.
std::uint64_t next_timeout_serial() noexcept;
/// Was `error` raised by a Timeout that the calling fiber set before it took
/// `first_own_timeout` from next_timeout_serial(), one around the caller's
/// work rather than inside it? One from another fiber never is.
bool from_enclosing_timeout(const TimeoutError& error, std::uint64_t first_own_timeout) noexcept;
}  // namespace detail

}  // namespace weft

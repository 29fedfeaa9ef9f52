#pragma once
/// Semaphore and BoundedSemaphore: counted permits, FIFO hand-off. eventlet's
/// semaphores without barging (a release goes to the oldest waiter).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include <weft/runtime/detail/parking.hpp>

namespace weft {

/// `count` permits. acquire() takes one, waiting (a suspension point) while
/// none is free or earlier acquirers still wait; release() gives one back,
/// straight to the oldest waiter if there is one. Acquiring is done by fibers
/// (any hub; try_acquire from anywhere); release() may be called from any
/// fiber of any hub or from a plain OS thread. A waiter that a kill or Timeout
/// reaches never consumes a permit: one handed to it just before is passed on.
class Semaphore {
 public:
  /// Throws std::invalid_argument for a negative count.
  explicit Semaphore(std::ptrdiff_t count = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes a permit, waiting for one if needed. From a fiber.
  void acquire();
  /// Takes a permit if one is free and nobody waits; never suspends.
  bool try_acquire();
  /// As acquire(), giving up after `timeout` (false). A timeout of zero or
  /// less only tries. From a fiber.
  template <class Rep, class Period>
  bool acquire_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire_for_ns(detail::saturating_ns(timeout));
  }
  /// Gives a permit back. Never suspends. BoundedSemaphore throws
  /// std::logic_error when that would exceed its initial count; any
  /// semaphore throws std::overflow_error at PTRDIFF_MAX permits.
  void release();
  /// Free permits minus waiting fibers (negative when fibers wait).
  std::ptrdiff_t balance() const;
  /// No permit free?
  bool locked() const;

  // BasicLockable / Lockable, so std::lock_guard and std::unique_lock work.
  void lock() { acquire(); }
  bool try_lock() { return try_acquire(); }
  void unlock() { release(); }

 protected:
  Semaphore(std::ptrdiff_t count, std::ptrdiff_t limit);

 private:
  bool acquire_for_ns(std::chrono::nanoseconds timeout);
  bool acquire_until(std::optional<std::int64_t> deadline_ns, const char* reason);
  void release_locked();

  mutable detail::SpinLock lock_;
  std::ptrdiff_t count_;
  std::ptrdiff_t limit_;  // < 0: unbounded
  detail::ParkingLot waiters_;
};

/// A Semaphore that may not be released above its initial count: that
/// release() throws std::logic_error.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::ptrdiff_t count = 1) : Semaphore(count, count) {}
};

}  // namespace weft

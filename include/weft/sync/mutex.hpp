#pragma once
/// Mutex: mutual exclusion between fibers (of one hub or of several), handed
/// over FIFO.

#include <chrono>
#include <cstdint>
#include <optional>

#include <weft/runtime/detail/parking.hpp>

namespace weft {

class ConditionVariable;

/// A lock held by one fiber at a time; meets Lockable, so std::lock_guard,
/// std::unique_lock and std::scoped_lock work. Waiting is a suspension point
/// (kill and Timeout interrupt it; an interrupted waiter never ends up owning
/// the lock). unlock() hands the lock straight to the oldest waiter, so a
/// fiber that unlocks and locks again at once queues behind it: no starvation.
/// Outside fibers, only try_lock (and the unlock that follows) may be used.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  /// Takes the lock, waiting for it if needed. From a fiber. Throws
  /// std::system_error (resource_deadlock_would_occur) if the caller holds it.
  void lock();
  /// Takes the lock if it is free and nobody waits; never suspends.
  bool try_lock();
  /// As lock(), giving up after `timeout` (false). From a fiber.
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return try_lock_for_ns(detail::saturating_ns(timeout));
  }
  /// Releases the lock. Throws std::system_error (operation_not_permitted) if
  /// the caller does not hold it.
  void unlock();

 private:
  friend class ConditionVariable;

  bool try_lock_for_ns(std::chrono::nanoseconds timeout);
  bool lock_until(std::optional<std::int64_t> deadline_ns, const char* reason);
  void unlock_locked();
  /// Takes the lock again after a condition wait; a kill or Timeout stays
  /// pending until the lock is held.
  void relock_after_wait();

  detail::SpinLock lock_;
  const void* owner_ = nullptr;  // the holding fiber (or thread), nullptr when free
  struct Waiter : detail::Parked {
    const void* actor = nullptr;
  };
  detail::ParkingLot waiters_;
};

}  // namespace weft

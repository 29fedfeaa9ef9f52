#pragma once
/// ConditionVariable: fibers wait, holding a weft::Mutex, until notified.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/parking.hpp>
#include <weft/sync/mutex.hpp>

namespace weft {

/// std::condition_variable's interface over weft::Mutex. wait() is a
/// suspension point; the mutex is held again before wait returns or throws
/// (a kill or Timeout that arrives meanwhile is thrown once it is). Waiters
/// are notified oldest first, and a notify_one that reaches a waiter being
/// interrupted passes on to the next. notify_one/notify_all may be called
/// from any fiber of any hub or from a plain OS thread, holding the mutex or
/// not. No spurious wake-ups, but wait with a predicate as usual.
class ConditionVariable {
 public:
  ConditionVariable() = default;
  ConditionVariable(const ConditionVariable&) = delete;
  ConditionVariable& operator=(const ConditionVariable&) = delete;

  void notify_one();
  void notify_all();

  /// Releases `lock`, waits to be notified, takes `lock` again. From a fiber;
  /// `lock` must own its mutex (std::system_error otherwise).
  void wait(std::unique_lock<Mutex>& lock);
  template <class Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate ready) {
    while (!ready())
      wait(lock);
  }

  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock,
                          std::chrono::duration<Rep, Period> timeout) {
    return wait_until_ns(lock, detail::deadline_after(timeout));
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> timeout,
                Predicate ready) {
    const std::int64_t deadline = detail::deadline_after(timeout);
    while (!ready()) {
      if (wait_until_ns(lock, deadline) == std::cv_status::timeout) return ready();
    }
    return true;
  }
  template <class Duration>
  std::cv_status wait_until(std::unique_lock<Mutex>& lock,
                            std::chrono::time_point<std::chrono::steady_clock, Duration> deadline) {
    const auto now = weft::now();
    if (deadline <= now) return wait_for(lock, std::chrono::nanoseconds::zero());
    return wait_until_ns(lock, detail::saturating_ns(deadline.time_since_epoch()).count());
  }

 private:
  std::cv_status wait_until_ns(std::unique_lock<Mutex>& lock, std::optional<std::int64_t> deadline);

  detail::SpinLock lock_;
  detail::ParkingLot waiters_;
};

}  // namespace weft

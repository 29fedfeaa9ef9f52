#include <weft/sync/condition_variable.hpp>

#include <system_error>

namespace weft {

void ConditionVariable::notify_one() {
  detail::SpinGuard guard(lock_);
  waiters_.unpark_one();
}

void ConditionVariable::notify_all() {
  detail::SpinGuard guard(lock_);
  waiters_.unpark_all();
}

void ConditionVariable::wait(std::unique_lock<Mutex>& lock) {
  wait_until_ns(lock, std::nullopt);
}

std::cv_status ConditionVariable::wait_until_ns(std::unique_lock<Mutex>& lock,
                                                std::optional<std::int64_t> deadline) {
  if (!lock.owns_lock()) {
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "weft::ConditionVariable::wait: the lock is not held");
  }
  // Before giving up the mutex: an interrupt already pending throws with it held.
  detail::throw_if_interrupted("ConditionVariable::wait");
  Mutex& mutex = *lock.mutex();
  detail::Parked waiter;
  detail::ParkEnd end;
  {
    detail::SpinGuard guard(lock_);
    // Unlocked only once queued, under our lock: a notify cannot slip in between.
    mutex.unlock();
    end = waiters_.park(guard, waiter, "ConditionVariable::wait", deadline);
    if (end == detail::ParkEnd::unparked_and_interrupted) waiters_.unpark_one();  // pass it on
  }
  mutex.relock_after_wait();
  if (end == detail::ParkEnd::interrupted || end == detail::ParkEnd::unparked_and_interrupted) {
    detail::throw_pending_interrupt();
  }
  return end == detail::ParkEnd::timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
}

}  // namespace weft

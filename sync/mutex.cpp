#include <weft/sync/mutex.hpp>

#include <system_error>

namespace weft {

void Mutex::lock() {
  lock_until(std::nullopt, "Mutex::lock");
}

bool Mutex::try_lock() {
  detail::SpinGuard lock(lock_);
  if (owner_ || !waiters_.empty()) return false;
  owner_ = detail::current_actor();
  return true;
}

bool Mutex::try_lock_for_ns(std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return try_lock();
  return lock_until(detail::deadline_after(timeout), "Mutex::try_lock_for");
}

bool Mutex::lock_until(std::optional<std::int64_t> deadline_ns, const char* reason) {
  detail::require_fiber(reason);
  const void* self = detail::current_actor();
  detail::SpinGuard lock(lock_);
  if (!owner_ && waiters_.empty()) {
    owner_ = self;
    return true;
  }
  if (owner_ == self) {
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            "weft::Mutex::lock: the calling fiber already holds it");
  }
  Waiter waiter;
  waiter.actor = self;
  // unlock() makes the waiter the owner; one leaving passes it on.
  return waiters_.park_settled(lock, waiter, reason, deadline_ns, [&] { unlock_locked(); });
}

void Mutex::unlock() {
  detail::SpinGuard lock(lock_);
  if (owner_ != detail::current_actor()) {
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "weft::Mutex::unlock: the caller does not hold the lock");
  }
  unlock_locked();
}

void Mutex::unlock_locked() {
  auto* next = static_cast<Waiter*>(waiters_.front());
  owner_ = next ? next->actor : nullptr;
  if (next) waiters_.unpark_one();
}

void Mutex::relock_after_wait() {
  const void* self = detail::current_actor();
  detail::SpinGuard lock(lock_);
  if (!owner_ && waiters_.empty()) {
    owner_ = self;
    return;
  }
  Waiter waiter;
  waiter.actor = self;
  waiters_.park_ignoring_interrupts(lock, waiter, "Mutex::lock (after a condition wait)");
}

}  // namespace weft

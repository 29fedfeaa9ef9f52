#include <weft/sync/semaphore.hpp>

#include <limits>
#include <stdexcept>
#include <string>

namespace weft {

namespace {

std::ptrdiff_t checked_count(std::ptrdiff_t count) {
  if (count < 0) {
    throw std::invalid_argument("weft::Semaphore: negative count " + std::to_string(count));
  }
  return count;
}

}  // namespace

Semaphore::Semaphore(std::ptrdiff_t count) : count_(checked_count(count)), limit_(-1) {}

Semaphore::Semaphore(std::ptrdiff_t count, std::ptrdiff_t limit)
    : count_(checked_count(count)), limit_(limit) {}

void Semaphore::acquire() {
  acquire_until(std::nullopt, "Semaphore::acquire");
}

bool Semaphore::try_acquire() {
  detail::SpinGuard lock(lock_);
  if (count_ <= 0 || !waiters_.empty()) return false;
  --count_;
  return true;
}

bool Semaphore::acquire_for_ns(std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return try_acquire();
  return acquire_until(detail::deadline_after(timeout), "Semaphore::acquire_for");
}

bool Semaphore::acquire_until(std::optional<std::int64_t> deadline_ns, const char* reason) {
  detail::require_fiber(reason);
  detail::SpinGuard lock(lock_);
  // No barging: a newcomer queues behind earlier waiters even if a permit is
  // free (eventlet#136).
  if (count_ > 0 && waiters_.empty()) {
    --count_;
    return true;
  }
  detail::Parked waiter;
  // release() hands its permit to the waiter; one leaving passes it on.
  return waiters_.park_settled(lock, waiter, reason, deadline_ns, [&] { release_locked(); });
}

void Semaphore::release() {
  detail::SpinGuard lock(lock_);
  release_locked();
}

void Semaphore::release_locked() {
  if (waiters_.unpark_one()) return;  // handed straight to the oldest waiter
  if (count_ == std::numeric_limits<std::ptrdiff_t>::max()) {
    throw std::overflow_error(
        "weft::Semaphore::release: the count is at its maximum (PTRDIFF_MAX)");
  }
  if (limit_ >= 0 && count_ >= limit_) {
    throw std::logic_error("weft::BoundedSemaphore: released too many times (above its count " +
                           std::to_string(limit_) + ")");
  }
  ++count_;
}

std::ptrdiff_t Semaphore::balance() const {
  detail::SpinGuard lock(lock_);
  return count_ - static_cast<std::ptrdiff_t>(waiters_.size());
}

bool Semaphore::locked() const {
  detail::SpinGuard lock(lock_);
  return count_ <= 0;
}

}  // namespace weft

#include <weft/sync/capacity_limiter.hpp>

#include <stdexcept>

namespace weft {

namespace {

std::size_t checked_total(std::size_t total_tokens) {
  if (total_tokens < 1) throw std::invalid_argument("weft::CapacityLimiter: total_tokens < 1");
  return total_tokens;
}

}  // namespace

CapacityLimiter::CapacityLimiter(std::size_t total_tokens) : total_(checked_total(total_tokens)) {}

void CapacityLimiter::acquire_on_behalf_of(const void* borrower) {
  acquire_until(borrower, std::nullopt);
}

bool CapacityLimiter::try_acquire_on_behalf_of(const void* borrower) {
  detail::SpinGuard lock(lock_);
  check_not_borrowing(borrower);
  if (borrowers_.size() >= total_ || !waiters_.empty()) return false;
  borrowers_.insert(borrower);
  return true;
}

bool CapacityLimiter::acquire_until(const void* borrower, std::optional<std::int64_t> deadline_ns) {
  detail::SpinGuard lock(lock_);
  check_not_borrowing(borrower);
  if (borrowers_.size() < total_ && waiters_.empty()) {
    borrowers_.insert(borrower);
    return true;
  }
  Waiter waiter;
  waiter.borrower = borrower;
  switch (waiters_.park(lock, waiter, "CapacityLimiter::acquire", deadline_ns)) {
    case detail::ParkEnd::unparked:
      return true;  // the releaser made us a borrower
    case detail::ParkEnd::timed_out:
      return false;
    case detail::ParkEnd::unparked_and_interrupted:
      release_locked(borrower);
      [[fallthrough]];
    case detail::ParkEnd::interrupted:
      break;
  }
  lock.unlock();
  detail::throw_pending_interrupt();
}

void CapacityLimiter::release_on_behalf_of(const void* borrower) {
  detail::SpinGuard lock(lock_);
  release_locked(borrower);
}

void CapacityLimiter::release_locked(const void* borrower) {
  if (borrowers_.erase(borrower) == 0) {
    throw std::logic_error(
        "weft::CapacityLimiter::release: this borrower does not hold any of its tokens");
  }
  hand_out_free_tokens();
}

void CapacityLimiter::hand_out_free_tokens() {
  while (borrowers_.size() < total_ && !waiters_.empty()) {
    auto* next = static_cast<Waiter*>(waiters_.front());
    borrowers_.insert(next->borrower);
    waiters_.unpark_one();
  }
}

void CapacityLimiter::check_not_borrowing(const void* borrower) const {
  if (borrowers_.count(borrower) != 0) {
    throw std::logic_error(
        "weft::CapacityLimiter::acquire: this borrower already holds one of its tokens");
  }
}

std::size_t CapacityLimiter::total_tokens() const {
  detail::SpinGuard lock(lock_);
  return total_;
}

void CapacityLimiter::set_total_tokens(std::size_t total_tokens) {
  detail::SpinGuard lock(lock_);
  total_ = checked_total(total_tokens);
  hand_out_free_tokens();
}

std::size_t CapacityLimiter::borrowed_tokens() const {
  detail::SpinGuard lock(lock_);
  return borrowers_.size();
}

std::size_t CapacityLimiter::available_tokens() const {
  detail::SpinGuard lock(lock_);
  return borrowers_.size() < total_ ? total_ - borrowers_.size() : 0;
}

std::size_t CapacityLimiter::waiting() const {
  detail::SpinGuard lock(lock_);
  return waiters_.size();
}

}  // namespace weft

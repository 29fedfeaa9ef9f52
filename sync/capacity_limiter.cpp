#include <weft/sync/capacity_limiter.hpp>

#include <stdexcept>
#include <unordered_set>

namespace weft {

namespace detail {

// Everything a limiter is, apart from its name: shared with the run_sync
// calls that outlive their fiber (and perhaps the limiter) and still have to
// give their token back.
class CapacityLimiterState {
 public:
  explicit CapacityLimiterState(std::size_t total_tokens) : total_(checked(total_tokens)) {}

  bool try_acquire(const void* borrower) {
    SpinGuard lock(lock_);
    check_not_borrowing(borrower);
    if (borrowers_.size() >= total_ || !waiters_.empty()) return false;
    borrowers_.insert(borrower);
    return true;
  }

  bool acquire_until(const void* borrower, std::optional<std::int64_t> deadline_ns) {
    require_fiber("weft::CapacityLimiter::acquire");
    SpinGuard lock(lock_);
    check_not_borrowing(borrower);
    if (borrowers_.size() < total_ && waiters_.empty()) {
      borrowers_.insert(borrower);
      return true;
    }
    Waiter waiter;
    waiter.borrower = borrower;
    // The releaser makes the waiter a borrower; one leaving passes it on.
    return waiters_.park_settled(lock, waiter, "CapacityLimiter::acquire", deadline_ns,
                                 [&] { release_locked(borrower); });
  }

  void release(const void* borrower) {
    SpinGuard lock(lock_);
    release_locked(borrower);
  }

  std::size_t total_tokens() const {
    SpinGuard lock(lock_);
    return total_;
  }

  void set_total_tokens(std::size_t total_tokens) {
    SpinGuard lock(lock_);
    total_ = checked(total_tokens);
    hand_out_free_tokens();
  }

  std::size_t borrowed_tokens() const {
    SpinGuard lock(lock_);
    return borrowers_.size();
  }

  std::size_t available_tokens() const {
    SpinGuard lock(lock_);
    return borrowers_.size() < total_ ? total_ - borrowers_.size() : 0;
  }

  std::size_t waiting() const {
    SpinGuard lock(lock_);
    return waiters_.size();
  }

 private:
  struct Waiter : Parked {
    const void* borrower = nullptr;
  };

  static std::size_t checked(std::size_t total_tokens) {
    if (total_tokens < 1) throw std::invalid_argument("weft::CapacityLimiter: total_tokens < 1");
    return total_tokens;
  }

  void check_not_borrowing(const void* borrower) const {
    if (borrowers_.count(borrower) != 0) {
      throw std::logic_error(
          "weft::CapacityLimiter::acquire: this borrower already holds one of its tokens");
    }
  }

  void release_locked(const void* borrower) {
    if (borrowers_.erase(borrower) == 0) {
      throw std::logic_error(
          "weft::CapacityLimiter::release: this borrower does not hold any of its tokens");
    }
    hand_out_free_tokens();
  }

  void hand_out_free_tokens() {
    while (borrowers_.size() < total_ && !waiters_.empty()) {
      auto* next = static_cast<Waiter*>(waiters_.front());
      borrowers_.insert(next->borrower);
      waiters_.unpark_one();
    }
  }

  mutable SpinLock lock_;
  std::size_t total_;
  std::unordered_set<const void*> borrowers_;
  ParkingLot waiters_;
};

void release_capacity_token(CapacityLimiterState& state, const void* borrower) {
  state.release(borrower);
}

}  // namespace detail

CapacityLimiter::CapacityLimiter(std::size_t total_tokens)
    : state_(std::make_shared<detail::CapacityLimiterState>(total_tokens)) {}

CapacityLimiter::~CapacityLimiter() = default;

void CapacityLimiter::acquire_on_behalf_of(const void* borrower) {
  state_->acquire_until(borrower, std::nullopt);
}

bool CapacityLimiter::acquire_until(const void* borrower, std::optional<std::int64_t> deadline_ns) {
  return state_->acquire_until(borrower, deadline_ns);
}

bool CapacityLimiter::try_acquire_on_behalf_of(const void* borrower) {
  return state_->try_acquire(borrower);
}

void CapacityLimiter::release_on_behalf_of(const void* borrower) {
  state_->release(borrower);
}

std::size_t CapacityLimiter::total_tokens() const {
  return state_->total_tokens();
}

void CapacityLimiter::set_total_tokens(std::size_t total_tokens) {
  state_->set_total_tokens(total_tokens);
}

std::size_t CapacityLimiter::borrowed_tokens() const {
  return state_->borrowed_tokens();
}

std::size_t CapacityLimiter::available_tokens() const {
  return state_->available_tokens();
}

std::size_t CapacityLimiter::waiting() const {
  return state_->waiting();
}

}  // namespace weft

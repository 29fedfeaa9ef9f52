#pragma once
/// CapacityLimiter: at most N borrowers at once (trio's CapacityLimiter), the
/// bound to_thread::run_sync uses for its threads.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_set>

#include <weft/sync/detail/parking.hpp>

namespace weft {

/// `total_tokens` tokens; each borrower holds at most one. A borrower is the
/// calling fiber (or, outside fibers, the calling thread) unless named
/// explicitly with the *_on_behalf_of forms. Acquiring waits (a suspension
/// point) FIFO; a release hands the token straight to the oldest waiter. A
/// waiter that a kill or Timeout reaches never keeps a token. Releasing may be
/// done from any fiber of any hub or from a plain OS thread.
class CapacityLimiter {
 public:
  /// Throws std::invalid_argument if total_tokens < 1.
  explicit CapacityLimiter(std::size_t total_tokens);
  CapacityLimiter(const CapacityLimiter&) = delete;
  CapacityLimiter& operator=(const CapacityLimiter&) = delete;

  /// Takes a token for the caller, waiting if none is free. From a fiber.
  /// Throws std::logic_error if the borrower already holds one.
  void acquire() { acquire_on_behalf_of(detail::current_actor()); }
  void acquire_on_behalf_of(const void* borrower);
  /// As acquire, giving up after `timeout` (false). From a fiber.
  template <class Rep, class Period>
  bool acquire_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(
        detail::current_actor(),
        detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
  }
  /// Takes a token if one is free and nobody waits; never suspends.
  bool try_acquire() { return try_acquire_on_behalf_of(detail::current_actor()); }
  bool try_acquire_on_behalf_of(const void* borrower);
  /// Gives the borrower's token back. Throws std::logic_error if it holds none.
  void release() { release_on_behalf_of(detail::current_actor()); }
  void release_on_behalf_of(const void* borrower);

  std::size_t total_tokens() const;
  /// Changes the bound; more tokens wake waiters at once, fewer take effect
  /// as borrowers release. Throws std::invalid_argument if below 1.
  void set_total_tokens(std::size_t total_tokens);
  std::size_t borrowed_tokens() const;
  std::size_t available_tokens() const;
  /// Fibers waiting for a token.
  std::size_t waiting() const;

 private:
  struct Waiter : detail::Parked {
    const void* borrower = nullptr;
  };

  bool acquire_until(const void* borrower, std::optional<std::int64_t> deadline_ns);
  void check_not_borrowing(const void* borrower) const;
  void hand_out_free_tokens();
  void release_locked(const void* borrower);

  mutable detail::SpinLock lock_;
  std::size_t total_;
  std::unordered_set<const void*> borrowers_;
  detail::ParkingLot waiters_;
};

}  // namespace weft

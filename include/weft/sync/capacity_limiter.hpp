#pragma once
/// CapacityLimiter: at most N borrowers at once (trio's CapacityLimiter), the
/// bound to_thread::run_sync uses for its threads.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include <weft/runtime/detail/parking.hpp>

namespace weft {

namespace detail {
class CapacityLimiterState;
class ThreadCall;
/// Gives `borrower`'s token back to a limiter's state, which may have
/// outlived the limiter (an abandoned run_sync call).
void release_capacity_token(CapacityLimiterState& state, const void* borrower);
}  // namespace detail

/// `total_tokens` tokens; each borrower holds at most one. A borrower is the
/// calling fiber (or, outside fibers, the calling thread) unless named
/// explicitly with the *_on_behalf_of forms. Acquiring waits (a suspension
/// point) FIFO; a release hands the token straight to the oldest waiter. A
/// waiter that a kill or Timeout reaches never keeps a token. Releasing may be
/// done from any fiber of any hub or from a plain OS thread.
///
/// A to_thread::run_sync call abandoned by its fiber keeps the limiter's
/// state alive until its function ends and gives the token back, so the
/// limiter itself may be destroyed (leave the caller's scope) before then.
class CapacityLimiter {
 public:
  /// Throws std::invalid_argument if total_tokens < 1.
  explicit CapacityLimiter(std::size_t total_tokens);
  ~CapacityLimiter();
  CapacityLimiter(const CapacityLimiter&) = delete;
  CapacityLimiter& operator=(const CapacityLimiter&) = delete;

  /// Takes a token for the caller, waiting if none is free. From a fiber.
  /// Throws std::logic_error if the borrower already holds one.
  void acquire() { acquire_on_behalf_of(detail::current_actor()); }
  void acquire_on_behalf_of(const void* borrower);
  /// As acquire, giving up after `timeout` (false). From a fiber.
  template <class Rep, class Period>
  bool acquire_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(detail::current_actor(), detail::deadline_after(timeout));
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
  friend class detail::ThreadCall;  // shares state_ with the calls it abandons

  bool acquire_until(const void* borrower, std::optional<std::int64_t> deadline_ns);

  std::shared_ptr<detail::CapacityLimiterState> state_;
};

}  // namespace weft

#pragma once
/// Event<T>: a one-shot value (or exception) that fibers wait for. eventlet's
/// Event, with FIFO wake-up order.

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/runtime/detail/parking.hpp>

namespace weft {

/// Holds nothing until send() or send_exception(), then every waiter (present
/// and future, until reset()) gets a copy of the value or the exception.
/// Waiting is done by fibers (of any hub); send, send_exception, ready and
/// reset may be called from any fiber of any hub or from a plain OS thread.
/// Waiters are woken oldest first; a woken waiter that a kill or Timeout
/// reaches before it resumes throws that instead (eventlet's deferred wake-up).
template <class T = void>
class Event {
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  using ForResult = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Stores `value` and wakes every waiter. Never suspends. Throws
  /// std::logic_error if the event was already sent and not reset.
  template <class U = T>
  requires(!std::is_void_v<U>) void send(U value) { deliver(Stored(std::move(value)), nullptr); }
  template <class U = T>
  requires std::is_void_v<U>
  void send() { deliver(Stored{}, nullptr); }
  /// As send(), with an exception that every wait() rethrows. A null
  /// exception_ptr is an error (std::invalid_argument).
  void send_exception(std::exception_ptr error) {
    if (!error) throw std::invalid_argument("weft::Event::send_exception: null exception");
    deliver(std::nullopt, std::move(error));
  }

  /// Waits until the event is sent (a suspension point unless it already
  /// was); returns the value or rethrows the exception sent. From a fiber.
  T wait() {
    detail::require_fiber("weft::Event::wait");
    detail::SpinGuard lock(lock_);
    if (sent()) return take(value_, error_);
    Waiter waiter;
    waiters_.park_settled(lock, waiter, "Event::wait", std::nullopt, [] {});
    return take(std::move(waiter.value), waiter.error);
  }

  /// As wait(), giving up after `timeout`: an empty optional (false for
  /// Event<void>) then, never an exception. From a fiber.
  template <class Rep, class Period>
  ForResult wait_for(std::chrono::duration<Rep, Period> timeout) {
    detail::require_fiber("weft::Event::wait_for");
    const auto deadline = detail::deadline_after(timeout);
    detail::SpinGuard lock(lock_);
    if (!sent()) {
      Waiter waiter;
      // A sent value is not used up by a waiter: nothing to give back.
      if (!waiters_.park_settled(lock, waiter, "Event::wait_for", deadline, [] {})) {
        return ForResult{};
      }
      return take_for(std::move(waiter.value), waiter.error);
    }
    return take_for(value_, error_);
  }

  /// Has it been sent (since the last reset)? Any thread.
  bool ready() const {
    detail::SpinGuard lock(lock_);
    return sent();
  }
  /// Was it sent with an exception? Any thread.
  bool has_exception() const {
    detail::SpinGuard lock(lock_);
    return error_ != nullptr;
  }
  /// Makes a sent event unsent again, so it can be sent once more. Waiters
  /// already woken keep what they were sent. Throws std::logic_error on an
  /// event that has not been sent (as eventlet asserts). Any thread.
  void reset() {
    detail::SpinGuard lock(lock_);
    if (!sent()) throw std::logic_error("weft::Event::reset: the event has not been sent");
    value_.reset();
    error_ = nullptr;
  }

 private:
  struct Waiter : detail::Parked {
    std::optional<Stored> value;
    std::exception_ptr error;
  };

  void deliver(std::optional<Stored> value, std::exception_ptr error) {
    detail::SpinGuard lock(lock_);
    if (sent()) throw std::logic_error("weft::Event: sent twice without a reset in between");
    // Copy into every waiter first: a copy that throws leaves the event unsent.
    waiters_.for_each([&](detail::Parked* record) {
      auto* waiter = static_cast<Waiter*>(record);
      waiter->value = value;
      waiter->error = error;
    });
    value_ = std::move(value);
    error_ = std::move(error);
    waiters_.unpark_all();
  }

  template <class Value>
  static T take(Value&& value, const std::exception_ptr& error) {
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) return *std::forward<Value>(value);
  }
  template <class Value>
  static ForResult take_for(Value&& value, const std::exception_ptr& error) {
    if (error) std::rethrow_exception(error);
    if constexpr (std::is_void_v<T>) {
      return true;
    } else {
      return ForResult(*std::forward<Value>(value));
    }
  }

  // Sent: with a value (value_ holds one) or with an exception (error_).
  bool sent() const noexcept { return value_.has_value() || error_ != nullptr; }

  mutable detail::SpinLock lock_;
  std::optional<Stored> value_;
  std::exception_ptr error_;
  detail::ParkingLot waiters_;
};

}  // namespace weft

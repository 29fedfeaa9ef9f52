#include <weft/runtime/looping_call.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include <weft/runtime/log.hpp>
#include <weft/runtime/timeout.hpp>

#include "runtime/exception_text.hpp"

namespace weft {

namespace {

std::string seconds_text(double seconds) {
  char text[64];
  std::snprintf(text, sizeof text, "%.2f", seconds);
  return text;
}

// oslo's _safe_wrapper: with stop_on_exception false, a failed call is
// logged and the loop goes on. Neither the end of the loop (LoopingCallDone)
// nor a kill is a failure.
template <class Call>
bool call_logging_failure(const char* kind, bool stop_on_exception, Call&& call) {
  if (stop_on_exception) {
    call();
    return true;
  }
  try {
    call();
    return true;
  } catch (const LoopingCallDoneBase&) {
    throw;
  } catch (const FiberExit&) {
    throw;
  } catch (...) {
    detail::log_looping_call_failure(kind, std::current_exception());
    return false;
  }
}

double default_gauss(double mean, double stddev) {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::normal_distribution<double>(mean, stddev)(engine);
}

}  // namespace

LoopingCallTimeOut::LoopingCallTimeOut(std::chrono::duration<double> after)
    : std::runtime_error("Looping call timed out after " + seconds_text(after.count()) +
                         " seconds") {}

namespace detail {

std::chrono::nanoseconds looping_call_duration(Seconds value, const char* what) {
  if (std::isnan(value.count()) || value.count() < 0) {
    throw std::invalid_argument(std::string("weft looping call: ") + what +
                                " must be a duration of zero or more, not " +
                                std::to_string(value.count()) + " s");
  }
  const double ns = std::round(value.count() * 1e9);
  // 2^63 as a double: anything from there on does not fit.
  if (ns >= static_cast<double>(std::numeric_limits<std::int64_t>::max()))
    return std::chrono::nanoseconds::max();
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

TimePoint later(TimePoint when, std::chrono::nanoseconds delay) noexcept {
  if (delay > TimePoint::max() - when) return TimePoint::max();
  return when + delay;
}

void LoopRunBase::stop() noexcept {
  if (!stopped_.exchange(true, std::memory_order_acq_rel)) wake_.send();
}

void LoopRunBase::idle_until(TimePoint deadline) {
  const TimePoint current = now();
  if (deadline <= current) return yield();
  wake_.wait_for(deadline - current);
}

void log_looping_call_failure(const char* kind, const std::exception_ptr& error) noexcept {
  try {
    detail::log(LogLevel::error, std::string(kind) + " failed: " + exception_text(error));
  } catch (...) {
    detail::log(LogLevel::error, "a looping call failed (and describing it failed too)");
  }
}

std::exception_ptr foreign_done_error(const char* kind) {
  return std::make_exception_ptr(std::logic_error(
      std::string(kind) + ": ended by a LoopingCallDone whose type is not the looping call's R"));
}

void check_startable(const GreenThread<void>& fiber, const char* operation) {
  current_hub_core(operation);  // NoHubError off a hub's thread
  // A fiber that has not yet ended may still call the function: one loop at a
  // time, even after stop() (wait() for it first).
  if (fiber && !fiber.dead()) {
    throw std::logic_error(std::string(operation) +
                           ": A looping call can only run one function at a time");
  }
}

void check_waitable(const GreenThread<void>& fiber) {
  FiberBase* self = current_fiber();
  if (!self) throw NoHubError("weft::LoopingCall::wait: must be called from a fiber");
  if (!fiber) throw std::logic_error("weft::LoopingCall::wait: the looping call was never started");
  if (self->id() == fiber.id()) {
    throw std::logic_error(
        "weft::LoopingCall::wait: called from the loop's own callback, it would wait for ever");
  }
}

void end_loop_fiber(LoopRunBase& run, const GreenThread<void>& fiber) noexcept {
  run.stop();
  if (fiber.dead()) return;
  FiberBase* self = current_fiber();
  // A callback destroying its own looping call: it cannot wait for itself, and
  // the loop, stopped, ends when the callback returns (the fiber holds what
  // it uses).
  if (self && self->id() == fiber.id()) return;
  GreenThreadCore& core = GreenThreadAccess::core(fiber);
  core.kill_deferring_interrupts();
  // Outside a fiber nothing can wait; the fiber holds what it uses, so it may
  // end after the object has gone.
  if (self) core.wait_deferring_interrupts();
}

// --- fixed interval -----------------------------------------------------------

std::monostate FixedSchedule::call() {
  call_logging_failure(kind, stop_on_exception, *function);
  return {};
}

TimePoint FixedSchedule::next(std::monostate, TimePoint began) {
  const TimePoint ended = now();
  // oslo's warning: the run time past the interval, to 10 ms.
  const double over = std::round(Seconds(ended - began - interval).count() * 100) / 100;
  if (over > 0) {
    detail::log(LogLevel::warning, std::string(kind) + ": function run outlasted interval by " +
                                       seconds_text(over) + " sec");
  }
  if (timeout.count() > 0 && ended - started > timeout) throw LoopingCallTimeOut(ended - started);
  // Absolute: the next call is due one interval after this one was due, not
  // after it started, so a late wake-up does not push back the calls after
  // it. A call that ended past that is followed at once, and the schedule
  // restarts from its end: no burst of calls to catch up.
  due = later(due, interval);
  if (ended > due) due = ended;
  return due;
}

// --- dynamic ------------------------------------------------------------------

std::optional<Seconds> DynamicSchedule::call() {
  std::optional<Seconds> suggested;
  if (!call_logging_failure(kind, stop_on_exception, [&] { suggested = (*function)(); })) {
    // oslo counts a failed call as 0, which makes a busy loop; with a maximum
    // set, wait for that instead.
    return periodic_interval_max ? std::nullopt : std::optional(Seconds::zero());
  }
  return suggested;
}

TimePoint DynamicSchedule::next(std::optional<Seconds> suggested, TimePoint) {
  Seconds delay;
  if (!suggested) {
    if (!periodic_interval_max) {
      throw std::runtime_error(
          "A dynamic interval looping call should supply either an interval or "
          "periodic_interval_max");
    }
    delay = *periodic_interval_max;
  } else {
    delay = periodic_interval_max ? std::min(*suggested, *periodic_interval_max) : *suggested;
  }
  if (std::isnan(delay.count()))
    throw std::invalid_argument(std::string(kind) + ": the function returned NaN seconds");
  const TimePoint current = now();
  if (delay.count() <= 0) return current;  // oslo: a negative delay is no delay
  return later(current, looping_call_duration(delay, "the delay"));
}

// --- back-off -----------------------------------------------------------------

BackOffSchedule make_back_off_schedule(std::shared_ptr<UniqueFunction<bool()>> function,
                                       BackOffOptions options) {
  looping_call_duration(options.starting_interval, "starting_interval");
  looping_call_duration(options.timeout, "timeout");
  looping_call_duration(options.max_interval, "max_interval");
  looping_call_duration(options.min_interval, "min_interval");
  if (!options.gauss) options.gauss = default_gauss;
  const double starting_interval = options.starting_interval.count();
  return BackOffSchedule{.function = std::move(function),
                         .options = std::move(options),
                         .interval = starting_interval,
                         .error_time = 0};
}

// oslo's BackOffLoopingCall._idle_for, in the same order and the same double
// arithmetic, so its sequences come out to the last bit.
TimePoint BackOffSchedule::next(bool success, TimePoint) {
  const double jitter = std::abs(options.gauss(options.jitter, 0.1));
  double idle;
  if (success) {
    interval = options.starting_interval.count();
    error_time = 0;
    idle = interval * jitter;
  } else {
    idle = std::min(std::max(interval * 2 * jitter, options.min_interval.count()),
                    options.max_interval.count());
    // Grows by the mean, not by the sample, and is not capped by max_interval.
    interval = std::max(interval * 2 * options.jitter, options.min_interval.count());
    const double timeout = options.timeout.count();
    if (timeout > 0 && error_time + idle > timeout)
      throw LoopingCallTimeOut(Seconds(error_time + idle));
    error_time += idle;
  }
  return later(now(), looping_call_duration(Seconds(idle), "the back-off sleep"));
}

// --- retry --------------------------------------------------------------------

void check_retry_options(const RetryOptions& options) {
  if (!current_fiber()) throw NoHubError("weft::retry: must be called from a fiber");
  if (options.max_retry_count < -1) {
    throw std::invalid_argument("weft::retry: max_retry_count must be -1 (no limit) or more, not " +
                                std::to_string(options.max_retry_count));
  }
  looping_call_duration(options.inc_sleep_time, "inc_sleep_time");
  looping_call_duration(options.max_sleep_time, "max_sleep_time");
}

bool from_enclosing_timeout(const std::exception_ptr& error,
                            std::uint64_t first_own_timeout) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const TimeoutError& e) {
    return from_enclosing_timeout(e, first_own_timeout);
  } catch (...) {
    return false;
  }
}

void log_retry(int retry, const std::exception_ptr& error, double sleep_seconds) noexcept {
  try {
    detail::log(LogLevel::debug, "retry: " + exception_text(error) + "; retry " +
                                     std::to_string(retry) + " in " + seconds_text(sleep_seconds) +
                                     " sec");
  } catch (...) {
  }
}

}  // namespace detail

}  // namespace weft

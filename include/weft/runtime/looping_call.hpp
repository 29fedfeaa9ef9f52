#pragma once
/// Looping calls (oslo.service loopingcall): a function called again and again
/// on a fiber of its own, on a fixed schedule (FixedIntervalLoopingCall), at
/// delays the function picks (DynamicLoopingCall) or backing off while it
/// fails (BackOffLoopingCall); and retry(), oslo's RetryDecorator.
///
/// Durations are std::chrono::duration<double> (seconds), so `1.01s`, `20ms`
/// and `std::chrono::seconds(1)` all convert; they are rounded to the nearest
/// nanosecond, and a negative one (or NaN) throws std::invalid_argument. Times
/// are the hub's clock (weft::now()), so on a hub with Clock::virtual_time
/// every schedule below is exact.
///
/// The numbers are oslo's (its tests pass here unchanged), but weft fixes
/// what oslo gets wrong: wait() never hangs when the loop's fiber is killed
/// (oslo's waits for ever); the fixed-interval schedule is absolute, so
/// wake-up latency does not accumulate (oslo sleeps `interval - run time`
/// after each call, rounded to 10 ms, and drifts); retry() keeps its count
/// per call (oslo's decorator shares it between calls); a dynamic call that
/// fails with stop_on_exception = false and a maximum set waits for the
/// maximum (oslo calls again at once, a busy loop).
///
/// Warnings and errors go to the log handler (weft/runtime/log.hpp).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/unique_function.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/sleep.hpp>
#include <weft/sync/event.hpp>

namespace weft {

/// The base of every LoopingCallDone<R>, so that a loop can catch any of them.
/// Empty, and not a std::exception: a callback's `catch (const
/// std::exception&)` must not swallow the end of its loop.
struct LoopingCallDoneBase {};

namespace detail {
/// What a loop that ends without a LoopingCallDone returns: oslo's `True`.
template <class R>
R looping_call_default() {
  if constexpr (std::is_same_v<R, bool>) {
    return true;
  } else {
    return R{};
  }
}
}  // namespace detail

/// Thrown from a looping call's callback to end the loop; the call's wait()
/// returns `value`. `throw LoopingCallDone{}` means `true` (oslo's default
/// retvalue); `throw LoopingCallDone{false}` deduces R. R must be the
/// looping call's own R: another type ends the loop and its wait() throws
/// std::logic_error.
template <class R = bool>
struct LoopingCallDone : LoopingCallDoneBase {
  /// `true` for bool, R{} otherwise.
  LoopingCallDone() : value(detail::looping_call_default<R>()) {}
  LoopingCallDone(R value) : value(std::move(value)) {}  // NOLINT: implicit, as oslo's argument

  R value;
};

template <class R>
LoopingCallDone(R) -> LoopingCallDone<R>;

/// A looping call ran out of time: FixedIntervalWithTimeoutLoopingCall past
/// its timeout, BackOffLoopingCall failing for longer than its timeout.
class LoopingCallTimeOut : public std::runtime_error {
 public:
  /// "Looping call timed out after X.XX seconds".
  explicit LoopingCallTimeOut(std::chrono::duration<double> after);
};

namespace detail {

using TimePoint = std::chrono::steady_clock::time_point;
using Seconds = std::chrono::duration<double>;

/// `value` in nanoseconds, rounded to the nearest (so that 0.1 s steps add
/// up exactly), saturating; std::invalid_argument naming `what` if it is
/// negative or NaN.
std::chrono::nanoseconds looping_call_duration(Seconds value, const char* what);
/// `when + delay` (delay >= 0), saturating at the end of time.
TimePoint later(TimePoint when, std::chrono::nanoseconds delay) noexcept;

/// What one start() of a looping call shares between the LoopingCall object,
/// its loop fiber and the fibers waiting for it. Shared, because each may
/// outlive the others: a callback may destroy its own looping call, a waiter
/// may still be waking when the call is started again.
class LoopRunBase {
 public:
  explicit LoopRunBase(const char* kind) noexcept : kind(kind) {}
  LoopRunBase(const LoopRunBase&) = delete;
  LoopRunBase& operator=(const LoopRunBase&) = delete;

  /// Ends the idle wait at once; the loop then ends before its next call.
  /// Idempotent; any thread.
  void stop() noexcept;
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  /// On the loop fiber: suspends until `deadline` or stop(), whichever comes
  /// first. A deadline already reached yields once, so that other fibers (and
  /// stop()) still run between calls that are due at once.
  void idle_until(TimePoint deadline);

  /// oslo's _KIND ("Fixed interval looping call"): log lines, the fiber's name.
  const char* const kind;

 private:
  std::atomic<bool> stopped_{false};
  Event<> wake_;
};

template <class R>
class LoopRun : public LoopRunBase {
 public:
  using LoopRunBase::LoopRunBase;

  /// The loop ended without a LoopingCallDone: it was stopped, or its fiber
  /// was killed (perhaps before it ever ran). Nothing if it already ended.
  void end_with_default() {
    if (!done.ready()) done.send(looping_call_default<R>());
  }

  Event<R> done;
};

/// Logs "<kind> failed: <what>" as an error.
void log_looping_call_failure(const char* kind, const std::exception_ptr& error) noexcept;
/// The logic_error that wait() throws when a LoopingCallDone of another type
/// ended the loop.
std::exception_ptr foreign_done_error(const char* kind);

/// The loop itself, on its fiber (oslo's _run_loop). `Kind` is the part that
/// differs between looping calls: `call()` calls the function once and
/// returns what it says about the next call; `next(that, began)` returns when
/// the next call is due. Either may throw to end the loop.
template <class R, class Kind>
void run_loop(LoopRun<R>& run, TimePoint started, std::chrono::nanoseconds initial_delay,
              Kind& kind) {
  try {
    if (initial_delay.count() > 0) run.idle_until(later(started, initial_delay));
    while (!run.stopped()) {
      const TimePoint began = now();
      auto outcome = kind.call();
      // Stopped during the call: end now, without asking when the next is due
      // (which may throw a timeout that nobody wants any more).
      if (run.stopped()) break;
      run.idle_until(kind.next(std::move(outcome), began));
    }
    run.end_with_default();
  } catch (LoopingCallDone<R>& finished) {
    run.done.send(std::move(finished.value));
  } catch (const LoopingCallDoneBase&) {
    std::exception_ptr error = foreign_done_error(run.kind);
    log_looping_call_failure(run.kind, error);
    run.done.send_exception(std::move(error));
  } catch (const FiberExit&) {
    throw;  // a kill ends the loop whatever stop_on_exception says; the fiber's link ends `done`
  } catch (...) {
    log_looping_call_failure(run.kind, std::current_exception());
    run.done.send_exception(std::current_exception());
  }
}

/// start(): NoHubError off a hub's thread; std::logic_error while the loop
/// (or its fiber, after stop()) still runs.
void check_startable(const GreenThread<void>& fiber, const char* operation);
/// wait(): NoHubError outside a fiber; std::logic_error before the first
/// start, or from the loop's own callback (it would wait for itself).
void check_waitable(const GreenThread<void>& fiber);
/// The destructor: stops the loop, kills its fiber and waits for it to end,
/// deferring a kill or Timeout aimed at the caller; never throws. A callback
/// that destroys its own looping call is not killed: its loop ends when it
/// returns. Outside a fiber it kills without waiting.
void end_loop_fiber(LoopRunBase& run, const GreenThread<void>& fiber) noexcept;

/// FixedIntervalLoopingCall's part of the loop (and, with a timeout,
/// FixedIntervalWithTimeoutLoopingCall's): calls due at started +
/// initial_delay + k·interval.
struct FixedSchedule {
  std::shared_ptr<UniqueFunction<void()>> function;
  const char* kind;
  bool stop_on_exception;
  std::chrono::nanoseconds interval;
  std::chrono::nanoseconds timeout;  // zero: none
  TimePoint started;
  TimePoint due;  // of the call that runs now

  std::monostate call();
  TimePoint next(std::monostate, TimePoint began);
};

/// DynamicLoopingCall's: the function returns the delay before the next call.
struct DynamicSchedule {
  std::shared_ptr<UniqueFunction<std::optional<Seconds>()>> function;
  const char* kind;
  bool stop_on_exception;
  std::optional<Seconds> periodic_interval_max;

  std::optional<Seconds> call();
  TimePoint next(std::optional<Seconds> suggested, TimePoint began);
};

struct LoopingCallAccess;

}  // namespace detail

/// The base of every looping call: stop, wait, running, and the lifetime.
/// A looping call is made, started, stopped, waited for and destroyed on
/// fibers of one hub (the loop runs on a fiber of the hub that called
/// start). stop() and running() never suspend and may also be called from
/// other threads, as long as start() and the destructor do not run at the
/// same time. Not copyable or movable.
template <class R = bool>
class LoopingCall {
  static_assert(std::is_copy_constructible_v<R> && std::is_default_constructible_v<R>,
                "a looping call's result is copied to every waiter, and is R{} after stop()");

 public:
  LoopingCall(const LoopingCall&) = delete;
  LoopingCall& operator=(const LoopingCall&) = delete;

  /// Destroying a running call stops it, kills its fiber (a callback that is
  /// running is interrupted at its suspension point) and waits for the fiber
  /// to end: destroy it on a fiber. A kill or Timeout aimed at the destroying
  /// fiber meanwhile is deferred to its next suspension point; this never
  /// throws. A callback may destroy its own looping call: that loop ends when
  /// the callback returns.
  virtual ~LoopingCall() {
    if (fiber_) detail::end_loop_fiber(*run_, fiber_);
  }

  /// Ends the loop: the idle wait (and the initial delay) ends at once; a
  /// callback that is running is never interrupted, and no call follows it.
  /// Idempotent. A stop() before start() is forgotten by start() (oslo).
  /// Never suspends.
  void stop() noexcept {
    if (run_) run_->stop();
  }

  /// Suspends until the loop has ended, then returns the value of the
  /// LoopingCallDone that ended it; after stop(), or when the loop's fiber
  /// was killed (hub teardown included, before the loop ever ran too),
  /// `true` for R = bool and R{} otherwise. Rethrows what ended the loop
  /// otherwise: the callback's exception (stop_on_exception),
  /// LoopingCallTimeOut, DynamicLoopingCall's missing-interval error, or
  /// std::logic_error for a LoopingCallDone of another type. Any number of
  /// fibers may wait. Throws std::logic_error before the first start() and
  /// from the loop's own callback, NoHubError outside a fiber. Suspension
  /// point.
  R wait() {
    detail::check_waitable(fiber_);
    std::shared_ptr<detail::LoopRun<R>> run = run_;  // a restart may replace run_ meanwhile
    return run->done.wait();
  }

  /// True from start() until the loop ends or stop() is called.
  bool running() const noexcept { return run_ && !run_->stopped() && !run_->done.ready(); }

 protected:
  /// `kind`: oslo's name for it ("Fixed interval looping call"), used in log
  /// lines and as the loop fiber's name.
  explicit LoopingCall(const char* kind) noexcept : kind_(kind) {}

  const char* kind() const noexcept { return kind_; }

  /// For start(), before it looks at its arguments.
  void check_startable(const char* operation) const { detail::check_startable(fiber_, operation); }

  /// Spawns the loop on this hub: the first call `initial_delay` after
  /// `started`, then as `kind` says.
  template <class Kind>
  void launch(detail::TimePoint started, std::chrono::nanoseconds initial_delay, Kind kind) {
    auto run = std::make_shared<detail::LoopRun<R>>(kind_);
    fiber_ = spawn(SpawnOptions{.name = kind_},
                   [run, started, initial_delay, kind = std::move(kind)]() mutable {
                     detail::run_loop(*run, started, initial_delay, kind);
                   });
    run_ = run;
    // However the fiber ends, killed before it ever ran included, `done` is
    // sent: wait() never hangs (oslo's does when its greenthread is killed).
    // Weak: once nobody holds the run, nobody waits for it.
    fiber_.link([weak = std::weak_ptr<detail::LoopRun<R>>(run)] {
      if (auto ended = weak.lock()) ended->end_with_default();
    });
  }

 private:
  friend struct detail::LoopingCallAccess;

  const char* kind_;
  std::shared_ptr<detail::LoopRun<R>> run_;  // of the latest start()
  GreenThread<void> fiber_;                  // the latest start()'s loop
};

namespace detail {
/// For ThreadGroup: the fiber of a looping call's latest start() (empty
/// before the first), to wait for it without its outcome being thrown and to
/// tell whether the caller is that fiber.
struct LoopingCallAccess {
  template <class R>
  static const GreenThread<void>& fiber(const LoopingCall<R>& call) noexcept {
    return call.fiber_;
  }
};
}  // namespace detail

/// Calls `f(args...)` (copies of them, as lvalues, on every call; its result
/// is ignored) at `started + initial_delay + k·interval`: an absolute
/// schedule, so wake-up latency does not accumulate. A call that ends after
/// the next due time is followed at once by the next, and the schedule
/// restarts from there (no burst of calls to catch up); if its run time
/// outlasted the interval by 0.005 s or more, it logs the warning "run
/// outlasted interval by X.XX sec". oslo's check: interval 1.01 s and calls
/// that take 0.99, 2.0 and 1.02 s start at 0, 1.01, 3.01 and 4.03 s.
template <class R = bool>
class FixedIntervalLoopingCall : public LoopingCall<R> {
 public:
  template <class F, class... Args>
  requires std::invocable<F&, Args&...>
  explicit FixedIntervalLoopingCall(F f, Args... args)
      : FixedIntervalLoopingCall("Fixed interval looping call", std::move(f), std::move(args)...) {}

  /// Starts the loop on a new fiber of this hub. With `stop_on_exception`, an
  /// exception from `f` ends the loop (logged, and rethrown by wait());
  /// without, it is logged as an error (one line with its what()) and the
  /// loop goes on. Throws std::logic_error while the loop runs (also after
  /// stop(), until it has ended), std::invalid_argument for a negative
  /// duration, NoHubError off a hub. Never suspends.
  void start(std::chrono::duration<double> interval,
             std::chrono::duration<double> initial_delay = std::chrono::duration<double>::zero(),
             bool stop_on_exception = true) {
    start_fixed("weft::FixedIntervalLoopingCall::start", interval, initial_delay, stop_on_exception,
                std::chrono::nanoseconds::zero());
  }

 protected:
  template <class F, class... Args>
  FixedIntervalLoopingCall(const char* kind, F f, Args... args)
      : LoopingCall<R>(kind),
        function_(std::make_shared<detail::UniqueFunction<void()>>(
            [f = std::move(f), ... args = std::move(args)]() mutable {
              static_cast<void>(std::invoke(f, args...));
            })) {}

  void start_fixed(const char* operation, std::chrono::duration<double> interval,
                   std::chrono::duration<double> initial_delay, bool stop_on_exception,
                   std::chrono::nanoseconds timeout) {
    this->check_startable(operation);
    const auto interval_ns = detail::looping_call_duration(interval, "interval");
    const auto delay_ns = detail::looping_call_duration(initial_delay, "initial_delay");
    const detail::TimePoint started = now();
    this->launch(started, delay_ns,
                 detail::FixedSchedule{.function = function_,
                                       .kind = this->kind(),
                                       .stop_on_exception = stop_on_exception,
                                       .interval = interval_ns,
                                       .timeout = timeout,
                                       .started = started,
                                       .due = detail::later(started, delay_ns)});
  }

 private:
  std::shared_ptr<detail::UniqueFunction<void()>> function_;  // the loop's fiber holds it too
};

/// A FixedIntervalLoopingCall that gives up: after each call, if more than
/// `timeout` (when > 0) has passed since start(), the loop ends and wait()
/// throws LoopingCallTimeOut. A call that is running is never cut short.
template <class R = bool>
class FixedIntervalWithTimeoutLoopingCall : public FixedIntervalLoopingCall<R> {
 public:
  template <class F, class... Args>
  requires std::invocable<F&, Args&...>
  explicit FixedIntervalWithTimeoutLoopingCall(F f, Args... args)
      : FixedIntervalLoopingCall<R>("Fixed interval looping call with timeout checking",
                                    std::move(f), std::move(args)...) {}

  /// As FixedIntervalLoopingCall::start, with the timeout (0: none).
  void start(std::chrono::duration<double> interval,
             std::chrono::duration<double> initial_delay = std::chrono::duration<double>::zero(),
             bool stop_on_exception = true,
             std::chrono::duration<double> timeout = std::chrono::duration<double>::zero()) {
    this->start_fixed("weft::FixedIntervalWithTimeoutLoopingCall::start", interval, initial_delay,
                      stop_on_exception, detail::looping_call_duration(timeout, "timeout"));
  }
};

/// Calls `f(args...)`, which returns the delay before its next call: something
/// convertible to std::optional<std::chrono::duration<double>>, where
/// std::nullopt means `periodic_interval_max`. The delay counts from the end
/// of the call (the run time is not subtracted), is capped by
/// `periodic_interval_max`, and a zero or negative one means the next call at
/// once (after one yield()). std::nullopt with no maximum ends the loop:
/// wait() throws std::runtime_error ("A dynamic interval looping call should
/// supply either an interval or periodic_interval_max"). oslo's checks: a
/// function that returns 21 s and then 1 s, with a maximum of 5 s, is called
/// at 0, 5 and 6 s; an initial delay of 3 s and a return of 1 s: at 3 and 4 s.
template <class R = bool>
class DynamicLoopingCall : public LoopingCall<R> {
 public:
  template <class F, class... Args>
  requires std::invocable<F&, Args&...>
  explicit DynamicLoopingCall(F f, Args... args)
      : LoopingCall<R>("Dynamic interval looping call"),
        function_(std::make_shared<Function>(
            [f = std::move(f), ... args = std::move(args)]() mutable -> std::optional<Seconds> {
              return std::invoke(f, args...);
            })) {
    static_assert(
        std::is_convertible_v<std::invoke_result_t<F&, Args&...>, std::optional<Seconds>>,
        "DynamicLoopingCall: the function returns the delay before its next call, as something "
        "convertible to std::optional<std::chrono::duration<double>> (std::nullopt: "
        "periodic_interval_max)");
  }

  /// Starts the loop on a new fiber of this hub. With `stop_on_exception`, an
  /// exception from `f` ends the loop (logged, and rethrown by wait());
  /// without, it is logged as an error and the call counts as std::nullopt
  /// when a maximum is given (no busy loop), as 0 when not (oslo). Throws as
  /// FixedIntervalLoopingCall::start does. Never suspends.
  void start(std::chrono::duration<double> initial_delay = std::chrono::duration<double>::zero(),
             std::optional<std::chrono::duration<double>> periodic_interval_max = std::nullopt,
             bool stop_on_exception = true) {
    this->check_startable("weft::DynamicLoopingCall::start");
    const auto delay_ns = detail::looping_call_duration(initial_delay, "initial_delay");
    if (periodic_interval_max)
      detail::looping_call_duration(*periodic_interval_max, "periodic_interval_max");
    this->launch(now(), delay_ns,
                 detail::DynamicSchedule{.function = function_,
                                         .kind = this->kind(),
                                         .stop_on_exception = stop_on_exception,
                                         .periodic_interval_max = periodic_interval_max});
  }

 private:
  using Seconds = std::chrono::duration<double>;
  using Function = detail::UniqueFunction<std::optional<Seconds>()>;
  std::shared_ptr<Function> function_;  // the loop's fiber holds it too
};

/// BackOffLoopingCall's settings (oslo's start() arguments).
struct BackOffOptions {
  std::chrono::duration<double> initial_delay{0};
  /// The interval after a success, and the first one after a failure.
  std::chrono::duration<double> starting_interval{1};
  /// How long the calls may keep failing (the sum of the sleeps since the
  /// last success) before LoopingCallTimeOut; 0: for ever.
  std::chrono::duration<double> timeout{300};
  std::chrono::duration<double> max_interval{300};
  /// The mean of the random factor each sleep is multiplied by.
  double jitter = 0.75;
  std::chrono::duration<double> min_interval{0.001};
  /// Samples the random factor: `gauss(jitter, 0.1)`, folded to its absolute
  /// value. Empty: a normal distribution. Tests make it a constant.
  std::function<double(double mean, double stddev)> gauss = {};
};

namespace detail {
/// BackOffLoopingCall's part of the loop.
struct BackOffSchedule {
  std::shared_ptr<UniqueFunction<bool()>> function;
  BackOffOptions options;
  double interval;    // seconds; grows by 2·jitter with every failure
  double error_time;  // seconds slept since the last success

  bool call() { return (*function)(); }
  TimePoint next(bool success, TimePoint began);
};
/// Checks `options` (std::invalid_argument) and fills in the default gauss.
BackOffSchedule make_back_off_schedule(std::shared_ptr<UniqueFunction<bool()>> function,
                                       BackOffOptions options);
}  // namespace detail

/// Calls `f(args...)`, which returns whether it succeeded (anything
/// convertible to bool), backing off while it fails. After each call, with
/// `r = |gauss(jitter, 0.1)|`: a success sleeps `starting_interval·r`; a
/// failure sleeps `min(max(interval·2·r, min_interval), max_interval)`, and
/// the next interval is `max(interval·2·jitter, min_interval)`; once the
/// sleeps since the last success would pass `timeout` the loop ends with
/// LoopingCallTimeOut. An exception from `f` always ends the loop. oslo's
/// check: with gauss ≡ 0.8 and the defaults, a function that always fails
/// sleeps 1.6, 2.4, 3.6, 5.4, 8.1, 12.15, 18.225, 27.3375, 41.00625,
/// 61.509375 and 92.2640625 s, then times out.
template <class R = bool>
class BackOffLoopingCall : public LoopingCall<R> {
 public:
  template <class F, class... Args>
  requires std::invocable<F&, Args&...>
  explicit BackOffLoopingCall(F f, Args... args)
      : LoopingCall<R>("Dynamic backoff interval looping call"),
        function_(std::make_shared<detail::UniqueFunction<bool()>>(
            [f = std::move(f), ... args = std::move(args)]() mutable {
              return static_cast<bool>(std::invoke(f, args...));
            })) {
    static_assert(std::is_constructible_v<bool, std::invoke_result_t<F&, Args&...>>,
                  "BackOffLoopingCall: the function returns whether it succeeded (a bool)");
  }

  /// Starts the loop on a new fiber of this hub; each start begins afresh
  /// (starting_interval, no error time). Throws as
  /// FixedIntervalLoopingCall::start does. Never suspends.
  void start(BackOffOptions options = {}) {
    this->check_startable("weft::BackOffLoopingCall::start");
    const auto delay_ns = detail::looping_call_duration(options.initial_delay, "initial_delay");
    this->launch(now(), delay_ns, detail::make_back_off_schedule(function_, std::move(options)));
  }

 private:
  std::shared_ptr<detail::UniqueFunction<bool()>> function_;  // the loop's fiber holds it too
};

/// retry()'s settings (oslo's RetryDecorator arguments).
struct RetryOptions {
  /// How many times a failed call is retried; -1: no limit.
  int max_retry_count = -1;
  /// The sleep before the n-th retry is n·inc_sleep_time ...
  std::chrono::duration<double> inc_sleep_time{10};
  /// ... capped at this.
  std::chrono::duration<double> max_sleep_time{60};
};

namespace detail {
/// NoHubError outside a fiber; std::invalid_argument for a negative duration
/// or a count below -1.
void check_retry_options(const RetryOptions& options);
/// Did `error` come from a Timeout made before the retry began (one that
/// encloses it), rather than one inside the function?
bool from_enclosing_timeout(const std::exception_ptr& error,
                            std::uint64_t first_own_timeout) noexcept;
void log_retry(int retry, const std::exception_ptr& error, double sleep_seconds) noexcept;

template <class E>
bool is_a(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace detail

/// Calls `f(args...)` (copies of them, as lvalues, on every attempt) on the
/// calling fiber and returns its result (oslo's RetryDecorator). An exception
/// of one of `Exceptions` (or derived from one) is retried while
/// `max_retry_count` is -1 or fewer than `max_retry_count` retries were made,
/// after sleeping inc, 2·inc, 3·inc… (inc_sleep_time) capped at
/// max_sleep_time; any other exception, or one past the limit, is rethrown.
/// No `Exceptions`: no retry. The count is per call (oslo shares it between
/// calls). A kill (FiberExit) and a TimeoutError from a Timeout around the
/// retry are never retried, even when `Exceptions` names std::runtime_error.
/// Suspension point (the sleeps); from a fiber, else NoHubError.
template <class... Exceptions, class F, class... Args>
auto retry(RetryOptions options, F f, Args... args) -> std::invoke_result_t<F&, Args&...> {
  detail::check_retry_options(options);
  // Timeouts made from here on are the function's own; older ones enclose the retry.
  const std::uint64_t first_own_timeout = detail::next_timeout_serial();
  double sleep_time = 0;  // oslo's sum, which grows past the cap
  for (int retries = 0;; ++retries) {
    std::exception_ptr error;
    try {
      return std::invoke(f, args...);
    } catch (const FiberExit&) {
      throw;
    } catch (...) {
      error = std::current_exception();
    }
    const bool listed = (false || ... || detail::is_a<Exceptions>(error));
    if (!listed || detail::from_enclosing_timeout(error, first_own_timeout) ||
        (options.max_retry_count != -1 && retries >= options.max_retry_count)) {
      std::rethrow_exception(error);
    }
    sleep_time += options.inc_sleep_time.count();
    const double delay = std::min(sleep_time, options.max_sleep_time.count());
    detail::log_retry(retries + 1, error, delay);
    sleep(std::chrono::duration<double>(delay));
  }
}

}  // namespace weft

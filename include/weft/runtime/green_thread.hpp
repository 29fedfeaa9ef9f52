#pragma once
/// Greenthreads: spawn, spawn_n, spawn_after and the GreenThread handle.
///
/// A spawned fiber starts at the next scheduling round, never inside the call
/// that spawned it. Callables may be move-only; arguments are decay-copied as
/// std::thread does and passed to the callable as rvalues.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/runtime/detail/deadline.hpp>

#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/detail/green_thread_core.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/spawn_options.hpp>

namespace weft {

template <class R>
class GreenThread;

namespace detail {

template <class F, class... Args>
using spawn_result_t = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;

template <class T>
concept not_spawn_options = !std::same_as<std::remove_cvref_t<T>, SpawnOptions>;

template <class Tuple>
decltype(auto) invoke_tuple(Tuple&& call) {
  return std::apply(
      [](auto&&... parts) -> decltype(auto) {
        return std::invoke(std::forward<decltype(parts)>(parts)...);
      },
      std::forward<Tuple>(call));
}

/// GreenThreadCore plus the typed result.
template <class R>
class GreenThreadState : public GreenThreadCore {
  static_assert(!std::is_reference_v<R>,
                "a spawned callable must return a value (return a pointer or a reference_wrapper)");

 public:
  /// Waits, then returns the result (a copy; a move-only result is moved out
  /// by the first wait) or rethrows the fiber's exception.
  R result() {
    wait_finished();
    if (error()) std::rethrow_exception(error());
    if constexpr (!std::is_void_v<R>) {
      if constexpr (std::is_copy_constructible_v<R>) {
        return *value_;
      } else {
        SpinGuard lock(this->lock_);  // waiters on several hubs may race for it
        if (!value_)
          throw std::logic_error("GreenThread::wait: the move-only result was already taken");
        R taken = std::move(*value_);
        value_.reset();
        return taken;
      }
    }
  }

 protected:
  struct Nothing {};
  std::optional<std::conditional_t<std::is_void_v<R>, Nothing, R>> value_;
};

template <class R, class... Call>
class SpawnedFiber final : public GreenThreadState<R> {
 public:
  template <class... A>
  explicit SpawnedFiber(A&&... call) : call_(std::in_place, std::forward<A>(call)...) {}

 private:
  void run_body() noexcept override {
    std::exception_ptr error;
    try {
      if constexpr (std::is_void_v<R>) {
        invoke_tuple(std::move(*call_));
        this->value_.emplace();
      } else {
        this->value_.emplace(invoke_tuple(std::move(*call_)));
      }
    } catch (...) {
      error = std::current_exception();
    }
    call_.reset();
    this->destroy_locals();  // before wait() returns, as a thread's before join()
    this->finish(std::move(error));
  }

  void abort_before_start(std::exception_ptr error) noexcept override {
    call_.reset();
    this->finish(std::move(error));
  }

  std::optional<std::tuple<Call...>> call_;
};

/// spawn_n: no result; an escaping exception goes to the hub's error handler.
template <class... Call>
class DetachedFiber final : public FiberBase {
 public:
  template <class... A>
  explicit DetachedFiber(A&&... call) : call_(std::in_place, std::forward<A>(call)...) {}

 private:
  void run_body() noexcept override {
    try {
      invoke_tuple(std::move(*call_));
    } catch (const FiberExit&) {
      // A kill is an ordinary way for a fiber to end, not an error to report.
    } catch (...) {
      report_fiber_error(*this, std::current_exception());
    }
    call_.reset();
  }

  void abort_before_start(std::exception_ptr) noexcept override { call_.reset(); }

  std::optional<std::tuple<Call...>> call_;
};

struct AdoptReference {};

/// The control block behind a handle, for weft's own parts that need more
/// than the public calls (a destructor that kills and waits without throwing:
/// GreenThreadCore::kill_deferring_interrupts, wait_deferring_interrupts).
struct GreenThreadAccess {
  template <class R>
  static GreenThreadCore& core(const GreenThread<R>& thread) {
    return thread.state();
  }
};

}  // namespace detail

/// A copyable handle to a spawned fiber and its eventual result.
template <class R>
class GreenThread {
 public:
  using result_type = R;

  GreenThread() noexcept = default;
  GreenThread(detail::GreenThreadState<R>* state, detail::AdoptReference) noexcept
      : state_(state) {}
  GreenThread(const GreenThread& other) noexcept : state_(other.state_) {
    if (state_) state_->add_ref();
  }
  GreenThread(GreenThread&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  GreenThread& operator=(GreenThread other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~GreenThread() {
    if (state_) state_->release();
  }

  /// Waits for the fiber to end (suspension point), then returns its result or
  /// rethrows its exception (FiberExit, or the kill's exception, if killed).
  /// Any number of fibers, of any hub, may wait: a waiter on another hub is
  /// woken through its own hub. Returns at once, from any thread, if the
  /// fiber has already ended; otherwise throws NoHubError outside a fiber.
  R wait() const { return state().result(); }

  /// Throws FiberExit inside the fiber at its suspension point (or at once if
  /// the caller is the fiber itself). A fiber that has not started never runs;
  /// its wait() throws FiberExit and its links run then (in the caller on
  /// the fiber's own hub, else on that hub). A dead fiber is left alone. From the fiber's own hub
  /// the caller yields once, so when kill returns the target has unwound (or reached its next
  /// suspension point). From another hub or a plain thread, the fiber's hub
  /// delivers it at its next round and kill returns at once (wait() to see
  /// it end).
  void kill() const { state().kill(nullptr, false); }
  /// As kill(), but throws `error` inside the fiber instead of FiberExit.
  void kill(std::exception_ptr error) const { state().kill(std::move(error), false); }

  /// kill(), but only if the fiber has not started yet (decided on its hub).
  void cancel() const { cancel(nullptr); }
  void cancel(std::exception_ptr error) const { state().kill(std::move(error), true); }

  /// Calls `callback(GreenThread&)` (or `callback()`) once the fiber has ended,
  /// in the dying fiber's context; at once, in the caller, if it has already
  /// ended. Callable from any thread. Callbacks
  /// run in the order added; one that throws is reported to the hub's error
  /// handler and the others still run. Returns an id for unlink().
  template <class F>
  std::uint64_t link(F callback) const {
    return state().add_link([cb = std::move(callback)](detail::GreenThreadCore& core) mutable {
      core.add_ref();
      GreenThread self(static_cast<detail::GreenThreadState<R>*>(&core), detail::AdoptReference{});
      if constexpr (std::is_invocable_v<F&, GreenThread&>) {
        cb(self);
      } else {
        cb();
      }
    });
  }
  /// Removes a callback added by link(); false if it was not there (or has run).
  bool unlink(std::uint64_t link_id) const { return state().remove_link(link_id); }

  /// Has it ended (its outcome recorded)? Any thread.
  bool dead() const { return state().finished(); }
  /// Has it begun running? Any thread.
  bool started() const { return state().started(); }
  std::uint64_t id() const { return state().id(); }
  const std::string& name() const { return state().name(); }
  explicit operator bool() const noexcept { return state_ != nullptr; }

  friend bool operator==(const GreenThread& a, const GreenThread& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  friend struct detail::GreenThreadAccess;

  detail::GreenThreadState<R>& state() const {
    if (!state_) throw std::logic_error("weft::GreenThread: empty handle");
    return *state_;
  }

  detail::GreenThreadState<R>* state_ = nullptr;
};

/// Spawns `f(args...)` as a new fiber of the calling thread's hub; it starts at
/// the next scheduling round. Throws NoHubError outside a hub.
template <class F, class... Args>
GreenThread<detail::spawn_result_t<F, Args...>> spawn(const SpawnOptions& options, F&& f,
                                                      Args&&... args) {
  using R = detail::spawn_result_t<F, Args...>;
  auto& hub = detail::current_hub_core("weft::spawn");
  auto* fiber = new detail::SpawnedFiber<R, std::decay_t<F>, std::decay_t<Args>...>(
      std::forward<F>(f), std::forward<Args>(args)...);
  fiber->add_ref();  // the handle's reference; start_fiber takes the fiber's own
  GreenThread<R> handle(fiber, detail::AdoptReference{});
  detail::start_fiber(hub, fiber, options);
  return handle;
}

template <detail::not_spawn_options F, class... Args>
GreenThread<detail::spawn_result_t<F, Args...>> spawn(F&& f, Args&&... args) {
  return spawn(SpawnOptions{}, std::forward<F>(f), std::forward<Args>(args)...);
}

/// Like spawn, with no handle: an exception escaping `f` goes to the hub's
/// error handler (default: printed on stderr) and the hub keeps running.
template <class F, class... Args>
void spawn_n(const SpawnOptions& options, F&& f, Args&&... args) {
  auto& hub = detail::current_hub_core("weft::spawn_n");
  auto* fiber = new detail::DetachedFiber<std::decay_t<F>, std::decay_t<Args>...>(
      std::forward<F>(f), std::forward<Args>(args)...);
  detail::start_fiber(hub, fiber, options);
}

template <detail::not_spawn_options F, class... Args>
void spawn_n(F&& f, Args&&... args) {
  spawn_n(SpawnOptions{}, std::forward<F>(f), std::forward<Args>(args)...);
}

/// Spawns `f(args...)` to start once `delay` has passed (even if the spawner
/// has ended by then). cancel() before then means it never runs.
template <class Rep, class Period, class F, class... Args>
GreenThread<detail::spawn_result_t<F, Args...>> spawn_after(
    std::chrono::duration<Rep, Period> delay, F&& f, Args&&... args) {
  using R = detail::spawn_result_t<F, Args...>;
  auto& hub = detail::current_hub_core("weft::spawn_after");
  const std::chrono::nanoseconds delay_ns = detail::saturating_ns(delay);
  auto* fiber = new detail::SpawnedFiber<R, std::decay_t<F>, std::decay_t<Args>...>(
      std::forward<F>(f), std::forward<Args>(args)...);
  fiber->add_ref();
  GreenThread<R> handle(fiber, detail::AdoptReference{});
  detail::start_fiber_after(hub, fiber, delay_ns, SpawnOptions{});
  return handle;
}

}  // namespace weft

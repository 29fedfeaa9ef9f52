#pragma once
/// Work that can be destroyed from outside (caikit's Destroyable): run it,
/// destroy it at any time, and read afterwards what became of it.
///
/// DestroyableThread<R> runs `f(args...)` on an OS thread of its own, as the
/// first fiber of that thread's hub, so destroy() can reach it: a
/// ThreadDestroyedError is thrown in it at its next suspension point (sleep,
/// a weft wait, io; weft::yield() in a CPU loop), and again at every later
/// one if the work catches it and goes on, until the work ends. The threads
/// and their hubs are cached and reused, the most recently idle first, and
/// exit after 10 s idle; they are not ThreadCache::global()'s, whose jobs find
/// no hub on their thread. Fibers the work spawned are killed when it ends.
///
/// The states (any thread may read them; each is final once done()):
///
/// | what happened                           | destroyed | canceled | ran | threw | get_or_throw()
/// |
/// |-----------------------------------------|-----------|----------|-----|-------|---------------------------|
/// | returned                                | no        | no       | yes | no    | the result | |
/// threw E                                 | no        | no       | yes | yes   | rethrows E (same
/// object)  | | returned or threw, then destroy()       | yes       | no       | yes | as is | as
/// is                     | | destroy() while it ran, and it threw    | yes       | yes      | yes
/// | no    | ThreadDestroyedError      | |   (ThreadDestroyedError or anything)    |           | |
/// |       |                           | | destroy() while it ran; it returned     | yes       | no
/// | yes | no    | the result                | |   without reaching a suspension point   | | | | |
/// | | destroy() before start()                | yes       | yes      | no  | no    |
/// ThreadDestroyedError      | | never started, not destroyed            | no        | no       |
/// no  | no    | std::logic_error          |
///
/// The outcome is decided in one place, when the work ends on its thread:
/// whether destroy() came first decides "canceled", however close the race.
///
/// Every wait (join, get_or_throw) suspends only the calling fiber when called
/// from a fiber and blocks a plain thread otherwise; a fiber's wait is a
/// suspension point (a kill or Timeout reaches it).

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/runtime/detail/deadline.hpp>
#include <weft/runtime/detail/unique_function.hpp>
#include <weft/sync/event.hpp>

namespace weft {

class Hub;

struct DestroyableOptions {
  /// For a process: how long destroy() waits after SIGTERM before SIGKILL.
  /// Not used by threads.
  std::chrono::duration<double> destroy_grace_period{10};
  /// Sent by weft as soon as the work ends, whether or not anyone joins: once
  /// every state is final, before done() turns true and join() returns, on
  /// every path (a destroy before start included). Must outlive the work. An
  /// event already sent is left as it is (and the fact logged).
  Event<>* completion_event = nullptr;
};

/// Thrown in destroyed work at its suspension points, and by get_or_throw()
/// of canceled work. A std::runtime_error, so the work's own `catch (const
/// std::exception&)` sees it, as in caikit.
class ThreadDestroyedError : public std::runtime_error {
 public:
  ThreadDestroyedError()
      : std::runtime_error(
            "Work thread intentionally destroyed by its lifecycle manager. This exception was not "
            "raised by the code running in this thread.") {}
};

namespace detail {

/// The non-template half of a DestroyableThread: its states, its worker and
/// the one place where the outcome is decided.
class DestroyableWork : public std::enable_shared_from_this<DestroyableWork> {
 public:
  explicit DestroyableWork(DestroyableOptions options);
  virtual ~DestroyableWork();
  DestroyableWork(const DestroyableWork&) = delete;
  DestroyableWork& operator=(const DestroyableWork&) = delete;

  void start();
  void destroy() noexcept;
  bool join(std::optional<std::chrono::nanoseconds> timeout);
  /// join() for destructors: never throws, and a kill or Timeout aimed at the
  /// waiting fiber stays pending. Returns at once if called from the work's
  /// own fiber (which would wait for itself).
  void join_ignoring_interrupts() noexcept;
  /// get_or_throw() without the result: waits, then throws what it should.
  void wait_for_result();

  bool destroyed() const;
  bool canceled() const;
  bool ran() const;
  bool threw() const;
  std::exception_ptr error() const;
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

  /// Runs on the worker, after every state is final and before the
  /// completion event (weft's own users: thread steps).
  void set_on_complete(UniqueFunction<void()> on_complete) {
    on_complete_ = std::move(on_complete);
  }

 protected:
  /// Runs the work in its fiber; stores the result or throws.
  virtual void run_work() = 0;

 private:
  enum class Phase : unsigned char { not_started, launched, ended };
  struct State;
  /// On the worker: runs the work as the first fiber of `hub`.
  void run_on(Hub& hub) noexcept;
  /// On the work's hub, outside its fibers: throws ThreadDestroyedError in
  /// the work at its suspension point, unless it is already on its way.
  void deliver_destroy() noexcept;
  /// Settles the states of launched work that ended with `outcome` (null:
  /// it returned). complete() follows.
  void finish(std::exception_ptr outcome) noexcept;
  /// Settles the states of work that never ran: destroyed before start, or
  /// no hub for it. complete() follows.
  void finish_unrun(std::exception_ptr why) noexcept;
  /// Every state is final: the completion callbacks, then done(). On the
  /// worker once it is idle again, or where a destroy before start came.
  void complete() noexcept;
  bool never_started() const;
  bool called_from_the_work() const noexcept;

  const DestroyableOptions options_;
  const std::unique_ptr<State> state_;
  std::atomic<bool> done_{false};
  UniqueFunction<void()> on_complete_;
};

template <class R>
class DestroyableResult final : public DestroyableWork {
 public:
  template <class F, class... Args>
  DestroyableResult(DestroyableOptions options, F&& f, Args&&... args)
      : DestroyableWork(options),
        work_([f = std::forward<F>(f),
               args = std::make_tuple(std::forward<Args>(args)...)]() mutable -> R {
          return std::apply(std::move(f), std::move(args));
        }) {}

  /// The result, once done() and without error.
  const std::optional<R>& result() const noexcept { return result_; }

 private:
  void run_work() override {
    auto work = std::move(work_);  // destroyed in the work's fiber, not later
    result_.emplace(work());
  }
  UniqueFunction<R()> work_;
  std::optional<R> result_;
};

template <>
class DestroyableResult<void> final : public DestroyableWork {
 public:
  template <class F, class... Args>
  DestroyableResult(DestroyableOptions options, F&& f, Args&&... args)
      : DestroyableWork(options),
        work_([f = std::forward<F>(f),
               args = std::make_tuple(std::forward<Args>(args)...)]() mutable {
          std::apply(std::move(f), std::move(args));
        }) {}

 private:
  void run_work() override {
    auto work = std::move(work_);
    work();
  }
  UniqueFunction<void()> work_;
};

template <class F>
concept not_destroyable_options = !std::is_same_v<std::decay_t<F>, DestroyableOptions>;

/// Throws std::invalid_argument for a null function pointer or an empty
/// std::function (anything else callable is accepted).
template <class F>
void require_callable(const F& f, const char* who) {
  if constexpr (requires { static_cast<bool>(f); }) {
    if (!static_cast<bool>(f)) throw std::invalid_argument(std::string(who) + ": empty callable");
  }
}

}  // namespace detail

/// See the top of this file. Move-only; the destructor destroys work still
/// running and waits for it to end (never throws; a kill or Timeout aimed at
/// a fiber destroying it stays pending).
template <class R>
class DestroyableThread {
 public:
  template <detail::not_destroyable_options F, class... Args>
  explicit DestroyableThread(F f, Args... args)
      : DestroyableThread(DestroyableOptions{}, std::move(f), std::move(args)...) {}
  template <class F, class... Args>
  DestroyableThread(DestroyableOptions options, F f, Args... args)
      : work_(make(options, std::move(f), std::move(args)...)) {}
  ~DestroyableThread() { end_work(); }
  DestroyableThread(DestroyableThread&&) noexcept = default;
  DestroyableThread& operator=(DestroyableThread&& other) noexcept {
    if (this != &other) {
      end_work();
      work_ = std::move(other.work_);
    }
    return *this;
  }

  /// Hands the work to a worker thread and returns. Only the first call after
  /// construction does anything; after a destroy() it only leaves the work
  /// complete. Throws std::system_error if no thread can be started (the work
  /// stays unstarted).
  void start() { work().start(); }
  /// Asks the work to end (see the top of this file) and returns at once.
  /// Idempotent; any thread or fiber.
  void destroy() { work().destroy(); }
  /// Waits until done() (at most `timeout`); true if done. False at once for
  /// work never started and not destroyed. std::logic_error from the work's
  /// own fiber (it would wait for itself).
  bool join(std::optional<std::chrono::duration<double>> timeout = std::nullopt) {
    return work().join(timeout ? std::optional(detail::saturating_ns(*timeout)) : std::nullopt);
  }
  /// Waits as join() does, then returns a copy of the result (again on every
  /// call) or rethrows error(). std::logic_error for work never started and
  /// not destroyed.
  R get_or_throw() {
    work().wait_for_result();
    if constexpr (!std::is_void_v<R>) return *work().result();
  }

  bool destroyed() const { return work().destroyed(); }
  bool canceled() const { return work().canceled(); }
  bool ran() const { return work().ran(); }
  bool threw() const { return work().threw(); }
  std::exception_ptr error() const { return work().error(); }
  bool done() const { return work().done(); }

 private:
  void end_work() noexcept {
    if (!work_) return;
    work_->destroy();
    work_->join_ignoring_interrupts();
  }
  template <class... A>
  static std::shared_ptr<detail::DestroyableResult<R>> make(DestroyableOptions options, A&&... a) {
    detail::require_callable(std::get<0>(std::forward_as_tuple(a...)), "weft::DestroyableThread");
    return std::make_shared<detail::DestroyableResult<R>>(options, std::forward<A>(a)...);
  }
  detail::DestroyableResult<R>& work() const {
    if (!work_) throw std::logic_error("weft::DestroyableThread: moved from");
    return *work_;
  }

  std::shared_ptr<detail::DestroyableResult<R>> work_;
};

template <detail::not_destroyable_options F, class... Args>
DestroyableThread(F, Args...) -> DestroyableThread<std::invoke_result_t<F, Args...>>;
template <class F, class... Args>
DestroyableThread(DestroyableOptions, F, Args...)
    -> DestroyableThread<std::invoke_result_t<F, Args...>>;

}  // namespace weft

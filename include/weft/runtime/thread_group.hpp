#pragma once
/// ThreadGroup (oslo.service threadgroup): greenthreads and looping-call
/// timers started together and stopped, waited for or cancelled together.
///
/// A group is made and used from fibers of one hub; from another hub (or a
/// plain thread) its calls throw std::logic_error (NoHubError off a hub's
/// thread). Its threads are fibers of that hub, at most `thread_pool_size`
/// alive at once (a GreenPool); each leaves the group by itself when it ends.
/// Its timers are looping calls that stay in the group until stop_timers(),
/// stop() or timer_done(), as in oslo.
///
/// The calling fiber is never killed or waited for by its own group: a group
/// thread may stop or wait for the group it belongs to. What the group
/// swallows (the outcome of a thread or timer it waited for) is logged
/// (weft/runtime/log.hpp): an exception as an error line with its what(), a
/// kill at debug. A kill or Timeout aimed at the calling fiber itself
/// propagates, as everywhere.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <weft/runtime/detail/green_thread_core.hpp>
#include <weft/runtime/green_pool.hpp>
#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/looping_call.hpp>

namespace weft {

/// How add_timer / add_dynamic_timer start their looping call.
struct TimerOptions {
  std::chrono::duration<double> initial_delay{0};
  bool stop_on_exception = true;
  /// add_dynamic_timer only: the cap on the delays the function returns.
  std::optional<std::chrono::duration<double>> periodic_interval_max{};
};

namespace detail {

/// One thread of a group, whatever its result type: a counted reference to
/// its fiber.
class GroupThread {
 public:
  explicit GroupThread(GreenThreadCore& core) noexcept : core_(&core) { core_->add_ref(); }
  GroupThread(const GroupThread& other) noexcept : core_(other.core_) { core_->add_ref(); }
  GroupThread& operator=(GroupThread other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~GroupThread() { core_->release(); }

  GreenThreadCore& core() const noexcept { return *core_; }

 private:
  GreenThreadCore* core_;
};

/// What a group's threads remove themselves from when they end; a thread may
/// outlive the group object (its destructor kills but cannot wait outside a
/// fiber).
struct GroupThreads {
  std::vector<GroupThread> alive;
  void remove(const GreenThreadCore& core) noexcept;
};

}  // namespace detail

class ThreadGroup {
 public:
  /// From a fiber; the group belongs to its hub. Throws std::invalid_argument
  /// for a pool size of 0, NoHubError outside a fiber.
  explicit ThreadGroup(std::size_t thread_pool_size = 10);
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;
  /// stop(): stops the timers (without waiting for them), kills every thread
  /// but the destroying fiber and waits for them to end. A kill or Timeout
  /// aimed at the destroying fiber meanwhile is deferred to its next
  /// suspension point; this never throws. Outside a fiber it kills without
  /// waiting.
  ~ThreadGroup();

  /// Spawns `f(args...)` as a thread of the group, first waiting (suspension
  /// point) while `thread_pool_size` of its threads are alive. Called from one
  /// of the group's own threads while the pool is full, it runs `f` inline
  /// instead, as GreenPool does (no deadlock), and returns a finished handle.
  template <class F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> add_thread(F&& f, Args&&... args) {
    check_hub("weft::ThreadGroup::add_thread");
    auto thread = pool_.spawn(std::forward<F>(f), std::forward<Args>(args)...);
    adopt(detail::GreenThreadAccess::core(thread));
    return thread;
  }

  /// Starts a FixedIntervalLoopingCall of `f(args...)` every `interval`
  /// (options: initial delay, stop_on_exception) and keeps it in the group.
  /// Throws std::invalid_argument for a negative duration.
  template <class F, class... Args>
  requires std::invocable<F&, Args&...> std::shared_ptr<FixedIntervalLoopingCall<>> add_timer(
      std::chrono::duration<double> interval, F f, Args... args) {
    return add_timer(interval, TimerOptions{}, std::move(f), std::move(args)...);
  }
  template <class F, class... Args>
  requires std::invocable<F&, Args&...> std::shared_ptr<FixedIntervalLoopingCall<>> add_timer(
      std::chrono::duration<double> interval, TimerOptions options, F f, Args... args) {
    check_hub("weft::ThreadGroup::add_timer");
    auto timer = std::make_shared<FixedIntervalLoopingCall<>>(std::move(f), std::move(args)...);
    timer->start(interval, options.initial_delay, options.stop_on_exception);
    keep(timer);
    return timer;
  }

  /// Starts a DynamicLoopingCall of `f(args...)` (options: initial delay,
  /// periodic_interval_max, stop_on_exception) and keeps it in the group.
  template <class F, class... Args>
  requires std::invocable<F&, Args&...> std::shared_ptr<DynamicLoopingCall<>> add_dynamic_timer(
      F f, Args... args) {
    return add_dynamic_timer(TimerOptions{}, std::move(f), std::move(args)...);
  }
  template <class F, class... Args>
  requires std::invocable<F&, Args&...> std::shared_ptr<DynamicLoopingCall<>> add_dynamic_timer(
      TimerOptions options, F f, Args... args) {
    check_hub("weft::ThreadGroup::add_dynamic_timer");
    auto timer = std::make_shared<DynamicLoopingCall<>>(std::move(f), std::move(args)...);
    timer->start(options.initial_delay, options.periodic_interval_max, options.stop_on_exception);
    keep(timer);
    return timer;
  }

  /// Threads alive in the group (the caller included, if it is one).
  std::size_t thread_count() const;
  /// Timers kept in the group, running or not.
  std::size_t timer_count() const;

  /// Removes one thread from the group (it goes on running); one that is not
  /// there is ignored.
  template <class R>
  void thread_done(const GreenThread<R>& thread) {
    check_hub("weft::ThreadGroup::thread_done");
    if (thread) threads_->remove(detail::GreenThreadAccess::core(thread));
  }
  /// Removes one timer from the group (it goes on running); one that is not
  /// there is ignored.
  void timer_done(const std::shared_ptr<LoopingCall<>>& timer);

  /// stop_timers(graceful); then, graceful: waits for every thread, never
  /// killing; not graceful: kills every thread but the caller and waits until
  /// they have ended. Returns with no thread (the caller's aside) and no timer
  /// left. Timer callbacks that are running are not interrupted; a timer whose
  /// callback is the caller is not waited for. Suspension point.
  void stop(bool graceful = false);
  /// Stops every timer, waits for each if asked (outcomes logged), then
  /// forgets them all. Suspension point when waiting.
  void stop_timers(bool wait = false);
  /// Waits for every timer (they end only when stopped, as in oslo), then for
  /// every thread but the caller; their outcomes, kills included, are logged
  /// and swallowed. Suspension point.
  void wait();
  /// Cancels every thread that has not started (it never runs). With a
  /// timeout, then waits until no thread but the caller is alive, looking
  /// every `wait_time`; once `timeout` has passed since the call, it calls
  /// stop() once and returns. Without one it returns at once and leaves the
  /// timers alone. Throws std::invalid_argument for a negative timeout or a
  /// `wait_time` that is not positive (it would spin).
  void cancel(std::optional<std::chrono::duration<double>> timeout = std::nullopt,
              std::chrono::duration<double> wait_time = std::chrono::seconds(1));

 private:
  void check_hub(const char* operation) const;
  void adopt(detail::GreenThreadCore& core);
  void keep(std::shared_ptr<LoopingCall<>> timer);
  /// The threads other than the caller, as they are now: ending threads
  /// change the group while it acts on them.
  std::vector<detail::GroupThread> others() const;
  void kill_threads();
  void wait_threads();
  void wait_timers();
  bool any_other_thread_alive() const;

  const void* hub_;  // compared only
  GreenPool pool_;
  std::shared_ptr<detail::GroupThreads> threads_ = std::make_shared<detail::GroupThreads>();
  std::vector<std::shared_ptr<LoopingCall<>>> timers_;
};

}  // namespace weft

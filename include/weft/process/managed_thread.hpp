#pragma once
/// Managed threads (continuous_threading's classes): OS threads that run a
/// target again and again until stopped, and never keep a program from
/// exiting.
///
/// Each object owns at most one OS thread at a time. The thread runs the
/// options' `init` once, then the target in a loop, then `cleanup` once, on
/// every path: an exception from `init`, the target or `cleanup` ends the
/// loop and is kept for error(), and `cleanup` still runs. Calls on an object
/// may come from any thread or fiber; the waits (join, PausableThread's
/// stop) suspend only the calling fiber inside a weft fiber and block a plain
/// thread otherwise. Every live non-daemon managed thread is stopped and
/// joined, within a second, when the program exits (shutdown_managed_threads);
/// one that does not end in time is left behind and the process exits
/// anyway. A fork()ed child has no managed threads: objects it inherited are
/// ended there (is_alive() false, join() true at once) and cannot start.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/runtime/detail/unique_function.hpp>

namespace weft {

struct ManagedThreadOptions {
  /// The thread's name in /proc/<pid>/task/*/comm (its first 15 bytes);
  /// "weft-managed" if empty.
  std::string name{};
  /// Runs once on the thread before the first iteration.
  std::function<void()> init{};
  /// Runs once on the thread after the last iteration, on every path (after
  /// an exception from init or the target too).
  std::function<void()> cleanup{};
  /// A daemon thread is skipped by shutdown_managed_threads (and so at exit):
  /// the process exits with it still running, and a destructor that runs
  /// during the exit does not wait for it.
  bool daemon = false;
};

namespace detail {
class ManagedThreadState;
enum class ManagedThreadKind { continuous, pausable, periodic, operation };
}  // namespace detail

/// What every kind of managed thread has in common. Not copyable or movable.
class ManagedThread {
 public:
  ManagedThread(const ManagedThread&) = delete;
  ManagedThread& operator=(const ManagedThread&) = delete;
  /// Joins (an OperationThread runs what was queued first). Never suspends a
  /// fiber early: a kill or Timeout aimed at it waits for its next suspension
  /// point. For a thread the at-exit shutdown left behind (or a daemon, once
  /// it ran), or from the thread's own target, it does not wait: the thread
  /// is left to finish on its own.
  virtual ~ManagedThread();

  /// Starts the thread: a new OS thread, which runs init again, if none is
  /// running (never started, or ended by join, stop or an exception: error()
  /// is cleared). While the thread runs, it is idempotent, and it cancels a
  /// stop() the loop has not acted on yet (a PausableThread resumes). It
  /// does nothing to a thread that a join is ending. Any thread; never waits
  /// for the loop. Throws std::system_error if no thread can be started,
  /// std::logic_error in a fork()ed child for an object it inherited.
  void start();

  /// Asks the loop to end after the current iteration, without waiting; a
  /// PausableThread instead pauses, and returns only once parked (see
  /// there). Any thread, the target included.
  void stop();

  /// Stops the thread, then waits until it has ended: true if it has (or
  /// never ran), false if `timeout` passed first (the loop still ends when it
  /// can). Never rethrows what the thread threw: read error(). Suspends only
  /// the calling fiber (which a kill or Timeout ends as at any suspension
  /// point), blocks a plain thread. Throws std::logic_error from the thread's
  /// own target, init or cleanup, std::invalid_argument for a NaN timeout.
  bool join(std::optional<std::chrono::duration<double>> timeout = std::nullopt);

  /// True from start() until the loop ends or is asked to stop (or pause).
  bool is_alive() const;

  /// What init, the target or cleanup threw in the last run (the first of
  /// them); null if nothing did. start() clears it.
  std::exception_ptr error() const;

 protected:
  ManagedThread(detail::ManagedThreadKind kind, detail::UniqueFunction<void()> target,
                std::chrono::nanoseconds interval, ManagedThreadOptions options);

  /// OperationThread: queues one item and starts the thread if needed.
  void push_item(detail::UniqueFunction<void()> item);
  /// OperationThread: how many items wait (not counting the one running).
  std::size_t queued_items() const;

  static std::chrono::nanoseconds checked_interval(std::chrono::duration<double> interval);

 private:
  std::shared_ptr<detail::ManagedThreadState> state_;
};

/// Calls target() again and again while alive; stop() ends the loop after
/// the current call.
class ContinuousThread : public ManagedThread {
 public:
  /// Throws std::invalid_argument for a null or empty target.
  template <class F>
  requires std::invocable<F&>
  explicit ContinuousThread(F target, ManagedThreadOptions options = {})
      : ManagedThread(detail::ManagedThreadKind::continuous,
                      detail::UniqueFunction<void()>(std::move(target)), {}, std::move(options)) {}
};

/// A ContinuousThread that stop() pauses instead of ending: stop() returns
/// only once the thread is parked, so the target does not run after it
/// returns (called from the target itself, it pauses after this iteration
/// and does not wait). start() resumes without running init again; join()
/// ends the thread.
class PausableThread : public ManagedThread {
 public:
  /// Throws std::invalid_argument for a null or empty target.
  template <class F>
  requires std::invocable<F&>
  explicit PausableThread(F target, ManagedThreadOptions options = {})
      : ManagedThread(detail::ManagedThreadKind::pausable,
                      detail::UniqueFunction<void()>(std::move(target)), {}, std::move(options)) {}
};

/// Calls target() at once, then on the absolute schedule start + k·interval
/// (steady_clock). A call that overruns its slot is followed at once by the
/// next, and the schedule goes on from the latest slot already due, without
/// a burst of catch-up calls. stop() ends the wait for the next slot at once.
class PeriodicThread : public ManagedThread {
 public:
  /// Throws std::invalid_argument for a null or empty target, or an interval
  /// that is NaN or negative.
  template <class F>
  requires std::invocable<F&>
  explicit PeriodicThread(std::chrono::duration<double> interval, F target,
                          ManagedThreadOptions options = {})
      : ManagedThread(detail::ManagedThreadKind::periodic,
                      detail::UniqueFunction<void()>(std::move(target)), checked_interval(interval),
                      std::move(options)) {}
};

/// Calls target(item) for each item given to add_data, in FIFO order, and
/// waits for more in between. stop() ends the loop after the current item
/// and keeps the rest queued for a later start(); join() first runs every
/// item added before it, then ends. Items still queued when a stopped
/// thread's object is destroyed are destroyed unrun.
template <class T>
class OperationThread : public ManagedThread {
 public:
  /// Throws std::invalid_argument for a null or empty target.
  template <class F>
  requires std::invocable<F&, T>
  explicit OperationThread(F target, ManagedThreadOptions options = {})
      : OperationThread(checked_target(std::move(target)), std::move(options)) {}

  /// Queues `item` and starts the thread if it is not running (a thread that
  /// a join is ending is not restarted: the item waits for a later start()).
  /// Any thread, the target included; never waits.
  void add_data(T item) {
    push_item([target = target_, item = std::move(item)]() mutable { (*target)(std::move(item)); });
  }

  /// Items waiting, not counting the one running. Any thread.
  std::size_t queue_size() const { return queued_items(); }

 private:
  using Target = detail::UniqueFunction<void(T)>;

  OperationThread(std::shared_ptr<Target> target, ManagedThreadOptions options)
      : ManagedThread(detail::ManagedThreadKind::operation, {}, {}, std::move(options)),
        target_(std::move(target)) {}

  template <class F>
  static std::shared_ptr<Target> checked_target(F target) {
    Target function(std::move(target));
    if (!function) throw std::invalid_argument("weft: OperationThread needs a target");
    return std::make_shared<Target>(std::move(function));
  }

  // Shared with the queued items, which may outlive this object on a thread
  // left behind at exit.
  std::shared_ptr<Target> target_;
};

/// Stops every live non-daemon managed thread and waits for each to end, up
/// to `timeout` from this call (nullopt: for ever). A PausableThread ends
/// instead of pausing; an OperationThread keeps the items it did not reach.
/// A thread that does not end in time is left running and logged. Also runs
/// at exit (with one second), so a program whose main returns while a
/// managed thread loops exits with its own status. Suspends only the calling
/// fiber, blocks a plain thread; from a managed thread's target, that thread
/// is asked to stop but not waited for. Throws std::invalid_argument for a
/// NaN timeout.
void shutdown_managed_threads(
    std::optional<std::chrono::duration<double>> timeout = std::chrono::seconds(1));

}  // namespace weft

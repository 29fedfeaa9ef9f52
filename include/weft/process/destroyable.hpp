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
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <sys/types.h>

#include <weft/process/child_error.hpp>
#include <weft/process/codec.hpp>
#include <weft/process/process_entry.hpp>
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

  /// How destroy() reaches the work's fiber: a thread's work gets
  /// ThreadDestroyedError at every suspension point, even before it begins
  /// (then it never does); a process's watcher gets it once, and only once it
  /// has begun (it looks at destroyed() first), so that it can take its time
  /// to end the child.
  enum class DestroyDelivery : unsigned char { at_every_suspension, once_started };
  virtual DestroyDelivery destroy_delivery() const noexcept {
    return DestroyDelivery::at_every_suspension;
  }
  /// For DestroyDelivery::once_started, from the work's fiber: has destroy()
  /// been called? If so, the work takes it in hand: it is not thrown at a
  /// suspension point any more.
  bool take_destroy() noexcept;
  /// From the work's fiber: a destroy() from now on is not thrown in it.
  void stop_destroy_delivery() noexcept;
  /// On start()'s caller, before the work is handed to a worker (a child
  /// process is started here); if it throws, the work stays unstarted.
  virtual void launch() {}
  /// Undoes launch() when the work cannot be handed to a worker after all.
  virtual void abandon_launch() noexcept {}
  struct Settled {
    bool canceled = false;
    bool threw = false;
    std::exception_ptr error;
  };
  /// The final states of launched work that ended with `outcome` (null: it
  /// returned), `destroyed` if destroy() came first. Under the work's lock.
  virtual Settled settle(std::exception_ptr outcome, bool destroyed);
  /// error() of work destroyed before it started.
  virtual std::exception_ptr pre_cancel_error() const;
  /// What get_or_throw() throws once done, if anything (default: error()).
  virtual std::exception_ptr result_error() const;

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

class ChildProcess;

/// For work whose child reports as it goes (a child-process step): each
/// frame of its report as it arrives, then its exit. Run by the watcher
/// fiber, on the hub worker, except on_start.
struct ChildReportHooks {
  /// As soon as the child has been started, on the thread that started it
  /// (so a reader that started it finds its first event without a wake-up).
  std::function<void(pid_t pid)> on_start;
  std::function<void(pid_t pid, std::string_view frame)> on_frame;
  /// After the reap: the wait status, and the tail of the child's stdout and
  /// stderr (output_capture_bytes of it).
  std::function<void(pid_t pid, int wait_status, std::string output)> on_exit;
  /// 0: the child's stdout and stderr are its parent's.
  std::size_t output_capture_bytes = 0;
  /// Without on_frame: the frames of the report that begin with 'M' (passed
  /// without it) as they come, while the first other frame is still the
  /// outcome (messages from a child that reports as it runs).
  std::function<void(std::string_view message)> on_message;
  /// spawn, forkserver: the parent's end of the socket the arguments go down
  /// is not sent `arguments` and closed but handed over (take_channel), a
  /// two-way channel to the child for as long as it runs.
  bool keep_channel = false;
};

/// The non-template half of a DestroyableProcess: the child, watched by a
/// fiber on a hub worker (which drains its report while it runs), ended by
/// SIGTERM, the grace period and SIGKILL when destroyed, and reaped there.
class ProcessWork final : public DestroyableWork {
 public:
  /// fork: `body(report_fd)` runs in the child and returns the encoded result.
  ProcessWork(DestroyableOptions options, UniqueFunction<std::string(int report_fd)> body,
              ChildReportHooks hooks = {});
  /// spawn or forkserver (`method`): the ProcessEntry named `entry`, given
  /// the encoded `arguments`.
  ProcessWork(DestroyableOptions options, StartMethod method, std::string entry,
              std::string arguments, ChildReportHooks hooks = {});
  ~ProcessWork() override;

  pid_t pid() const noexcept { return pid_.load(std::memory_order_acquire); }
  /// With ChildReportHooks::keep_channel, once start() has returned: the
  /// parent's end of the child's arguments socket (nonblocking), which the
  /// caller now owns and sends the arguments frame down first; -1 otherwise
  /// and after the first call.
  int take_channel() noexcept { return std::exchange(channel_fd_, -1); }
  /// The encoded result, once done() without an error.
  const std::string& result_bytes() const noexcept { return result_; }
  void destroy_and_wait();

 protected:
  void run_work() override;
  DestroyDelivery destroy_delivery() const noexcept override {
    return DestroyDelivery::once_started;
  }
  void launch() override;
  void abandon_launch() noexcept override;
  Settled settle(std::exception_ptr outcome, bool destroyed) override;
  std::exception_ptr pre_cancel_error() const override;
  std::exception_ptr result_error() const override;

 private:
  void end_destroyed_child();

  const std::chrono::nanoseconds grace_;
  UniqueFunction<std::string(int)> fork_body_;
  ChildReportHooks hooks_;
  const StartMethod method_ = StartMethod::fork;
  const std::string entry_;
  const std::string arguments_;
  std::unique_ptr<ChildProcess> child_;
  std::atomic<pid_t> pid_{-1};
  int channel_fd_ = -1;  // keep_channel: the arguments socket, until taken
  // Written by the watcher fiber; read by settle() there and by others once done().
  std::string result_;
  std::exception_ptr child_error_;
  int status_ = 0;
  bool reported_ = false;
  bool destroyed_while_alive_ = false;
  bool sigkill_sent_ = false;
};

}  // namespace detail

namespace detail {

/// What DestroyableThread and DestroyableProcess share: the handle on their
/// work, its states and join(). The destructor ends the work (destroy, then
/// wait, never throwing).
template <class Work>
class DestroyableHandle {
 public:
  /// Waits until done() (at most `timeout`); true if done. False at once for
  /// work never started and not destroyed. std::logic_error from the work's
  /// own fiber (it would wait for itself).
  bool join(std::optional<std::chrono::duration<double>> timeout = std::nullopt) {
    return work().join(timeout ? std::optional(saturating_ns(*timeout)) : std::nullopt);
  }
  bool destroyed() const { return work().destroyed(); }
  bool canceled() const { return work().canceled(); }
  bool ran() const { return work().ran(); }
  bool threw() const { return work().threw(); }
  std::exception_ptr error() const { return work().error(); }
  bool done() const { return work().done(); }

 protected:
  explicit DestroyableHandle(std::shared_ptr<Work> work) : work_(std::move(work)) {}
  ~DestroyableHandle() { end_work(); }
  DestroyableHandle(DestroyableHandle&&) noexcept = default;
  DestroyableHandle& operator=(DestroyableHandle&& other) noexcept {
    if (this != &other) {
      end_work();
      work_ = std::move(other.work_);
    }
    return *this;
  }

  Work& work() const {
    if (!work_) throw std::logic_error("weft: a moved-from destroyable handle");
    return *work_;
  }

 private:
  void end_work() noexcept {
    if (!work_) return;
    work_->destroy();
    work_->join_ignoring_interrupts();
  }

  std::shared_ptr<Work> work_;
};

}  // namespace detail

/// See the top of this file. Move-only; the destructor destroys work still
/// running and waits for it to end (never throws; a kill or Timeout aimed at
/// a fiber destroying it stays pending).
template <class R>
class DestroyableThread : public detail::DestroyableHandle<detail::DestroyableResult<R>> {
  using Handle = detail::DestroyableHandle<detail::DestroyableResult<R>>;

 public:
  template <detail::not_destroyable_options F, class... Args>
  explicit DestroyableThread(F f, Args... args)
      : DestroyableThread(DestroyableOptions{}, std::move(f), std::move(args)...) {}
  template <class F, class... Args>
  DestroyableThread(DestroyableOptions options, F f, Args... args)
      : Handle(make(options, std::move(f), std::move(args)...)) {}
  DestroyableThread(DestroyableThread&&) noexcept = default;
  DestroyableThread& operator=(DestroyableThread&&) noexcept = default;

  /// Hands the work to a worker thread and returns. Only the first call after
  /// construction does anything; after a destroy() it only leaves the work
  /// complete. Throws std::system_error if no thread can be started (the work
  /// stays unstarted).
  void start() { this->work().start(); }
  /// Asks the work to end (see the top of this file) and returns at once.
  /// Idempotent; any thread or fiber.
  void destroy() { this->work().destroy(); }
  /// Waits as join() does, then returns a copy of the result (again on every
  /// call) or rethrows error(). std::logic_error for work never started and
  /// not destroyed.
  R get_or_throw() {
    this->work().wait_for_result();
    if constexpr (!std::is_void_v<R>) return *this->work().result();
  }

 private:
  template <class... A>
  static std::shared_ptr<detail::DestroyableResult<R>> make(DestroyableOptions options, A&&... a) {
    detail::require_callable(std::get<0>(std::forward_as_tuple(a...)), "weft::DestroyableThread");
    return std::make_shared<detail::DestroyableResult<R>>(options, std::forward<A>(a)...);
  }
};

template <detail::not_destroyable_options F, class... Args>
DestroyableThread(F, Args...) -> DestroyableThread<std::invoke_result_t<F, Args...>>;
template <class F, class... Args>
DestroyableThread(DestroyableOptions, F, Args...)
    -> DestroyableThread<std::invoke_result_t<F, Args...>>;

/// `f(args...)` in a child process (see the top of this file for the states,
/// and process_entry.hpp for the start methods). `R` and `Args` cross the
/// boundary through weft::Codec (`fork` needs one only for `R`). With `spawn`
/// or `forkserver`, `f` must be a ProcessEntry (std::invalid_argument
/// otherwise, at construction).
///
/// - `destroy()`: SIGTERM to the child's process group, SIGKILL after
///   `destroy_grace_period`, then reap; it waits for that (a suspension point
///   in a fiber). Idempotent; a destroy that finds the child already exited
///   does not cancel it.
/// - `error()`, in priority order: the child's exception (a ChildError, and
///   then `threw()`); "Not starting work on pre-canceled process" for a
///   destroy before start (nothing is forked); a SIGKILL weft did not send,
///   or exit code 137: ChildOutOfMemoryError; any other non-zero exit or
///   signal, when not canceled: a std::runtime_error naming it. A SIGKILL weft
///   sent is never reported as out of memory. `get_or_throw()` of a canceled
///   child without an error throws std::runtime_error("process was destroyed").
/// - A result of any size arrives (the parent drains the pipe while it
///   waits); the child is reaped and every fd closed on every path; weft
///   never reaps a child it did not start.
template <class R>
class DestroyableProcess : public detail::DestroyableHandle<detail::ProcessWork> {
 public:
  template <detail::not_destroyable_options F, class... Args>
  DestroyableProcess(StartMethod method, F f, Args... args)
      : DestroyableProcess(DestroyableOptions{}, method, std::move(f), std::move(args)...) {}
  template <class F, class... Args>
  DestroyableProcess(DestroyableOptions options, StartMethod method, F f, Args... args)
      : DestroyableHandle(make(options, method, std::move(f), std::move(args)...)) {}
  DestroyableProcess(DestroyableProcess&&) noexcept = default;
  DestroyableProcess& operator=(DestroyableProcess&&) noexcept = default;

  /// Starts the child and returns (pid() is valid from then on). Only the
  /// first call does anything. Throws std::system_error if no process can be
  /// made, std::logic_error for `spawn` in a program that never called
  /// process_main (the work then stays unstarted).
  void start() { work().start(); }
  /// See above: ends the child and waits for it to be reaped.
  void destroy() { work().destroy_and_wait(); }
  /// Waits as join() does, then returns the result (decoded again on every
  /// call) or throws (see above). std::logic_error for work never started and
  /// not destroyed.
  R get_or_throw() {
    work().wait_for_result();
    if constexpr (!std::is_void_v<R>) return detail::decode_whole<R>(work().result_bytes());
  }
  /// The child's pid, once start() has returned; -1 before.
  pid_t pid() const { return work().pid(); }

 private:
  template <class F, class... Args>
  static std::shared_ptr<detail::ProcessWork> make(DestroyableOptions options, StartMethod method,
                                                   F f, Args... args) {
    static_assert(detail::has_codec_or_void<R>,
                  "weft::DestroyableProcess: the result type needs a weft::Codec");
    detail::require_callable(f, "weft::DestroyableProcess");
    switch (method) {
      case StartMethod::fork:
        return std::make_shared<detail::ProcessWork>(
            options,
            detail::UniqueFunction<std::string(int)>(
                [f = std::move(f), args = std::make_tuple(std::move(args)...)](int) mutable {
                  return std::apply(
                      [&](auto&... a) { return detail::invoke_and_encode(f, std::move(a)...); },
                      args);
                }));
      case StartMethod::spawn:
      case StartMethod::forkserver:
        break;
    }
    if constexpr (is_process_entry_v<F>) {
      return std::make_shared<detail::ProcessWork>(options, method, f.name(),
                                                   detail::encode_all(args...));
    } else {
      detail::throw_not_an_entry(method, "weft::DestroyableProcess");
    }
  }
};

template <detail::not_destroyable_options F, class... Args>
DestroyableProcess(StartMethod, F, Args...) -> DestroyableProcess<std::invoke_result_t<F, Args...>>;
template <class F, class... Args>
DestroyableProcess(DestroyableOptions, StartMethod, F, Args...)
    -> DestroyableProcess<std::invoke_result_t<F, Args...>>;

}  // namespace weft

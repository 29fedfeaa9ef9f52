#pragma once
/// Steps (spine-engine's thread executor, dagster's child-process executor):
/// a step is a callable `void(StepEmitter<E>& emit)` run apart from its
/// caller, which reports values with `emit(E)`; the caller reads them, in
/// order, as events, without ever waiting more than one tick, so one fiber
/// (or thread) can watch many steps by calling next() on each in turn.
///
/// The events of one step, in order: StepStart (the id of the thread or
/// process running it), the step's values, then StepDone, or StepSystemError
/// if the step threw a std::exception. A step that ends without either (it
/// threw something else, or its fiber was killed) gives the step kind's crash
/// error instead, after every value it emitted. StepIdle is what next()
/// returns when a tick passed with nothing to report.
///
/// StepExecutor runs many named steps, at most `max_concurrent` at once,
/// retrying a failed one, and hands every event to one callback in each
/// step's order. Its steps are added by kind: add_thread_step() here (and a
/// child-process kind sharing the same executor, events and summary).
///
/// Every wait (next, run) suspends only the calling fiber when called from a
/// fiber and blocks a plain thread otherwise.

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include <weft/process/destroyable.hpp>
#include <weft/process/step_emitter.hpp>
#include <weft/runtime/detail/event_count.hpp>
#include <weft/runtime/detail/unique_function.hpp>

namespace weft {

/// The step has begun on the thread (or in the process) `pid`.
struct StepStart {
  pid_t pid = 0;
};
/// The step returned.
struct StepDone {
  pid_t pid = 0;
};
/// The step threw: the exception's type (demangled, e.g. "std::invalid_argument")
/// and what(); for a child process, the tail of its stdout and stderr.
struct StepSystemError {
  pid_t pid = 0;
  std::string type_name;
  std::string message;
  std::string output;
};
/// A tick passed with nothing to report (dagster's `None`).
struct StepIdle {};

template <class E>
using StepEvent = std::variant<StepIdle, StepStart, E, StepDone, StepSystemError>;

/// Is `event` the last of its step (StepDone or StepSystemError)?
template <class E>
bool is_terminal(const StepEvent<E>& event) noexcept {
  return std::holds_alternative<StepDone>(event) || std::holds_alternative<StepSystemError>(event);
}

/// A thread step ended without StepDone or StepSystemError: it threw
/// something that is not a std::exception, or its fiber was killed.
class ThreadCrashError : public std::runtime_error {
 public:
  explicit ThreadCrashError(pid_t tid);
  /// The thread that ran the step (0 if it never began).
  pid_t tid() const noexcept { return tid_; }

 private:
  pid_t tid_;
};

struct ThreadStepOptions {
  /// How long next() waits before it returns StepIdle.
  std::chrono::nanoseconds tick = std::chrono::milliseconds(20);
};

namespace detail {

/// For StepExecutor::run: while it lives (if `enabled`), counts SIGINTs,
/// provided SIGINT's disposition is the default (the program has no handler
/// of its own); the default is restored once the last watch ends. Watches
/// may overlap (several executors running at once).
class SigintWatch {
 public:
  explicit SigintWatch(bool enabled);
  ~SigintWatch();
  SigintWatch(const SigintWatch&) = delete;
  SigintWatch& operator=(const SigintWatch&) = delete;
  /// Is SIGINT being counted for this watch?
  bool active() const noexcept { return active_; }
  /// Has a SIGINT arrived since this watch began?
  bool seen() const noexcept;

 private:
  bool active_ = false;
  unsigned long first_ = 0;
};

/// The type's name as written in C++ (abi::__cxa_demangle).
std::string demangled_name(const std::type_info& type);

/// What a StepExecutor needs of a running step, whatever runs it.
template <class E>
class StepSource {
 public:
  virtual ~StepSource() = default;
  /// The next event if one is there, or nullopt; never waits.
  virtual std::optional<StepEvent<E>> try_next() = 0;
  /// Starts ending the step (destroys its thread's fiber or its child)
  /// without waiting; the destructor waits.
  virtual void begin_stop() noexcept = 0;
};

/// Events reported and not yet read, filled by the step's side and read by
/// next(); `wake` is notified at each (the executor shares one between all
/// of its steps, so that it can wait for any of them).
template <class E>
class StepChannel {
 public:
  explicit StepChannel(std::shared_ptr<EventCount> wake) : wake_(std::move(wake)) {}

  void push(StepEvent<E> event) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(event));
    }
    wake_->notify_all();
  }
  /// Keeps the step's last event until close(), so that a reader who sees it
  /// knows the step's thread has let go of everything.
  void set_terminal(StepEvent<E> event) {
    std::lock_guard lock(mutex_);
    terminal_.emplace(std::move(event));
  }
  bool has_terminal() const {
    std::lock_guard lock(mutex_);
    return terminal_.has_value();
  }
  /// What the reader gets once every event is read, when the step ended
  /// without a terminal event (its kind's crash error).
  void set_crash(std::exception_ptr crash) {
    std::lock_guard lock(mutex_);
    crash_ = std::move(crash);
  }
  std::exception_ptr crash() const {
    std::lock_guard lock(mutex_);
    return crash_;
  }
  /// The step's side has ended: queues the last event, if there was one.
  void close() noexcept {
    {
      std::lock_guard lock(mutex_);
      if (terminal_) queue_.push_back(std::move(*terminal_));
      closed_ = true;
    }
    wake_->notify_all();
  }
  /// The oldest event; nullopt if none, with `closed` set if none will come.
  std::optional<StepEvent<E>> try_pop(bool& closed) {
    std::lock_guard lock(mutex_);
    closed = closed_ && queue_.empty();
    if (queue_.empty()) return std::nullopt;
    std::optional<StepEvent<E>> event(std::move(queue_.front()));
    queue_.pop_front();
    return event;
  }
  EventCount& wake() noexcept { return *wake_; }
  void set_id(pid_t id) noexcept { id_.store(id, std::memory_order_relaxed); }
  pid_t id() const noexcept { return id_.load(std::memory_order_relaxed); }

 private:
  const std::shared_ptr<EventCount> wake_;
  mutable std::mutex mutex_;
  std::deque<StepEvent<E>> queue_;
  std::optional<StepEvent<E>> terminal_;
  std::exception_ptr crash_;
  bool closed_ = false;
  std::atomic<pid_t> id_{0};
};

/// next(), try_next() and finished() of every step kind: reading its
/// channel, a tick at a time.
template <class E>
class ChannelStep : public StepSource<E> {
 public:
  using value_type = E;

  /// The next event as soon as there is one; StepIdle if none came within
  /// one tick from this call. std::logic_error after the end (finished()).
  StepEvent<E> next() {
    const auto deadline = EventCount::caller_deadline(tick_);
    for (;;) {
      const auto key = channel_->wake().prepare_wait();
      if (auto event = try_next()) return std::move(*event);
      if (!channel_->wake().wait(key, deadline)) {
        if (auto event = try_next()) return std::move(*event);
        return StepIdle{};
      }
    }
  }

  /// As next(), without waiting: nullopt when there is nothing yet.
  std::optional<StepEvent<E>> try_next() override {
    if (finished_) throw std::logic_error("weft: next() on a step that has already ended");
    bool closed = false;
    std::optional<StepEvent<E>> event = channel_->try_pop(closed);
    if (event) {
      finished_ = is_terminal(*event);
      return event;
    }
    if (closed) {
      finished_ = true;
      std::rethrow_exception(channel_->crash());
    }
    return std::nullopt;
  }

  /// Has next() returned StepDone or StepSystemError, or thrown the step
  /// kind's crash error? What ran the step has let go of everything by then.
  bool finished() const noexcept { return finished_; }

 protected:
  ChannelStep(std::shared_ptr<EventCount> wake, std::chrono::nanoseconds tick)
      : channel_(std::make_shared<StepChannel<E>>(std::move(wake))), tick_(tick) {}
  ChannelStep(ChannelStep&&) noexcept = default;

  std::shared_ptr<StepChannel<E>> channel_;

 private:
  std::chrono::nanoseconds tick_;
  bool finished_ = false;
};

/// A frame of a child step's report: a value, or how the step ended.
struct ChildStepFrame {
  enum class Kind : unsigned char { value, done, error };
  Kind kind = Kind::value;
  std::string_view value;  // the encoded value (Kind::value), inside the frame
  std::string type_name;   // Kind::error
  std::string message;
};
ChildStepFrame parse_child_step_frame(std::string_view frame);

}  // namespace detail

/// Runs `step(emit)` as a fiber on an OS thread of its own (a cached worker
/// that keeps its hub, as DestroyableThread's), from the constructor on.
/// StepStart and StepDone carry the thread's id (gettid()); a std::exception
/// from the step gives StepSystemError (`output` empty); anything else ends
/// the step without a terminal event, and next() then throws
/// ThreadCrashError. Move-only. Destroying it before the end throws
/// ThreadDestroyedError in the step at its next suspension point (as
/// DestroyableThread::destroy) and waits for it to end.
template <class E>
class ThreadStep final : public detail::ChannelStep<E> {
 public:
  /// std::invalid_argument for an empty `step`; std::system_error if no
  /// thread can be started.
  template <class F>
  explicit ThreadStep(F step, ThreadStepOptions options = {})
      : ThreadStep(std::make_shared<detail::EventCount>(), std::move(step), options) {}
  /// For StepExecutor: events notify `wake` too.
  template <class F>
  ThreadStep(std::shared_ptr<detail::EventCount> wake, F step, ThreadStepOptions options)
      : detail::ChannelStep<E>(std::move(wake), options.tick) {
    detail::require_callable(step, "weft::ThreadStep");
    work_ = std::make_shared<detail::DestroyableResult<void>>(
        DestroyableOptions{},
        [channel = this->channel_, step = std::move(step)]() mutable { run_step(*channel, step); });
    work_->set_on_complete([channel = this->channel_] {
      if (!channel->has_terminal())
        channel->set_crash(std::make_exception_ptr(ThreadCrashError(channel->id())));
      channel->close();
    });
    work_->start();
  }
  void begin_stop() noexcept override {
    if (work_) work_->destroy();
  }
  ~ThreadStep() override {
    if (!work_) return;
    work_->destroy();
    work_->join_ignoring_interrupts();
  }
  ThreadStep(ThreadStep&&) noexcept = default;
  ThreadStep& operator=(ThreadStep&&) = delete;

 private:
  template <class F>
  static void run_step(detail::StepChannel<E>& channel, F& step) {
    const pid_t tid = ::gettid();
    channel.set_id(tid);
    channel.push(StepStart{tid});
    StepEmitter<E> emit([&channel](E value) {
      channel.push(StepEvent<E>(std::in_place_index<2>, std::move(value)));
    });
    try {
      step(emit);
    } catch (const std::exception& error) {
      channel.set_terminal(
          StepSystemError{tid, detail::demangled_name(typeid(error)), error.what(), {}});
      return;
    }
    // Anything else goes on up: the step ends without a terminal event.
    channel.set_terminal(StepDone{tid});
  }

  std::shared_ptr<detail::DestroyableResult<void>> work_;
};

/// A child-process step ended without StepDone or StepSystemError: it died
/// (a signal, _exit, an abort). what(): "Child process PID crashed with exit
/// code CODE." and the tail of its output.
class ChildProcessCrashError : public std::runtime_error {
 public:
  ChildProcessCrashError(pid_t pid, int exit_code, std::string output);
  pid_t pid() const noexcept { return pid_; }
  /// The exit code, or the negative signal number (-11 for SIGSEGV).
  int exit_code() const noexcept { return exit_code_; }
  /// The tail of its stdout and stderr.
  const std::string& output() const noexcept { return output_; }

 private:
  pid_t pid_;
  int exit_code_;
  std::string output_;
};

struct ChildProcessStepOptions {
  /// How long next() waits before it returns StepIdle.
  std::chrono::nanoseconds tick = std::chrono::milliseconds(20);
  /// How much of the child's stdout and stderr (together, the last bytes) a
  /// StepSystemError or ChildProcessCrashError carries; 0: not captured (the
  /// child writes to its parent's).
  std::size_t output_capture_bytes = 65536;
  /// Destroying a running step: SIGTERM, then SIGKILL after this.
  std::chrono::duration<double> destroy_grace_period{10};
};

namespace detail {
/// Exit code of a wait status, negative for a signal.
int exit_code_of(int wait_status) noexcept;
}  // namespace detail

/// Runs `step(emit, args...)` in a child process, started by the
/// constructor: `fork` runs any callable; `spawn` runs a ProcessEntry whose
/// first parameter is `weft::StepEmitter<E>&` (its other arguments cross
/// through Codec). Events as for every step (the top of this file):
/// StepStart carries the child's pid; emit(value) has written the value out
/// of the child before it returns, so a value emitted just before a crash
/// arrives before the ChildProcessCrashError (its exit code; negative for a
/// signal). StepSystemError carries the step's exception (type, what()) and
/// the tail of the child's output. By the time finished() turns true the
/// child is reaped and every fd closed. Destroying the step before its end
/// destroys the child (SIGTERM, the grace period, SIGKILL) and waits.
/// Move-only.
template <class E>
class ChildProcessStep final : public detail::ChannelStep<E> {
 public:
  template <class F>
  requires(!std::is_same_v<F, ChildProcessStepOptions>)
      ChildProcessStep(StartMethod method, F step, ChildProcessStepOptions options = {})
      : ChildProcessStep(std::make_shared<detail::EventCount>(), method, options, std::move(step)) {
  }
  template <class F, class... Args>
  ChildProcessStep(StartMethod method, ChildProcessStepOptions options, F step, Args... args)
      : ChildProcessStep(std::make_shared<detail::EventCount>(), method, options, std::move(step),
                         std::move(args)...) {}
  /// For StepExecutor: events notify `wake` too.
  template <class F, class... Args>
  ChildProcessStep(std::shared_ptr<detail::EventCount> wake, StartMethod method,
                   ChildProcessStepOptions options, F step, Args... args)
      : detail::ChannelStep<E>(std::move(wake), options.tick) {
    static_assert(detail::has_codec<E>, "weft::ChildProcessStep: E needs a weft::Codec");
    detail::require_callable(step, "weft::ChildProcessStep");
    const DestroyableOptions destroyable{.destroy_grace_period = options.destroy_grace_period,
                                         .completion_event = nullptr};
    detail::ChildReportHooks hooks = report_hooks(options.output_capture_bytes);
    switch (method) {
      case StartMethod::fork:
        work_ = std::make_shared<detail::ProcessWork>(
            destroyable,
            detail::UniqueFunction<std::string(int)>(
                [step = std::move(step),
                 args = std::make_tuple(std::move(args)...)](int report_fd) mutable {
                  StepEmitter<E> emit(detail::child_step_sink<E>(report_fd));
                  std::apply([&](auto&... a) { step(emit, std::move(a)...); }, args);
                  return std::string();
                }),
            std::move(hooks));
        break;
      case StartMethod::spawn:
      case StartMethod::forkserver:
        if constexpr (is_process_entry_v<F>) {
          work_ = std::make_shared<detail::ProcessWork>(
              destroyable, method, step.name(), detail::encode_all(args...), std::move(hooks));
        } else {
          detail::throw_not_an_entry(method, "weft::ChildProcessStep");
        }
        break;
    }
    work_->set_on_complete([channel = this->channel_] { channel->close(); });
    work_->start();
  }
  void begin_stop() noexcept override {
    if (work_) work_->destroy();
  }
  ~ChildProcessStep() override {
    if (!work_) return;
    work_->destroy();
    work_->join_ignoring_interrupts();
  }
  ChildProcessStep(ChildProcessStep&&) noexcept = default;
  ChildProcessStep& operator=(ChildProcessStep&&) = delete;

  /// The child's pid (valid once the constructor has returned).
  pid_t pid() const { return work_->pid(); }

 private:
  detail::ChildReportHooks report_hooks(std::size_t capture_bytes) {
    // How the step ended, as its report said (kept until the exit).
    auto ending = std::make_shared<std::optional<detail::ChildStepFrame>>();
    detail::ChildReportHooks hooks;
    hooks.output_capture_bytes = capture_bytes;
    hooks.on_start = [channel = this->channel_](pid_t pid) {
      channel->set_id(pid);
      channel->push(StepStart{pid});
    };
    hooks.on_frame = [channel = this->channel_, ending](pid_t, std::string_view frame) {
      detail::ChildStepFrame parsed = detail::parse_child_step_frame(frame);
      if (parsed.kind == detail::ChildStepFrame::Kind::value) {
        channel->push(StepEvent<E>(std::in_place_index<2>, detail::decode_whole<E>(parsed.value)));
      } else {
        parsed.value = {};
        *ending = std::move(parsed);
      }
    };
    hooks.on_exit = [channel = this->channel_, ending](pid_t pid, int status, std::string output) {
      if (!*ending) {
        channel->set_crash(std::make_exception_ptr(
            ChildProcessCrashError(pid, detail::exit_code_of(status), std::move(output))));
      } else if ((*ending)->kind == detail::ChildStepFrame::Kind::done) {
        channel->set_terminal(StepDone{pid});
      } else {
        channel->set_terminal(StepSystemError{pid, std::move((*ending)->type_name),
                                              std::move((*ending)->message), std::move(output)});
      }
    };
    return hooks;
  }

  std::shared_ptr<detail::ProcessWork> work_;
};

struct StepExecutorOptions {
  /// Steps running at once.
  std::size_t max_concurrent = 100;
  /// Of those, child-process steps running at once; 0: the number of cores.
  std::size_t max_concurrent_processes = 0;
  /// How many more times a failed step (StepSystemError, a crash, or no
  /// thread to start it on) is run before it counts as failed.
  std::size_t retries = 0;
  /// Passed to each step; also how often run() looks for a SIGINT.
  std::chrono::nanoseconds tick = std::chrono::milliseconds(20);
  /// While run() runs, a SIGINT interrupts it as stop() does, if the program
  /// has no SIGINT handler of its own (the disposition is the default, which
  /// run() restores when it returns). The children are in process groups of
  /// their own, so a terminal's Ctrl-C reaches only the parent, which ends
  /// them.
  bool stop_on_sigint = true;
};

/// One step that failed, as its last attempt did.
struct StepFailure {
  std::string step;
  std::size_t attempts = 0;
  /// The exception's type and what() (StepSystemError's, or the crash error's).
  std::string type_name;
  std::string message;
  /// It ended without a terminal event (or could not be started).
  bool crashed = false;
};

/// What StepExecutor::run did, step by step.
struct StepSummary {
  std::vector<std::string> succeeded;  // in the order they ended
  std::vector<StepFailure> failed;     // in the order they failed for good
  /// The run was interrupted (stop() or SIGINT): every step still running
  /// was ended, and those and the steps never started are `unfinished`.
  bool interrupted = false;
  std::vector<std::string> unfinished;  // in the order they were added
  bool ok() const noexcept { return failed.empty() && !interrupted; }
  /// "" if ok(); otherwise one line naming every failed step and why:
  /// "During step execution errors occurred in steps: In step a (2 attempts):
  /// std::runtime_error: boom; In step b (1 attempt): crashed: ...", then,
  /// if interrupted, "Execution was interrupted; unfinished steps: c, d".
  std::string describe() const;
};

/// Runs named steps, at most `max_concurrent` at once, each retried up to
/// `retries` times; see the top of this file. The shape every step kind
/// shares: a kind adds its steps with its own add_*_step(name, step, ...);
/// run() starts them in the order added, reads every running step in turn,
/// and gives the callback each event but StepIdle, in the step's order, with
/// the step's name and its attempt (1 for the first run). A step's events of
/// a failed attempt are followed by those of its retry.
template <class E>
class StepExecutor {
 public:
  using EventCallback =
      std::function<void(const std::string& step, std::size_t attempt, const StepEvent<E>& event)>;

  /// std::invalid_argument if max_concurrent is 0.
  explicit StepExecutor(StepExecutorOptions options = {}) : options_(options) {
    if (options_.max_concurrent == 0) {
      throw std::invalid_argument("weft::StepExecutor: max_concurrent must be at least 1");
    }
  }

  /// Adds a step run on a thread (ThreadStep). std::invalid_argument for an
  /// empty step or a name already added.
  template <class F>
  void add_thread_step(std::string name, F step) {
    detail::require_callable(step, "weft::StepExecutor::add_thread_step");
    add_step(
        std::move(name),
        [step = std::move(step), tick = options_.tick](
            std::shared_ptr<detail::EventCount> wake) -> std::unique_ptr<detail::StepSource<E>> {
          return std::make_unique<ThreadStep<E>>(std::move(wake), step,
                                                 ThreadStepOptions{.tick = tick});
        });
  }

  /// Adds a step run in a child process (ChildProcessStep): `fork` runs any
  /// callable, `spawn` a ProcessEntry whose first parameter is
  /// StepEmitter<E>&. std::invalid_argument as add_thread_step.
  template <class F>
  void add_child_process_step(std::string name, StartMethod method, F step,
                              ChildProcessStepOptions options = {}) {
    detail::require_callable(step, "weft::StepExecutor::add_child_process_step");
    options.tick = options_.tick;
    add_step(
        std::move(name),
        [method, step = std::move(step), options](
            std::shared_ptr<detail::EventCount> wake) -> std::unique_ptr<detail::StepSource<E>> {
          return std::make_unique<ChildProcessStep<E>>(std::move(wake), method, options, step);
        },
        true);
  }

  /// The same, with the step called as `step(emit, args...)` (arguments
  /// through Codec for spawn and forkserver).
  template <class F, class... Args>
  void add_child_process_step(std::string name, StartMethod method,
                              ChildProcessStepOptions options, F step, Args... args) {
    detail::require_callable(step, "weft::StepExecutor::add_child_process_step");
    options.tick = options_.tick;
    add_step(
        std::move(name),
        [method, step = std::move(step), options, args = std::make_tuple(std::move(args)...)](
            std::shared_ptr<detail::EventCount> wake) -> std::unique_ptr<detail::StepSource<E>> {
          return std::apply(
              [&](const auto&... a) {
                return std::make_unique<ChildProcessStep<E>>(std::move(wake), method, options,
                                                             step, a...);
              },
              args);
        },
        true);
  }

  /// Runs every step added (again on a later call) and returns once all have
  /// ended. An exception from `on_event` ends the run: the steps still
  /// running are destroyed and waited for, and it propagates.
  StepSummary run(const EventCallback& on_event);

  /// Interrupts run(): it starts no more steps, ends every running one (a
  /// thread step's fiber is destroyed; a child gets SIGTERM, then SIGKILL
  /// after its grace period, and is reaped), waits for them, and returns a
  /// summary with `interrupted`. Any thread, any fiber, the callback too;
  /// idempotent; never waits. A stop() while no run() runs interrupts the
  /// next one before it starts anything.
  void stop() noexcept {
    stop_requested_.store(true);
    wake_->notify_all();
  }

 protected:
  using Launch =
      std::function<std::unique_ptr<detail::StepSource<E>>(std::shared_ptr<detail::EventCount>)>;
  /// For each step kind: `launch(wake)` starts one attempt; `child_process`
  /// counts it against max_concurrent_processes.
  void add_step(std::string name, Launch launch, bool child_process = false) {
    for (const Entry& entry : steps_) {
      if (entry.name == name) {
        throw std::invalid_argument("weft::StepExecutor: a step named '" + name +
                                    "' was already added");
      }
    }
    steps_.push_back(Entry{std::move(name), std::move(launch), child_process});
  }

 private:
  struct Entry {
    std::string name;
    Launch launch;
    bool child_process = false;
  };
  struct Running {
    std::size_t entry;
    std::size_t attempt;
    std::unique_ptr<detail::StepSource<E>> source;
  };

  void end_interrupted(StepSummary& summary,
                       const std::list<std::pair<std::size_t, std::size_t>>& waiting,
                       std::vector<Running>& running);

  bool interrupted(const detail::SigintWatch& sigint) const noexcept {
    return stop_requested_.load() || sigint.seen();
  }

  StepExecutorOptions options_;
  std::vector<Entry> steps_;
  std::shared_ptr<detail::EventCount> wake_ = std::make_shared<detail::EventCount>();
  std::atomic<bool> stop_requested_{false};
};

template <class E>
StepSummary StepExecutor<E>::run(const EventCallback& on_event) {
  const std::shared_ptr<detail::EventCount>& wake = wake_;
  const detail::SigintWatch sigint(options_.stop_on_sigint);
  StepSummary summary;
  // (entry, attempt); a list, since retries are added while it is walked
  std::list<std::pair<std::size_t, std::size_t>> waiting;
  for (std::size_t i = 0; i < steps_.size(); ++i)
    waiting.emplace_back(i, 1);
  std::vector<Running> running;

  // A failed attempt runs again, or the step has failed for good.
  auto failed = [&](std::size_t entry, std::size_t attempt, std::string type_name,
                    std::string message, bool crashed) {
    if (attempt <= options_.retries) {
      waiting.emplace_back(entry, attempt + 1);
      return;
    }
    summary.failed.push_back(StepFailure{steps_[entry].name, attempt, std::move(type_name),
                                         std::move(message), crashed});
  };

  const std::size_t process_limit =
      options_.max_concurrent_processes != 0
          ? options_.max_concurrent_processes
          : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  auto processes_running = [&] {
    return static_cast<std::size_t>(
        std::count_if(running.begin(), running.end(),
                      [&](const Running& r) { return steps_[r.entry].child_process; }));
  };
  while (!waiting.empty() || !running.empty()) {
    if (interrupted(sigint)) {
      end_interrupted(summary, waiting, running);
      break;
    }
    // Start what may start, in order; a child-process step over its own limit
    // waits (and those behind it keep their turn after it).
    for (auto next = waiting.begin();
         running.size() < options_.max_concurrent && next != waiting.end();) {
      const auto [entry, attempt] = *next;
      if (steps_[entry].child_process && processes_running() >= process_limit) {
        ++next;
        continue;
      }
      next = waiting.erase(next);
      try {
        running.push_back(Running{entry, attempt, steps_[entry].launch(wake)});
      } catch (const std::exception& error) {
        failed(entry, attempt, detail::demangled_name(typeid(error)), error.what(), true);
      }
    }
    const auto key = wake->prepare_wait();
    bool progress = false;
    for (std::size_t i = 0; i < running.size();) {
      Running& step = running[i];
      bool ended = false;
      while (!ended) {
        std::optional<StepEvent<E>> event;
        try {
          event = step.source->try_next();
        } catch (const std::logic_error&) {
          throw;  // weft's own misuse, not the step's end
        } catch (const std::exception& crash) {
          progress = true;
          failed(step.entry, step.attempt, detail::demangled_name(typeid(crash)), crash.what(),
                 true);
          ended = true;
          break;
        }
        if (!event) break;
        progress = true;
        on_event(steps_[step.entry].name, step.attempt, *event);
        if (const auto* error = std::get_if<StepSystemError>(&*event)) {
          failed(step.entry, step.attempt, error->type_name, error->message, false);
          ended = true;
        } else if (std::holds_alternative<StepDone>(*event)) {
          summary.succeeded.push_back(steps_[step.entry].name);
          ended = true;
        }
      }
      if (ended) {
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    if (progress || running.empty()) continue;
    if (sigint.active()) {
      wake->wait(key, detail::EventCount::caller_deadline(options_.tick));
    } else {
      wake->wait(key);
    }
  }
  stop_requested_.store(false);
  return summary;
}

template <class E>
void StepExecutor<E>::end_interrupted(StepSummary& summary,
                                      const std::list<std::pair<std::size_t, std::size_t>>& waiting,
                                      std::vector<Running>& running) {
  summary.interrupted = true;
  std::vector<bool> unfinished(steps_.size(), false);
  for (const auto& [entry, attempt] : waiting)
    unfinished[entry] = true;
  for (Running& step : running) {
    unfinished[step.entry] = true;
    step.source->begin_stop();  // all at once: their grace periods overlap
  }
  running.clear();  // each waits for its step's end
  for (std::size_t i = 0; i < steps_.size(); ++i)
    if (unfinished[i]) summary.unfinished.push_back(steps_[i].name);
}

}  // namespace weft

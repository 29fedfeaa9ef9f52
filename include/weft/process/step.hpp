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

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include <weft/process/destroyable.hpp>
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

/// What a step reports its values through.
template <class E>
class StepEmitter {
 public:
  /// Every emit(value) calls `sink(value)`; weft makes one for each step it
  /// runs (make one yourself to call a step directly).
  explicit StepEmitter(detail::UniqueFunction<void(E)> sink) : sink_(std::move(sink)) {}
  StepEmitter(const StepEmitter&) = delete;
  StepEmitter& operator=(const StepEmitter&) = delete;

  /// Reports `value`; the reader's next() may return it at once.
  void operator()(E value) { sink_(std::move(value)); }

 private:
  detail::UniqueFunction<void(E)> sink_;
};

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

/// The type's name as written in C++ (abi::__cxa_demangle).
std::string demangled_name(const std::type_info& type);

/// What a StepExecutor needs of a running step, whatever runs it.
template <class E>
class StepSource {
 public:
  virtual ~StepSource() = default;
  /// The next event if one is there, or nullopt; never waits.
  virtual std::optional<StepEvent<E>> try_next() = 0;
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
  std::mutex mutex_;
  std::deque<StepEvent<E>> queue_;
  std::optional<StepEvent<E>> terminal_;
  bool closed_ = false;
  std::atomic<pid_t> id_{0};
};

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
class ThreadStep final : public detail::StepSource<E> {
 public:
  using value_type = E;

  /// std::invalid_argument for an empty `step`; std::system_error if no
  /// thread can be started.
  template <class F>
  explicit ThreadStep(F step, ThreadStepOptions options = {})
      : ThreadStep(std::make_shared<detail::EventCount>(), std::move(step), options) {}
  /// For StepExecutor: events notify `wake` too.
  template <class F>
  ThreadStep(std::shared_ptr<detail::EventCount> wake, F step, ThreadStepOptions options)
      : channel_(std::make_shared<detail::StepChannel<E>>(std::move(wake))), options_(options) {
    detail::require_callable(step, "weft::ThreadStep");
    work_ = std::make_shared<detail::DestroyableResult<void>>(
        DestroyableOptions{},
        [channel = channel_, step = std::move(step)]() mutable { run_step(*channel, step); });
    work_->set_on_complete([channel = channel_] { channel->close(); });
    work_->start();
  }
  ~ThreadStep() override {
    if (!work_) return;
    work_->destroy();
    work_->join_ignoring_interrupts();
  }
  ThreadStep(ThreadStep&&) noexcept = default;
  ThreadStep& operator=(ThreadStep&&) = delete;

  /// The next event as soon as there is one; StepIdle if none came within
  /// one tick from this call. std::logic_error after the end (finished()).
  StepEvent<E> next() {
    const auto deadline = detail::EventCount::caller_deadline(options_.tick);
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
    if (finished_) throw std::logic_error("weft::ThreadStep::next: the step has already ended");
    bool closed = false;
    std::optional<StepEvent<E>> event = channel_->try_pop(closed);
    if (event) {
      finished_ = is_terminal(*event);
      return event;
    }
    if (closed) {
      finished_ = true;
      throw ThreadCrashError(channel_->id());
    }
    return std::nullopt;
  }

  /// Has next() returned StepDone or StepSystemError, or thrown
  /// ThreadCrashError? The step's thread has let go of it by then.
  bool finished() const noexcept { return finished_; }

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

  std::shared_ptr<detail::StepChannel<E>> channel_;
  std::shared_ptr<detail::DestroyableResult<void>> work_;
  ThreadStepOptions options_;
  bool finished_ = false;
};

struct StepExecutorOptions {
  /// Steps running at once.
  std::size_t max_concurrent = 100;
  /// How many more times a failed step (StepSystemError, a crash, or no
  /// thread to start it on) is run before it counts as failed.
  std::size_t retries = 0;
  /// Passed to each step.
  std::chrono::nanoseconds tick = std::chrono::milliseconds(20);
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
  bool ok() const noexcept { return failed.empty(); }
  /// "" if ok(); otherwise one line naming every failed step and why:
  /// "During step execution errors occurred in steps: In step a (2 attempts):
  /// std::runtime_error: boom; In step b (1 attempt): crashed: ...".
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

  /// Runs every step added (again on a later call) and returns once all have
  /// ended. An exception from `on_event` ends the run: the steps still
  /// running are destroyed and waited for, and it propagates.
  StepSummary run(const EventCallback& on_event);

 protected:
  using Launch =
      std::function<std::unique_ptr<detail::StepSource<E>>(std::shared_ptr<detail::EventCount>)>;
  /// For each step kind: `launch(wake)` starts one attempt.
  void add_step(std::string name, Launch launch) {
    for (const Entry& entry : steps_) {
      if (entry.name == name) {
        throw std::invalid_argument("weft::StepExecutor: a step named '" + name +
                                    "' was already added");
      }
    }
    steps_.push_back(Entry{std::move(name), std::move(launch)});
  }

 private:
  struct Entry {
    std::string name;
    Launch launch;
  };
  struct Running {
    std::size_t entry;
    std::size_t attempt;
    std::unique_ptr<detail::StepSource<E>> source;
  };

  StepExecutorOptions options_;
  std::vector<Entry> steps_;
};

template <class E>
StepSummary StepExecutor<E>::run(const EventCallback& on_event) {
  auto wake = std::make_shared<detail::EventCount>();
  StepSummary summary;
  std::deque<std::pair<std::size_t, std::size_t>> waiting;  // (entry, attempt)
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

  while (!waiting.empty() || !running.empty()) {
    while (running.size() < options_.max_concurrent && !waiting.empty()) {
      const auto [entry, attempt] = waiting.front();
      waiting.pop_front();
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
    if (!progress && !running.empty()) wake->wait(key);
  }
  return summary;
}

}  // namespace weft

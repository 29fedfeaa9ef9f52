// Managed threads. Each object owns one ManagedThreadState, shared with the
// OS thread it runs, so a thread left behind at exit (or by a destructor
// called from its own target) keeps its state and never touches freed
// memory. The loop thread is a plain std::thread: its own interruptible
// waits (paused, the next periodic slot, the next item) are on the state's
// mutex and condition variable, which stop() and join() notify. Callers wait
// on the state's EventCount (a fiber suspends, a thread blocks), which the
// loop notifies when it parks and when it ends.
//
// Lock order: the registry's mutex, then a state's. Nothing takes the
// registry while it holds a state, which lets the fork handler hold all of
// them across fork() and leave the child with consistent states.

#include <weft/process/managed_thread.hpp>
#include <weft/runtime/detail/deadline.hpp>
#include <weft/runtime/detail/event_count.hpp>
#include <weft/runtime/log.hpp>

#include "process/periodic_schedule.hpp"
#include "runtime/exception_text.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

namespace weft {
namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

// What the loop is asked to do; a later value overrides an earlier one, and
// only start() goes back from `stop` to `run`.
enum class Ask {
  run,
  stop,   // stop(): end after this iteration (PausableThread: park)
  drain,  // join() of an OperationThread: end once the items queued before it ran
  end,    // join(), shutdown, destructor: end after this iteration
};

// A waiting condition variable's deadline: far enough to mean "later", near
// enough that no implementation overflows converting it.
constexpr std::chrono::hours longest_wait(24);

}  // namespace

class ManagedThreadState : public std::enable_shared_from_this<ManagedThreadState> {
 public:
  ManagedThreadState(ManagedThreadKind kind, UniqueFunction<void()> target,
                     std::chrono::nanoseconds interval, ManagedThreadOptions options)
      : kind(kind),
        name(options.name.empty() ? "weft-managed" : std::move(options.name)),
        init(std::move(options.init)),
        cleanup(std::move(options.cleanup)),
        daemon(options.daemon),
        interval(interval),
        target_(std::move(target)) {}

  void start();
  void stop();
  // join(): false if `deadline` passed first.
  bool join(std::optional<std::int64_t> deadline);
  // The destructor's join: never throws, detaches where it must not wait.
  void release() noexcept;
  // shutdown: asks the loop to end; false if it is not to be waited for (the
  // caller is the loop thread, or an earlier exit handler left it behind).
  bool ask_to_end(bool at_exit);
  // shutdown: waits until the loop ended; at exit, marks a thread that did
  // not end as left behind.
  bool wait_until_ended(std::optional<std::int64_t> deadline, bool at_exit);
  // Joins the OS thread of a loop that has ended (it is leaving, or gone).
  void reap() noexcept;
  // At exit, for a daemon: left running, and its destructor will not wait.
  void abandon() {
    std::lock_guard lock(mutex);
    abandoned_ = true;
  }
  void push_item(UniqueFunction<void()> item);

  bool is_alive() const {
    std::lock_guard lock(mutex);
    return running_ && ask_ == Ask::run;
  }
  std::exception_ptr error() const {
    std::lock_guard lock(mutex);
    return error_;
  }
  std::size_t queued_items() const {
    std::lock_guard lock(mutex);
    return items_.size();
  }

  // The fork handlers' part (the handler holds `mutex`): in the child the
  // thread does not exist, so the object is ended for good. Its condition
  // variables may count the parent's waiters, so the child never uses them
  // again (and never destroys them: the state is kept).
  void forget_thread_in_child() noexcept {
    forked_ = true;
    running_ = false;
    parked_ = false;
  }

  const ManagedThreadKind kind;
  const std::string name;
  const std::function<void()> init;
  const std::function<void()> cleanup;
  const bool daemon;
  const std::chrono::nanoseconds interval;
  mutable std::mutex mutex;

 private:
  void thread_main() noexcept;
  void loop();
  void run_periodic();
  void run_operations();
  // Pausable: parks while stopped; false once the loop must end.
  bool wait_while_paused();
  // Under `mutex`: whether the loop goes on; if not, it is over from here (a
  // start() after this point runs the thread again instead of resuming it).
  bool keep_running(bool go_on) {
    if (!go_on) leaving_ = true;
    return go_on;
  }
  bool asked_to_run() {
    std::lock_guard lock(mutex);
    return keep_running(ask_ == Ask::run);
  }
  bool on_loop_thread() const { return running_ && std::this_thread::get_id() == loop_id_; }
  void ask(Ask what) {
    if (what > ask_) ask_ = what;
    // A start() after the loop was over runs it again unless stopped again;
    // a join lets that run start (an OperationThread's drains the queue).
    if (what == Ask::stop) restart_ = false;
    if (what == Ask::drain) drain_mark_ = std::max(drain_mark_, pushed_);
  }
  // After ask(), once `mutex` is released: a loop thread woken while the
  // caller still held it would only block on it again.
  void wake_loop() { wake_.notify_all(); }
  bool ended() const {
    std::lock_guard lock(mutex);
    return !running_;
  }
  UniqueFunction<void()> target_;  // called by the loop thread only
  std::condition_variable wake_;   // the loop thread's waits
  EventCount changed_;             // callers' waits: parked, ended

  // Guarded by mutex.
  std::thread thread_;  // the running or last OS thread, until reaped
  std::thread::id loop_id_;
  bool running_ = false;  // from start() until cleanup has run
  bool leaving_ = false;  // the loop is over; init, cleanup or the thread's end remain
  bool restart_ = false;  // start() came after the loop was over: run again on this thread
  bool parked_ = false;
  bool forked_ = false;
  bool abandoned_ = false;  // left behind by the shutdown at exit (or a daemon then)
  Ask ask_ = Ask::run;
  std::exception_ptr error_;
  std::deque<UniqueFunction<void()>> items_;
  std::uint64_t pushed_ = 0;
  std::uint64_t popped_ = 0;
  std::uint64_t drain_mark_ = 0;
};

namespace {

void shutdown_all(std::optional<std::int64_t> deadline, bool at_exit);

// Every ManagedThread object that exists (so its state lives), for shutdown
// and fork. Never destroyed: threads left behind at exit, and destructors of
// globals that run after this file's statics, may still use it.
struct Registry {
  std::mutex mutex;
  std::unordered_set<ManagedThreadState*> states;
};

Registry& registry() {
  static Registry* const instance = new Registry;
  return *instance;
}

// Each registration runs at its own point of the exit sequence and stops
// what is live then; a thread one of them left behind is not waited for
// again, and its object's destructor detaches it.
void shutdown_at_exit() noexcept {
  try {
    shutdown_all(EventCount::caller_deadline(std::chrono::seconds(1)), true);
  } catch (...) {
    log(LogLevel::error, "managed threads: the shutdown at exit failed: " +
                             exception_text(std::current_exception()));
  }
}

void register_exit_shutdown() {
  if (std::atexit(shutdown_at_exit) != 0) {
    log(LogLevel::warning, "managed threads: could not register the shutdown at exit");
  }
}

void lock_all_before_fork() noexcept {
  Registry& r = registry();
  r.mutex.lock();
  for (ManagedThreadState* state : r.states)
    state->mutex.lock();
}

void unlock_all_in_parent() noexcept {
  Registry& r = registry();
  for (ManagedThreadState* state : r.states)
    state->mutex.unlock();
  r.mutex.unlock();
}

// The child has only the thread that forked. Inherited objects stay valid
// but ended; their states are kept for ever (a parent's thread may hold a
// reference that will never be dropped, and their condition variables may
// count waiters that do not exist here).
void forget_threads_in_child() noexcept {
  Registry& r = registry();
  if (r.states.empty()) {  // most forks: nothing to write (each page written is copied)
    r.mutex.unlock();
    return;
  }
  static auto* const kept = new std::vector<std::shared_ptr<ManagedThreadState>>;
  for (ManagedThreadState* state : r.states) {
    state->forget_thread_in_child();
    kept->push_back(state->shared_from_this());
    state->mutex.unlock();
  }
  r.states.clear();
  r.mutex.unlock();
}

// When libweft loads: the last of the exit handlers, for threads still live
// after every later one ran (started by a global's destructor, or owned by
// an object that is never destroyed).
const bool process_hooks_installed = [] {
  ::pthread_atfork(lock_all_before_fork, unlock_all_in_parent, forget_threads_in_child);
  register_exit_shutdown();
  return true;
}();

}  // namespace

void ManagedThreadState::start() {
  // Registered (again) at the first start: atexit handlers run in reverse,
  // so this one runs before the destructors of the globals constructed
  // before it, and a global ManagedThread started in main is shut down
  // before its destructor would wait for it.
  static std::once_flag first_start;
  std::call_once(first_start, register_exit_shutdown);

  std::lock_guard lock(mutex);
  if (forked_) {
    throw std::logic_error("weft: a managed thread inherited across fork() cannot start");
  }
  if (running_) {
    if (ask_ == Ask::stop) {
      ask_ = Ask::run;
      restart_ = leaving_;
      wake_.notify_all();
    }
    return;
  }
  // The last loop has ended; its thread is on its way out.
  if (thread_.joinable()) thread_.join();
  ask_ = Ask::run;
  error_ = nullptr;
  parked_ = false;
  leaving_ = false;
  restart_ = false;
  // The new thread takes `mutex` before it reads anything guarded by it.
  thread_ = std::thread([self = shared_from_this()] { self->thread_main(); });
  loop_id_ = thread_.get_id();
  running_ = true;
  const std::string comm = name.substr(0, 15);
  ::pthread_setname_np(thread_.native_handle(), comm.c_str());
}

void ManagedThreadState::stop() {
  std::unique_lock lock(mutex);
  if (forked_ || !running_) return;
  ask(Ask::stop);
  const bool wait_for_park = kind == ManagedThreadKind::pausable && !on_loop_thread();
  lock.unlock();
  wake_loop();
  if (!wait_for_park) return;
  // A start() in between resumes it, and a join ends it instead: do not wait
  // for a park that will not come.
  changed_.wait_until([&] {
    std::lock_guard relock(mutex);
    return parked_ || !running_ || ask_ == Ask::run;
  });
}

bool ManagedThreadState::join(std::optional<std::int64_t> deadline) {
  {
    std::lock_guard lock(mutex);
    if (forked_) return true;
    if (running_) {
      if (on_loop_thread()) {
        throw std::logic_error("weft: a managed thread cannot join itself");
      }
      ask(kind == ManagedThreadKind::operation ? Ask::drain : Ask::end);
    }
  }
  wake_loop();
  if (!changed_.wait_until([&] { return ended(); }, deadline)) return false;
  reap();
  return true;
}

void ManagedThreadState::release() noexcept {
  {
    std::unique_lock lock(mutex);
    if (forked_) return;
    if (running_) {
      ask(kind == ManagedThreadKind::operation ? Ask::drain : Ask::end);
      const bool own_thread = on_loop_thread();
      if (own_thread || abandoned_) {
        if (own_thread) {
          log(LogLevel::warning,
              "managed thread '" + name + "' destroyed from its own thread; it ends on its own");
        }
        thread_.detach();
        lock.unlock();
        wake_loop();
        return;
      }
    }
  }
  wake_loop();
  changed_.wait_until_ignoring_interrupts([&] { return ended(); });
  reap();
}

bool ManagedThreadState::ask_to_end(bool at_exit) {
  bool wait = true;
  {
    std::lock_guard lock(mutex);
    if (forked_ || !running_) return true;
    ask(Ask::end);
    wait = !on_loop_thread() && !(at_exit && abandoned_);
  }
  wake_loop();
  return wait;
}

bool ManagedThreadState::wait_until_ended(std::optional<std::int64_t> deadline, bool at_exit) {
  if (changed_.wait_until([&] { return ended(); }, deadline)) return true;
  std::lock_guard lock(mutex);
  if (at_exit) abandoned_ = true;
  return false;
}

void ManagedThreadState::reap() noexcept {
  std::thread leaving;
  {
    std::lock_guard lock(mutex);
    if (running_ || forked_) return;  // a new run started meanwhile, or no thread here
    leaving = std::move(thread_);
  }
  if (leaving.joinable()) leaving.join();
}

void ManagedThreadState::push_item(UniqueFunction<void()> item) {
  {
    std::lock_guard lock(mutex);
    if (forked_) {
      throw std::logic_error("weft: a managed thread inherited across fork() cannot start");
    }
    items_.push_back(std::move(item));
    ++pushed_;
  }
  wake_loop();
  start();
}

void ManagedThreadState::thread_main() noexcept {
  for (;;) {
    std::exception_ptr failure;
    try {
      if (init) init();
      loop();
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard lock(mutex);
      leaving_ = true;
    }
    try {
      if (cleanup) cleanup();
    } catch (...) {
      if (failure) {
        log(LogLevel::warning, "managed thread '" + name + "': cleanup threw after an error: " +
                                   exception_text(std::current_exception()));
      } else {
        failure = std::current_exception();
      }
    }
    if (failure) {
      log(LogLevel::info,
          "managed thread '" + name + "' ended by an exception: " + exception_text(failure));
    }
    {
      std::lock_guard lock(mutex);
      if (restart_ && !failure) {
        // start() after the loop was over: a new run, as on a new thread.
        restart_ = false;
        leaving_ = false;
        error_ = nullptr;
        continue;
      }
      running_ = false;
      restart_ = false;
      parked_ = false;
      error_ = failure;
    }
    changed_.notify_all();
    return;
  }
}

void ManagedThreadState::loop() {
  switch (kind) {
    case ManagedThreadKind::continuous:
      while (asked_to_run())
        target_();
      return;
    case ManagedThreadKind::pausable:
      while (wait_while_paused())
        target_();
      return;
    case ManagedThreadKind::periodic:
      run_periodic();
      return;
    case ManagedThreadKind::operation:
      run_operations();
      return;
  }
}

bool ManagedThreadState::wait_while_paused() {
  std::unique_lock lock(mutex);
  while (ask_ == Ask::stop) {
    if (!parked_) {
      parked_ = true;
      changed_.notify_all();
    }
    wake_.wait(lock);
  }
  parked_ = false;
  return keep_running(ask_ == Ask::run);
}

void ManagedThreadState::run_periodic() {
  using std::chrono::nanoseconds;
  auto now_ns = [] { return nanoseconds(Clock::now().time_since_epoch()).count(); };
  PeriodicSchedule schedule(now_ns(), interval.count());
  for (;;) {
    {
      std::unique_lock lock(mutex);
      const std::int64_t due = schedule.due();
      while (ask_ == Ask::run) {
        const std::int64_t now = now_ns();
        if (now >= due) break;
        const std::int64_t until = due - now > nanoseconds(longest_wait).count()
                                       ? now + nanoseconds(longest_wait).count()
                                       : due;
        wake_.wait_until(lock, Clock::time_point(nanoseconds(until)));
      }
      if (!keep_running(ask_ == Ask::run)) return;
    }
    target_();
    schedule.advance(now_ns());
  }
}

void ManagedThreadState::run_operations() {
  for (;;) {
    UniqueFunction<void()> item;
    {
      std::unique_lock lock(mutex);
      for (;;) {
        const bool over =
            ask_ == Ask::stop || ask_ == Ask::end || (ask_ == Ask::drain && popped_ >= drain_mark_);
        if (!keep_running(!over)) return;
        if (!items_.empty()) break;
        wake_.wait(lock);
      }
      item = std::move(items_.front());
      items_.pop_front();
      ++popped_;
    }
    item();
  }
}

namespace {

void shutdown_all(std::optional<std::int64_t> deadline, bool at_exit) {
  std::vector<std::shared_ptr<ManagedThreadState>> live;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    for (ManagedThreadState* state : r.states) {
      if (!state->daemon) {
        live.push_back(state->shared_from_this());
      } else if (at_exit) {
        state->abandon();
      }
    }
  }
  // All are asked first, so they end side by side and the whole shutdown
  // takes about the longest one iteration, not their sum.
  std::vector<std::shared_ptr<ManagedThreadState>> to_wait;
  for (auto& state : live) {
    if (state->ask_to_end(at_exit)) to_wait.push_back(state);
  }
  // Then every loop's end, and only then their OS threads: by the time the
  // last loop has ended most threads are gone, and joining them rarely
  // blocks (a context switch per thread is most of a shutdown's cost).
  std::vector<std::shared_ptr<ManagedThreadState>> ended;
  for (auto& state : to_wait) {
    if (state->wait_until_ended(deadline, at_exit)) {
      ended.push_back(state);
    } else {
      log(LogLevel::warning,
          "managed thread '" + state->name + "' did not end in time; left running");
    }
  }
  for (auto& state : ended)
    state->reap();
}

}  // namespace
}  // namespace detail

ManagedThread::ManagedThread(detail::ManagedThreadKind kind, detail::UniqueFunction<void()> target,
                             std::chrono::nanoseconds interval, ManagedThreadOptions options) {
  if (kind != detail::ManagedThreadKind::operation && !target) {
    throw std::invalid_argument("weft: a managed thread needs a target");
  }
  static std::once_flag first_object;
  std::call_once(first_object, detail::register_exit_shutdown);
  state_ = std::make_shared<detail::ManagedThreadState>(kind, std::move(target), interval,
                                                        std::move(options));
  detail::Registry& registry = detail::registry();
  std::lock_guard lock(registry.mutex);
  registry.states.insert(state_.get());
}

ManagedThread::~ManagedThread() {
  state_->release();
  detail::Registry& registry = detail::registry();
  std::lock_guard lock(registry.mutex);
  registry.states.erase(state_.get());
}

void ManagedThread::start() {
  state_->start();
}

void ManagedThread::stop() {
  state_->stop();
}

bool ManagedThread::join(std::optional<std::chrono::duration<double>> timeout) {
  std::optional<std::chrono::nanoseconds> limit;
  if (timeout) limit = detail::saturating_ns(*timeout);
  return state_->join(detail::EventCount::caller_deadline(limit));
}

bool ManagedThread::is_alive() const {
  return state_->is_alive();
}

std::exception_ptr ManagedThread::error() const {
  return state_->error();
}

void ManagedThread::push_item(detail::UniqueFunction<void()> item) {
  state_->push_item(std::move(item));
}

std::size_t ManagedThread::queued_items() const {
  return state_->queued_items();
}

std::chrono::nanoseconds ManagedThread::checked_interval(std::chrono::duration<double> interval) {
  const std::chrono::nanoseconds ns = detail::saturating_ns(interval);
  if (ns.count() < 0) throw std::invalid_argument("weft: a negative PeriodicThread interval");
  return ns;
}

void shutdown_managed_threads(std::optional<std::chrono::duration<double>> timeout) {
  std::optional<std::chrono::nanoseconds> limit;
  if (timeout) limit = detail::saturating_ns(*timeout);
  detail::shutdown_all(detail::EventCount::caller_deadline(limit), false);
}

}  // namespace weft

// Each worker has a one-job slot and a futex word (`signal`) through which it
// is handed a job or told to exit. Idle workers sit on a LIFO stack guarded by
// the cache's mutex; whoever pops a worker owns its slot until the worker
// pushes itself back. All of it lives in shared state that the worker threads
// keep alive, so a busy worker may outlive its ThreadCache.

#include <weft/process/thread_cache.hpp>
#include <weft/runtime/detail/spin_pause.hpp>
#include <weft/runtime/log.hpp>

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace weft {
namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

// Long enough to mean "no timeout", short enough not to overflow a time_point.
constexpr std::chrono::nanoseconds forever = std::chrono::hours(24 * 365);

// Values of Worker::signal, a futex word.
enum class Signal : std::uint32_t {
  idle,      // no job; the worker may be polling
  sleeping,  // no job; the worker is (about to be) asleep in FUTEX_WAIT
  job,       // the slot holds a job
  exit,      // the cache is closing
};

static_assert(sizeof(std::atomic<Signal>) == sizeof(std::uint32_t) &&
              std::atomic<Signal>::is_always_lock_free);

// Sleeps while word == expected, at most `timeout`; may return early.
void futex_wait(std::atomic<Signal>& word, Signal expected,
                std::chrono::nanoseconds timeout) noexcept {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const timespec relative{static_cast<std::time_t>(seconds.count()),
                          static_cast<long>((timeout - seconds).count())};
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE,
            static_cast<std::uint32_t>(expected), &relative, nullptr, 0);
}

void futex_wake_one(std::atomic<Signal>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

struct alignas(64) Worker {
  explicit Worker(std::shared_ptr<ThreadCacheState> cache) : cache(std::move(cache)) {}

  // Owner (whoever popped this worker, or made it): fill the slot first.
  // The exchange publishes it; the syscall happens only if the worker said
  // it was going to sleep.
  void assign(Signal what) noexcept {
    if (signal.exchange(what, std::memory_order_acq_rel) == Signal::sleeping) {
      futex_wake_one(signal);
    }
  }

  // Worker thread: polls for up to `spin`, then sleeps; returns job or exit,
  // or idle if `timeout` ran out first.
  Signal await_assignment(std::chrono::nanoseconds spin,
                          std::chrono::nanoseconds timeout) noexcept {
    const auto start = Clock::now();
    const auto deadline = start + std::min(timeout, forever);
    if (spin > std::chrono::nanoseconds::zero()) {
      const auto spin_until = std::min(deadline, start + spin);
      for (unsigned polls = 1;; ++polls) {
        const Signal s = signal.load(std::memory_order_acquire);
        if (s != Signal::idle) return s;
        spin_pause();
        if (polls % 64 == 0 && Clock::now() >= spin_until) break;
      }
    }
    Signal seen = Signal::idle;
    if (!signal.compare_exchange_strong(seen, Signal::sleeping, std::memory_order_acquire)) {
      return seen;
    }
    for (;;) {
      const auto now = Clock::now();
      if (now >= deadline) {
        seen = Signal::sleeping;
        if (signal.compare_exchange_strong(seen, Signal::idle, std::memory_order_acquire)) {
          return Signal::idle;
        }
        return seen;
      }
      futex_wait(signal, Signal::sleeping, deadline - now);
      const Signal s = signal.load(std::memory_order_acquire);
      if (s != Signal::sleeping) return s;
    }
  }

  const std::shared_ptr<ThreadCacheState> cache;
  std::atomic<Signal> signal{Signal::idle};
  UniqueFunction<void()> fn;
  UniqueFunction<void(std::exception_ptr)> deliver;
};

}  // namespace

class ThreadCacheState {
 public:
  explicit ThreadCacheState(ThreadCacheOptions options) : options(options) {}

  // False when the cache is closing: the worker then exits after delivering.
  bool push_idle(std::shared_ptr<Worker> worker) {
    std::lock_guard lock(mutex);
    if (closing) return false;
    idle.push_back(std::move(worker));
    return true;
  }

  // Called by a worker whose idle timeout ran out. True if it took itself off
  // the idle stack and may exit.
  //
  // The race (trio's): between the timeout firing and this lock, a submitter
  // may have popped the worker. The submitter then owns the worker's slot and
  // is about to store a job in it (or already has); if the worker exited now,
  // that job would never run. So the worker exits only if it finds itself
  // still on the stack, and it removes itself under the same mutex that pop
  // takes, so exactly one of "removed by itself" and "popped by someone"
  // happens. If it was popped, it waits again, with no timeout this time,
  // for the job (or, if the destructor popped it, the exit) that is coming.
  // await_assignment left the signal `idle` on timeout, so the popper's
  // exchange sees no sleeper and makes no syscall; the worker finds the
  // signal when it polls or when its attempt to go to sleep fails.
  bool remove_idle(const Worker& worker) {
    std::lock_guard lock(mutex);
    const auto found = std::find_if(idle.begin(), idle.end(), [&](const auto& candidate) {
      return candidate.get() == &worker;
    });
    if (found == idle.end()) return false;
    idle.erase(found);
    return true;
  }

  void worker_exited() {
    std::lock_guard lock(mutex);
    if (--live == 0) all_exited.notify_all();
  }

  const ThreadCacheOptions options;
  mutable std::mutex mutex;
  std::condition_variable all_exited;
  std::vector<std::shared_ptr<Worker>> idle;  // back() is the most recently idled
  std::size_t live = 0;                       // worker threads started and not yet exited
  bool closing = false;
};

namespace {

// Runs the job in the worker's slot. False if the worker should exit
// afterwards because the cache is closing.
bool run_job(const std::shared_ptr<Worker>& self) {
  auto fn = std::move(self->fn);
  auto deliver = std::move(self->deliver);
  // Nobody touches the signal while we are off the idle stack; pushing
  // ourselves (a mutex release) publishes this reset to the next owner.
  self->signal.store(Signal::idle, std::memory_order_relaxed);

  std::exception_ptr error;
  try {
    fn();
  } catch (...) {
    error = std::current_exception();
  }
  fn.reset();  // drop fn's captures before anyone learns the job is done

  // Idle before deliver, so that a job submitted from deliver finds this
  // worker instead of starting another thread.
  const bool stay = self->cache->push_idle(self);
  try {
    deliver(std::move(error));
  } catch (const std::exception& e) {
    detail::log(
        LogLevel::error,
        std::string("exception while delivering the result of a cached thread's job: ") + e.what());
  } catch (...) {
    detail::log(LogLevel::error,
                "exception while delivering the result of a cached thread's job: (not a "
                "std::exception)");
  }
  return stay;
}

void worker_main(std::shared_ptr<Worker> self) {
  ::pthread_setname_np(::pthread_self(), "weft-worker");
  ThreadCacheState& cache = *self->cache;
  for (;;) {
    Signal s = self->await_assignment(cache.options.spin, cache.options.idle_timeout);
    if (s == Signal::idle) {  // timed out
      if (cache.remove_idle(*self)) break;
      s = self->await_assignment(cache.options.spin, forever);  // popped: a job is coming
    }
    if (s == Signal::exit) break;
    if (!run_job(self)) break;
  }
  cache.worker_exited();
}

// The process-wide caches (ThreadCache::global() and the hub workers'), for
// the fork handlers.
constexpr std::size_t process_wide_count = 2;
std::atomic<ThreadCacheState*> process_wide[process_wide_count]{};
thread_local ThreadCacheState* locked_for_fork[process_wide_count]{};

void lock_before_fork() {
  for (std::size_t i = 0; i < process_wide_count; ++i) {
    locked_for_fork[i] = process_wide[i].load();
    if (locked_for_fork[i]) locked_for_fork[i]->mutex.lock();
  }
}

void unlock_in_parent() {
  for (ThreadCacheState* state : locked_for_fork) {
    if (state) state->mutex.unlock();
  }
}

// The child has only the thread that forked: the parent's workers, idle or
// busy, do not exist here. Forget them; new ones start on demand.
void forget_workers_in_child() {
  for (ThreadCacheState* state : locked_for_fork) {
    if (!state) continue;
    state->idle.clear();
    state->live = 0;
    state->mutex.unlock();
  }
}

// Makes `state` one that a fork()ed child resets (`slot`: which one).
void reset_in_forked_children(ThreadCacheState* state, std::size_t slot) {
  static const bool handlers_installed = [] {
    ::pthread_atfork(lock_before_fork, unlock_in_parent, forget_workers_in_child);
    return true;
  }();
  (void)handlers_installed;
  process_wide[slot].store(state);
}

}  // namespace
}  // namespace detail

ThreadCache::ThreadCache(ThreadCacheOptions options)
    : state_(std::make_shared<detail::ThreadCacheState>(options)) {}

ThreadCache::~ThreadCache() {
  for (auto& slot : detail::process_wide) {
    detail::ThreadCacheState* self = state_.get();
    slot.compare_exchange_strong(self, nullptr);
  }

  std::vector<std::shared_ptr<detail::Worker>> idle;
  std::unique_lock lock(state_->mutex);
  state_->closing = true;
  idle.swap(state_->idle);
  lock.unlock();
  for (const auto& worker : idle)
    worker->assign(detail::Signal::exit);
  idle.clear();
  lock.lock();
  // A worker still running a job may block forever; eventlet#989 is what
  // waiting for it at exit looks like.
  state_->all_exited.wait_for(lock, std::chrono::seconds(1), [&] { return state_->live == 0; });
}

ThreadCache& ThreadCache::global() {
  static ThreadCache cache;
  static const bool reset_after_fork =
      (detail::reset_in_forked_children(cache.state_.get(), 0), true);
  (void)reset_after_fork;
  return cache;
}

ThreadCache& detail::hub_worker_cache() {
  static ThreadCache cache;
  static const bool reset_after_fork =
      (detail::reset_in_forked_children(cache.state_.get(), 1), true);
  (void)reset_after_fork;
  return cache;
}

void ThreadCache::start_thread_soon(detail::UniqueFunction<void()> fn,
                                    detail::UniqueFunction<void(std::exception_ptr)> deliver) {
  std::shared_ptr<detail::Worker> worker;
  {
    std::lock_guard lock(state_->mutex);
    if (!fn || !deliver) throw std::invalid_argument("weft: start_thread_soon needs two callables");
    if (state_->closing) {
      throw std::logic_error("weft: start_thread_soon on a ThreadCache being destroyed");
    }
    if (!state_->idle.empty()) {
      worker = std::move(state_->idle.back());
      state_->idle.pop_back();
    } else {
      ++state_->live;  // counted now so that the destructor waits for it
    }
  }
  if (worker) {
    worker->fn = std::move(fn);
    worker->deliver = std::move(deliver);
    worker->assign(detail::Signal::job);
    return;
  }
  try {
    worker = std::make_shared<detail::Worker>(state_);
    worker->fn = std::move(fn);
    worker->deliver = std::move(deliver);
    worker->signal.store(detail::Signal::job,
                         std::memory_order_relaxed);  // thread start publishes it
    std::thread(detail::worker_main, std::move(worker)).detach();
  } catch (...) {
    state_->worker_exited();
    throw;
  }
}

std::size_t ThreadCache::trim() {
  std::vector<std::shared_ptr<detail::Worker>> idle;
  {
    std::lock_guard lock(state_->mutex);
    idle.swap(state_->idle);
  }
  for (const auto& worker : idle)
    worker->assign(detail::Signal::exit);
  return idle.size();
}

std::size_t ThreadCache::idle_workers() const {
  std::lock_guard lock(state_->mutex);
  return state_->idle.size();
}

std::size_t ThreadCache::total_workers() const {
  std::lock_guard lock(state_->mutex);
  return state_->live;
}

}  // namespace weft

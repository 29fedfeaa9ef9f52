#pragma once
/// A cache of OS worker threads for blocking work (trio's thread cache).
///
/// Unbounded: a job gets an idle worker if there is one, the most recently
/// idled first (LIFO keeps a few threads hot and lets the rest time out), and a
/// new thread otherwise. Limiting how many jobs run at once is the caller's
/// business (to_thread's CapacityLimiter).

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>

#include <weft/runtime/detail/unique_function.hpp>

namespace weft {

class ThreadCache;

namespace detail {
class ThreadCacheState;
/// The workers that run destroyable work and thread steps, each keeping a hub
/// between jobs; apart from global(), whose jobs must find no hub on their
/// thread. Reset in a fork()ed child as global() is.
ThreadCache& hub_worker_cache();
}  // namespace detail

struct ThreadCacheOptions {
  /// A worker idle for this long exits.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(10);
  /// How long a newly idle worker polls for its next job before it sleeps in
  /// the kernel; a job handed to a polling worker costs no system call. Zero
  /// disables polling.
  std::chrono::nanoseconds spin = std::chrono::microseconds(50);
};

class ThreadCache {
 public:
  explicit ThreadCache(ThreadCacheOptions options = {});
  /// Makes idle workers exit and waits for them. Workers still running a job
  /// are waited for at most about a second in all; after that they finish
  /// detached, deliver, and exit instead of going idle. Never hangs.
  ~ThreadCache();
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;

  /// The process-wide cache. Destroyed during static destruction; a fork()ed
  /// child starts with no workers and makes new ones on demand (only this
  /// cache: a child must not use other caches it inherited).
  static ThreadCache& global();

  /// Runs `fn` on a worker thread, then `deliver(nullptr)`, or
  /// `deliver(exception)` with what `fn` threw. `fn` is destroyed before
  /// `deliver` runs, and the worker is already idle by then, so a job
  /// submitted from `deliver` runs on the same thread. An exception thrown by
  /// `deliver` is printed to stderr. `deliver` should not block.
  /// Any thread may call; never blocks on a worker. Throws std::system_error if
  /// no thread can be started, std::logic_error while the cache is being
  /// destroyed, std::invalid_argument if a callable is empty (in all three
  /// cases neither callable runs).
  void start_thread_soon(detail::UniqueFunction<void()> fn,
                         detail::UniqueFunction<void(std::exception_ptr)> deliver);

  /// Makes the idle workers exit now instead of after their idle timeout
  /// (busy ones stay); returns how many were told to. Does not wait for them
  /// to end. Any thread.
  std::size_t trim();

  /// Workers waiting for a job. Any thread; for tests and monitoring.
  std::size_t idle_workers() const;
  /// Worker threads alive, idle or busy. Any thread; for tests and monitoring.
  std::size_t total_workers() const;

 private:
  friend ThreadCache& detail::hub_worker_cache();

  std::shared_ptr<detail::ThreadCacheState> state_;
};

}  // namespace weft

#pragma once
/// to_thread::run_sync: blocking work on a cached OS thread, while only the
/// calling fiber waits (trio's to_thread.run_sync).

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/sync/capacity_limiter.hpp>

namespace weft {

namespace to_thread {

struct RunSyncOptions {
  /// Bounds how many calls run at once; nullptr: default_limiter(). An
  /// abandoned call keeps what it needs of the limiter alive, so the limiter
  /// may be destroyed once run_sync has returned or thrown.
  CapacityLimiter* limiter = nullptr;
  /// On a kill or Timeout: true returns control at once (throwing it) and
  /// lets the thread finish unobserved, its result discarded; false waits for
  /// the function to finish, returns its result, and leaves the kill or
  /// Timeout pending for the fiber's next suspension point.
  bool abandon_on_cancel = false;
};

/// The limiter shared by every run_sync call that names none: 40 tokens.
/// Change its size with set_total_tokens. Never destroyed: calls abandoned
/// near exit may still give their tokens back after static destruction.
CapacityLimiter& default_limiter();

}  // namespace to_thread

using to_thread::RunSyncOptions;

namespace detail {

/// One run_sync call, shared by the calling fiber and the worker thread.
/// Exactly one side ends it: the fiber when the call completes, the worker
/// when the fiber abandoned it.
class ThreadCall {
 public:
  ThreadCall(const ThreadCall&) = delete;
  ThreadCall& operator=(const ThreadCall&) = delete;
  virtual ~ThreadCall() = default;

  /// On the calling fiber: takes a token, hands the work to a cached thread
  /// and waits. Returns once the work has finished and the token is back; if
  /// the call is abandoned, `owner` lets go of it (the worker deletes it) and
  /// the kill or Timeout is thrown.
  static void run(std::unique_ptr<ThreadCall>& owner, const RunSyncOptions& options);

 protected:
  ThreadCall() = default;
  /// On the worker thread: runs the function, keeps its outcome, and drops
  /// the function (its captures die on the worker, as in trio).
  virtual void invoke() noexcept = 0;

  std::exception_ptr error_;

 private:
  class AbandonOnInterrupt;
  /// True if the fiber abandoned the call: it then belongs to the worker and
  /// may already be deleted, so the caller must not touch it again.
  bool wait_for_worker(const RunSyncOptions& options);
  void finished() noexcept;

  enum State : int { waiting, completed, abandoned };
  std::atomic<int> state_{waiting};
  std::shared_ptr<CapacityLimiterState> limiter_;
  void* fiber_ = nullptr;  // FiberBase*
  void* hub_ = nullptr;    // HubCore*
  std::uint32_t epoch_ = 0;
  bool abandon_on_cancel_ = false;
};

template <class R, class F>
class TypedThreadCall final : public ThreadCall {
 public:
  explicit TypedThreadCall(F&& f) : function_(std::move(f)) {}

  R take() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<R>) return std::move(*value_);
  }

 private:
  void invoke() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::move(*function_));
      } else {
        value_.emplace(std::invoke(std::move(*function_)));
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    function_.reset();
  }

  std::optional<F> function_;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value_{};
};

}  // namespace detail

namespace to_thread {

/// Runs `f()` on a cached OS thread (ThreadCache::global()), holding one of
/// the limiter's tokens, and returns its result or rethrows its exception on
/// the calling fiber. Only the calling fiber waits: the hub runs the others.
/// A suspension point. A kill or Timeout already pending throws before `f`
/// runs. The token is released on the calling fiber once `f` has finished,
/// before run_sync returns or throws; an abandoned call's token is released
/// when its `f` finishes. From a fiber.
template <class F>
std::invoke_result_t<std::decay_t<F>> run_sync(F&& f, RunSyncOptions options = {}) {
  using Fn = std::decay_t<F>;
  using R = std::invoke_result_t<Fn>;
  auto* call = new detail::TypedThreadCall<R, Fn>(Fn(std::forward<F>(f)));
  std::unique_ptr<detail::ThreadCall> owner(call);
  detail::ThreadCall::run(owner, options);
  return call->take();
}

}  // namespace to_thread

}  // namespace weft

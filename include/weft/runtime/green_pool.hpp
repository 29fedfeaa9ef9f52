#pragma once
/// GreenPool (bounded concurrency) and GreenPile (results in spawn order).

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <unordered_set>
#include <utility>

#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/green_thread.hpp>

namespace weft {

namespace detail {

/// Shared by a pool and its running jobs (a job may outlive the pool object).
class PoolState {
 public:
  explicit PoolState(std::size_t size) : size_(size) {}

  std::size_t size_;
  std::size_t running_ = 0;
  std::size_t handed_off_ = 0;  // slots given to woken spawners that have not resumed
  WaitQueue slot_waiters_;      // spawners blocked on a full pool, FIFO
  WaitQueue idle_waiters_;      // waitall
  std::unordered_set<const FiberBase*> members_;

  long free_slots() const noexcept {
    return static_cast<long>(size_) - static_cast<long>(running_ + handed_off_);
  }
  bool caller_is_member() const { return members_.count(current_fiber()) != 0; }
  void acquire_slot();
  void release_slot() noexcept;
  /// Gives free slots to waiting spawners, oldest first.
  void hand_off_free_slots() noexcept;
};

/// Holds one of the pool's slots; freed with the job's callable (after it ran,
/// or unrun if the job was killed before it started).
class PoolSlot {
 public:
  explicit PoolSlot(std::shared_ptr<PoolState> pool) noexcept : pool_(std::move(pool)) {}
  PoolSlot(PoolSlot&&) noexcept = default;
  PoolSlot& operator=(PoolSlot&&) = delete;
  ~PoolSlot() {
    if (pool_) pool_->release_slot();
  }
  PoolState& pool() const noexcept { return *pool_; }

 private:
  std::shared_ptr<PoolState> pool_;
};

/// Marks the running fiber as one of the pool's while the job runs.
class PoolMembership {
 public:
  explicit PoolMembership(PoolState& pool) : pool_(pool), fiber_(current_fiber()) {
    pool_.members_.insert(fiber_);
  }
  ~PoolMembership() { pool_.members_.erase(fiber_); }
  PoolMembership(const PoolMembership&) = delete;
  PoolMembership& operator=(const PoolMembership&) = delete;

 private:
  PoolState& pool_;
  const FiberBase* fiber_;
};

template <class F, class... Args>
auto make_pool_job(std::shared_ptr<PoolState> pool, F&& f, Args&&... args) {
  return [slot = PoolSlot(std::move(pool)),
          call = std::make_tuple(std::forward<F>(f),
                                 std::forward<Args>(args)...)]() mutable -> decltype(auto) {
    PoolMembership membership(slot.pool());
    return invoke_tuple(std::move(call));
  };
}

/// A GreenThread's state for a job the pool ran inline in its caller.
template <class R>
class InlineResult final : public GreenThreadState<R> {
 public:
  template <class Call>
  explicit InlineResult(Call&& call) {
    std::exception_ptr error;
    const std::uint64_t first_own_timeout = next_timeout_serial();
    try {
      if constexpr (std::is_void_v<R>) {
        std::forward<Call>(call)();
        this->value_.emplace();
      } else {
        this->value_.emplace(std::forward<Call>(call)());
      }
    } catch (const FiberExit&) {
      throw;  // a kill aimed at the calling fiber, not the job's outcome
    } catch (const TimeoutError& e) {
      if (from_enclosing_timeout(e, first_own_timeout)) throw;  // the caller's own Timeout
      error = std::current_exception();
    } catch (...) {
      error = std::current_exception();
    }
    this->mark_ended_without_running();
    this->finish(std::move(error));
  }

 private:
  void run_body() noexcept override {}
  void abort_before_start(std::exception_ptr) noexcept override {}
};

}  // namespace detail

/// Runs at most `size` fibers at once. eventlet's GreenPool.
class GreenPool {
 public:
  /// Throws std::invalid_argument if `size` is 0 (every spawn would wait
  /// for ever).
  explicit GreenPool(std::size_t size = 1000);
  GreenPool(const GreenPool&) = delete;
  GreenPool& operator=(const GreenPool&) = delete;
  /// Running jobs keep going after the pool is gone.
  ~GreenPool() = default;

  /// Spawns `f(args...)` in the pool, waiting (suspension point) while it is
  /// full. Called from one of the pool's own fibers when the pool is full, it
  /// runs `f` inline instead (waiting would deadlock) and returns a finished
  /// handle. From a fiber.
  template <class F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> spawn(F&& f, Args&&... args) {
    using R = detail::spawn_result_t<F, Args...>;
    if (state_->free_slots() <= 0 && state_->caller_is_member()) {
      auto* done = new detail::InlineResult<R>([&]() -> R {
        return std::invoke(std::decay_t<F>(std::forward<F>(f)),
                           std::decay_t<Args>(std::forward<Args>(args))...);
      });
      return GreenThread<R>(done, detail::AdoptReference{});
    }
    state_->acquire_slot();
    return weft::spawn(
        detail::make_pool_job(state_, std::forward<F>(f), std::forward<Args>(args)...));
  }

  /// As spawn, without a handle (exceptions go to the hub's error handler).
  template <class F, class... Args>
  void spawn_n(F&& f, Args&&... args) {
    if (state_->free_slots() <= 0 && state_->caller_is_member()) {
      const std::uint64_t first_own_timeout = detail::next_timeout_serial();
      try {
        std::invoke(std::decay_t<F>(std::forward<F>(f)),
                    std::decay_t<Args>(std::forward<Args>(args))...);
      } catch (const FiberExit&) {
        throw;  // aimed at the calling fiber
      } catch (const TimeoutError& e) {
        if (detail::from_enclosing_timeout(e, first_own_timeout)) throw;
        detail::report_fiber_error(*detail::current_fiber(), std::current_exception());
      } catch (...) {
        detail::report_fiber_error(*detail::current_fiber(), std::current_exception());
      }
      return;
    }
    state_->acquire_slot();
    weft::spawn_n(detail::make_pool_job(state_, std::forward<F>(f), std::forward<Args>(args)...));
  }

  /// Waits until no job of the pool is running. Throws std::logic_error when
  /// called from one of the pool's own jobs (it would never return).
  void waitall();
  /// Jobs running now.
  std::size_t running() const noexcept { return state_->running_; }
  /// Slots free now; negative after resize() shrank a busy pool.
  long free() const noexcept { return state_->free_slots(); }
  /// Fibers waiting in spawn for a slot.
  std::size_t waiting() const noexcept { return state_->slot_waiters_.size(); }
  std::size_t size() const noexcept { return state_->size_; }
  /// Changes the bound; running jobs are not touched, waiting spawners wake
  /// if there is room. 0 pauses the pool: spawns wait until it grows again.
  void resize(std::size_t size);

 private:
  std::shared_ptr<detail::PoolState> state_;
};

/// Spawns jobs into a pool and hands their results back in spawn order (not
/// completion order). eventlet's GreenPile.
template <class R>
class GreenPile {
 public:
  explicit GreenPile(std::size_t size = 1000)
      : owned_pool_(std::make_unique<GreenPool>(size)), pool_(owned_pool_.get()) {}
  explicit GreenPile(GreenPool& pool) : pool_(&pool) {}

  /// Spawns into the pool (may wait for a slot). If that wait is interrupted,
  /// nothing is added and the pile stays consistent.
  template <class F, class... Args>
  void spawn(F&& f, Args&&... args) {
    pending_.push_back(pool_->spawn(std::forward<F>(f), std::forward<Args>(args)...));
  }

  /// True when every spawned result has been taken.
  bool empty() const noexcept { return pending_.empty(); }
  std::size_t size() const noexcept { return pending_.size(); }

  /// The oldest result not yet taken (waits for it; rethrows its exception).
  /// Throws std::out_of_range when the pile is empty.
  R next() {
    if (pending_.empty()) throw std::out_of_range("weft::GreenPile::next: no more results");
    GreenThread<R> oldest = std::move(pending_.front());
    pending_.pop_front();
    return oldest.wait();
  }

 private:
  std::unique_ptr<GreenPool> owned_pool_;
  GreenPool* pool_;
  std::deque<GreenThread<R>> pending_;
};

}  // namespace weft

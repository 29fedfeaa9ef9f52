#pragma once
/// The non-template half of a GreenThread's shared state: completion, the
/// fibers waiting for it, and link callbacks.
///
/// The fiber runs on one hub, but its handle may be used from any thread: a
/// fiber of another hub may wait for it, link to it or kill it. Completion is
/// an atomic flag (a finished fiber costs a waiter one load); waiters and links
/// sit under a SpinLock, which finish() takes once.

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/detail/parking.hpp>
#include <weft/runtime/detail/unique_function.hpp>

namespace weft::detail {

class GreenThreadCore : public FiberBase {
 public:
  using LinkCallback = UniqueFunction<void(GreenThreadCore&)>;

  /// Has the outcome been recorded? Any thread; once true, error() and the
  /// result may be read.
  bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
  const std::exception_ptr& error() const noexcept { return error_; }

  /// Suspends the calling fiber (of any hub) until this one has finished;
  /// returns at once, from any thread, if it has. Throws logic_error when a
  /// fiber waits for itself, NoHubError outside a fiber.
  void wait_finished();
  /// Runs `callback` when the fiber ends (in the dying fiber), or now, in the
  /// caller, if it has ended. Any thread.
  std::uint64_t add_link(LinkCallback callback);
  bool remove_link(std::uint64_t id) noexcept;
  /// kill / cancel as GreenThread documents them, from any thread; null
  /// `error` means FiberExit. From another thread than the fiber's hub it is
  /// delivered by that hub at its next round and the caller does not wait.
  void kill(std::exception_ptr error, bool only_if_not_started);
  /// For destructors that wait for a fiber and must never throw (looping
  /// calls, thread groups, managed threads): kill() with FiberExit, without
  /// the killer's yield, so that a kill or Timeout pending for the caller is
  /// not thrown here. Not for the fiber itself.
  void kill_deferring_interrupts() noexcept;
  /// wait_finished() for the same destructors: a kill or Timeout aimed at the
  /// caller neither wakes nor interrupts it; it stays pending and is thrown
  /// at the caller's next suspension point. From a fiber (of any hub) other
  /// than this one.
  void wait_deferring_interrupts() noexcept;
  /// Ends a fiber that was never handed to its hub: it never runs, its
  /// outcome is `error` (FiberExit if null) and its links run now, in the
  /// caller. Drops the fiber's own reference.
  void abort_unstarted(std::exception_ptr error) noexcept;

 protected:
  GreenThreadCore() = default;
  ~GreenThreadCore() override = default;

  /// Records the outcome (null = success), wakes the waiters and runs the
  /// links, each isolated: one that throws is reported and the rest still run.
  void finish(std::exception_ptr error) noexcept;

  /// Guards waiters, links, and taking a move-only result.
  mutable SpinLock lock_;

 private:
  // Beside lock_, in what would be padding.
  std::atomic<bool> finished_{false};
  bool resolving_links_ = false;

  struct Link {
    std::uint64_t id;
    LinkCallback callback;
  };
  // Made by the first link: most fibers are never linked.
  struct Links {
    std::vector<Link> list;
    std::uint64_t next_id = 1;
  };

  void deliver_kill(std::exception_ptr error, bool only_if_not_started, bool killer_yields);
  /// Runs links until none is left; the caller has set resolving_links_.
  void resolve_links() noexcept;

  bool has_links() const noexcept { return links_ && !links_->list.empty(); }

  ParkingLot waiters_;
  std::unique_ptr<Links> links_;
  std::exception_ptr error_;
};

}  // namespace weft::detail

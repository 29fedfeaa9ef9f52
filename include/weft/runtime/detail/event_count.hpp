#pragma once
/// EventCount: the one wait that both fibers and plain OS threads use, for
/// weft's own blocking calls that either may make (join, next, get_or_throw
/// of managed threads, destroyable work and steps). A fiber suspends (only
/// itself: its hub runs on, and a kill or Timeout reaches it as at any
/// suspension point); a plain thread blocks in the kernel. Not part of the
/// public contract.
///
/// The waiter reads a key, checks its condition, and waits only if the key
/// is still current, so a notify between the check and the wait is never
/// lost (folly's and Dmitry Vyukov's event count):
///
///     for (;;) {
///       const auto key = changed.prepare_wait();
///       if (condition()) break;
///       if (!changed.wait(key, deadline)) break;  // timed out
///     }

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include <weft/runtime/detail/parking.hpp>

namespace weft::detail {

class EventCount {
 public:
  using Key = std::uint64_t;

  EventCount() = default;
  EventCount(const EventCount&) = delete;
  EventCount& operator=(const EventCount&) = delete;

  /// The key to wait on; take it before checking the condition.
  Key prepare_wait() const noexcept { return epoch_.load(std::memory_order_seq_cst); }

  /// Wakes every waiter whose key is older. Any thread, any fiber; never
  /// blocks for long and never suspends.
  void notify_all() noexcept;

  /// Waits until a notify_all after `key` or until `deadline` (from
  /// caller_deadline) passes; false on the deadline. A fiber suspends and
  /// throws a kill or Timeout that reaches it; a plain thread blocks.
  bool wait(Key key, std::optional<std::int64_t> deadline = std::nullopt);

  /// As wait() without a deadline, for destructors: a kill or Timeout aimed
  /// at a waiting fiber stays pending for its next suspension point.
  void wait_ignoring_interrupts(Key key) noexcept;

  /// `timeout` from now on the caller's clock: its hub's (which may be
  /// virtual) in a fiber, steady_clock elsewhere; nullopt waits for ever.
  static std::optional<std::int64_t> caller_deadline(
      std::optional<std::chrono::nanoseconds> timeout) noexcept;

  /// Waits until `done()` is true (checked first, and after every notify);
  /// false if `deadline` passed first.
  template <class Done>
  bool wait_until(Done&& done, std::optional<std::int64_t> deadline = std::nullopt) {
    for (;;) {
      const Key key = prepare_wait();
      if (done()) return true;
      if (!wait(key, deadline)) return done();
    }
  }

  /// wait_until for destructors (see wait_ignoring_interrupts).
  template <class Done>
  void wait_until_ignoring_interrupts(Done&& done) noexcept {
    for (;;) {
      const Key key = prepare_wait();
      if (done()) return;
      wait_ignoring_interrupts(key);
    }
  }

 private:
  bool wait_as_fiber(Key key, std::optional<std::int64_t> deadline, bool interruptible);
  bool wait_as_thread(Key key, std::optional<std::int64_t> deadline) noexcept;

  std::atomic<Key> epoch_{0};
  SpinLock fibers_lock_;
  ParkingLot fibers_;
  std::mutex threads_mutex_;
  std::condition_variable threads_;
  std::atomic<std::uint32_t> waiting_threads_{0};
};

}  // namespace weft::detail

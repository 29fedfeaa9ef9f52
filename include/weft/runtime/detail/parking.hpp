#pragma once
/// The one wait primitive under every sync object (trio's ParkingLot): a FIFO
/// of parked fibers guarded by the object's SpinLock. Waiting is always done
/// by a fiber; unparking may come from any fiber of any hub or from a plain
/// OS thread. Not part of the public contract.
///
/// A parked fiber is woken directly when the unparker runs on the fiber's own
/// hub thread, and through its hub's remote queue otherwise. Every suspension
/// of a fiber has an epoch, and a wake-up names the epoch it is for, so a
/// wake-up that arrives late (the fiber was interrupted and moved on) is
/// dropped instead of waking a later, unrelated suspension.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/runtime/detail/deadline.hpp>
#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/detail/intrusive_list.hpp>
#include <weft/runtime/detail/spin_pause.hpp>

namespace weft::detail {

/// A test-and-test-and-set lock over the few instructions a sync object takes
/// to change state; never held across a suspension. Uncontended, it costs one
/// atomic exchange; contended, it spins briefly, then yields the CPU.
class SpinLock {
 public:
  void lock() noexcept {
    if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]]
      return;
    lock_contended();
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  /// Returns once no one holds the lock: whoever did has finished with the
  /// object (see ParkingLot::park).
  void wait_until_unlocked() const noexcept {
    while (locked_.load(std::memory_order_acquire))
      spin_pause();
  }

 private:
  void lock_contended() noexcept;
  std::atomic<bool> locked_{false};
};

using SpinGuard = std::unique_lock<SpinLock>;

struct ParkTag;

/// One fiber parked on a sync object; lives on that fiber's stack.
struct Parked : ListHook<ParkTag> {
  FiberBase* fiber = nullptr;
  HubCore* hub = nullptr;
  std::uint32_t epoch = 0;  // which suspension of `fiber` this is
  /// Set by the unparker, under the lock: what the fiber waited for (a
  /// permit, an item, the lock) has been handed to it.
  bool unparked = false;
};

/// Throws the kill or Timeout pending for the calling fiber (after a park that
/// ended with one).
[[noreturn]] void throw_pending_interrupt();

/// How a park ended. After `unparked` the lock is NOT held (the common case
/// needs nothing more from the object: the unparker handed everything over);
/// after the others it is held again.
enum class ParkEnd : std::uint8_t {
  unparked,                  // handed what it waited for
  unparked_and_interrupted,  // handed it, but a kill or Timeout is pending too
  interrupted,               // kill or Timeout first; no longer parked
  timed_out,                 // deadline first; no longer parked
};

/// For park_settled: a fiber handed what it waited for keeps it even when a
/// kill or Timeout came too; the interrupt waits for its next suspension point.
struct KeepWhatWasHanded {
  void operator()() const noexcept {}
};

/// A FIFO of parked fibers. Every member function needs the owner's lock.
class ParkingLot {
 public:
  ParkingLot() = default;
  ParkingLot(const ParkingLot&) = delete;
  ParkingLot& operator=(const ParkingLot&) = delete;

  bool empty() const noexcept { return parked_.empty(); }
  std::size_t size() const noexcept { return parked_.size(); }
  /// The oldest parked fiber's record, or nullptr (to hand it data before
  /// unpark_one).
  Parked* front() const noexcept { return parked_.front(); }

  /// Parks the calling fiber until it is unparked, `deadline_ns` (steady
  /// clock) passes, or it is interrupted. `lock` is held on entry, and on
  /// return unless the result is ParkEnd::unparked. A kill or Timeout already
  /// pending throws (lock held) before parking. Throws NoHubError outside a
  /// fiber.
  ParkEnd park(SpinGuard& lock, Parked& record, const char* reason,
               std::optional<std::int64_t> deadline_ns = std::nullopt) {
    return park_record(lock, record, reason, deadline_ns, true);
  }
  /// park(), with how it ended settled the same way for every sync object:
  /// true if the fiber was handed what it waited for (lock not held), false
  /// if the deadline passed first (lock held). A kill or Timeout is thrown;
  /// if the fiber had been handed what it waited for as well, `give_back()`
  /// (lock held) first passes it on to the next waiter, or, with
  /// KeepWhatWasHanded, the fiber keeps it and true is returned.
  template <class GiveBack>
  bool park_settled(SpinGuard& lock, Parked& record, const char* reason,
                    std::optional<std::int64_t> deadline_ns, GiveBack&& give_back) {
    switch (park(lock, record, reason, deadline_ns)) {
      case ParkEnd::unparked:
        return true;
      case ParkEnd::timed_out:
        return false;
      case ParkEnd::unparked_and_interrupted:
        if constexpr (std::is_same_v<std::decay_t<GiveBack>, KeepWhatWasHanded>) {
          lock.unlock();
          return true;
        }
        give_back();
        break;
      case ParkEnd::interrupted:
        break;
    }
    lock.unlock();
    throw_pending_interrupt();
  }

  /// As park(), but a kill or Timeout neither stops nor prevents it: it stays
  /// pending for the caller to throw. For re-taking a lock that must be held
  /// again before anything is thrown (ConditionVariable::wait).
  void park_ignoring_interrupts(SpinGuard& lock, Parked& record, const char* reason) {
    park_record(lock, record, reason, std::nullopt, false);
  }

  template <class Fn>
  void for_each(Fn&& fn) const {
    parked_.for_each(std::forward<Fn>(fn));
  }

  /// Wakes the oldest parked fiber; false if none.
  bool unpark_one() noexcept;
  /// Wakes every parked fiber; returns how many.
  std::size_t unpark_all() noexcept;

 private:
  ParkEnd park_record(SpinGuard& lock, Parked& record, const char* reason,
                      std::optional<std::int64_t> deadline_ns, bool interruptible);

  IntrusiveList<Parked, ParkTag> parked_;
};

/// The rule for calls that may wait (acquire, lock, get, a bounded put, wait):
/// they are for fibers. Outside a fiber they throw NoHubError up front, whether
/// or not they would have had to wait, so that a program does not work until
/// the day the object is contended. Plain threads use the try_ forms and the
/// giving side (release, unlock, send, put on an unbounded queue, notify).
void require_fiber(const char* operation);

/// Throws the calling fiber's pending kill or Timeout, if it has one (before
/// giving anything up in order to park).
void throw_if_interrupted(const char* operation);

/// Who is acting: the running fiber, or, outside fibers, an address unique to
/// the calling OS thread. Owners of a Mutex, borrowers of a CapacityLimiter.
const void* current_actor() noexcept;

}  // namespace weft::detail

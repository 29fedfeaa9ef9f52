#include <weft/runtime/detail/parking.hpp>

#include <sched.h>

#include <limits>
#include <new>
#include <string>

#include <weft/runtime/errors.hpp>

#include "runtime/hub_core.hpp"
#include "runtime/out_of_memory.hpp"

namespace weft::detail {

void SpinLock::lock_contended() noexcept {
  // Holders never suspend or block inside, so the wait is short unless the
  // holder's thread was preempted: then spinning only delays it, so yield.
  for (int spins = 0;; ++spins) {
    if (!locked_.load(std::memory_order_relaxed) &&
        !locked_.exchange(true, std::memory_order_acquire)) {
      return;
    }
    if (spins < 64) {
      spin_pause();
    } else {
      ::sched_yield();
    }
  }
}

namespace {

// With the owner's lock held: the record may vanish once the lock is released
// (its fiber, interrupted meanwhile, would see `unparked` and return), and its
// hub cannot be destroyed while the fiber is still parked on it.
void wake(Parked& record) noexcept {
  record.unparked = true;
  HubCore* here = HubCore::current();
  if (record.hub == here) return here->wake_if(record.fiber, record.epoch);
  FiberBase* fiber = record.fiber;
  const std::uint32_t epoch = record.epoch;
  try {
    // The fiber may end before its hub runs the wake-up: the closure holds it.
    record.hub->post(
        [fiber, ref = FiberRef(fiber), epoch] { FiberAccess::hub(*fiber)->wake_if(fiber, epoch); });
  } catch (const std::bad_alloc&) {
    out_of_memory("posting a wake-up to another hub");
  }
}

// Leaves an interrupt pending without waking the fiber.
class IgnoreInterrupts final : public InterruptHook {
 public:
  void on_interrupt(FiberBase&) noexcept override {}
};
IgnoreInterrupts ignore_interrupts;

// Wakes a fiber parked with a deadline; runs on its hub, outside fibers.
struct DeadlineTimer {
  TimerNode node;
  std::uint32_t epoch;
};

}  // namespace

ParkEnd ParkingLot::park_record(SpinGuard& lock, Parked& record, const char* reason,
                                std::optional<std::int64_t> deadline_ns, bool interruptible) {
  HubCore& hub = current_hub_core(reason);
  FiberBase& self = hub.require_fiber(reason);
  if (interruptible && HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
  record.fiber = &self;
  record.hub = &hub;
  record.epoch = HubCore::suspend_epoch(self);
  record.unparked = false;
  parked_.push_back(&record);

  DeadlineTimer timer{.node = {}, .epoch = record.epoch};
  if (deadline_ns) {
    timer.node.owner = &self;
    timer.node.fire = [](TimerNode* node) noexcept {
      auto* sleeper = static_cast<FiberBase*>(node->owner);
      FiberAccess::hub(*sleeper)->wake_if(sleeper, reinterpret_cast<DeadlineTimer*>(node)->epoch);
    };
    hub.arm_timer(&timer.node, *deadline_ns);
  }
  lock.unlock();
  hub.suspend_keeping_interrupt(self, reason, interruptible ? nullptr : &ignore_interrupts);
  const bool interrupted = HubCore::interrupt_pending(self);
  // Nothing but the unparker wakes a fiber that has no deadline and no
  // interrupt, and it set `unparked` before the wake-up: no need to look
  // under the lock (the fast path of every hand-off). But an unparker on
  // another thread may still be inside the object, its lock held, when its
  // wake-up gets here; the caller may destroy the object as soon as this
  // returns (an Event on its stack), so wait for that lock to be let go.
  if (!deadline_ns && !interrupted) {
    lock.mutex()->wait_until_unlocked();
    return ParkEnd::unparked;
  }
  if (timer.node.armed()) hub.disarm_timer(&timer.node);
  lock.lock();
  if (record.unparked) {
    if (interrupted) return ParkEnd::unparked_and_interrupted;
    lock.unlock();
    return ParkEnd::unparked;
  }
  parked_.remove(&record);
  return interrupted ? ParkEnd::interrupted : ParkEnd::timed_out;
}

bool ParkingLot::unpark_one() noexcept {
  Parked* record = parked_.pop_front();
  if (!record) return false;
  wake(*record);
  return true;
}

std::size_t ParkingLot::unpark_all() noexcept {
  std::size_t count = 0;
  while (unpark_one())
    ++count;
  return count;
}

void throw_pending_interrupt() {
  HubCore& hub = current_hub_core("weft sync");
  HubCore::rethrow_interrupt(hub.require_fiber("weft sync"));
}

void require_fiber(const char* operation) {
  if (!current_fiber()) [[unlikely]] {
    throw NoHubError(std::string(operation) +
                     ": may wait, so it is for fibers (from a plain thread: the try_ form)");
  }
}

void throw_if_interrupted(const char* operation) {
  FiberBase& self = current_hub_core(operation).require_fiber(operation);
  if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
}

const void* current_actor() noexcept {
  static thread_local const char thread_marker = 0;
  if (FiberBase* fiber = current_fiber()) return fiber;
  return &thread_marker;
}

}  // namespace weft::detail

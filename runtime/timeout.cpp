#include <weft/runtime/timeout.hpp>

#include <atomic>
#include <exception>
#include <new>

#include "runtime/hub_core.hpp"
#include "runtime/out_of_memory.hpp"

namespace weft {

std::uint64_t detail::next_timeout_serial() noexcept {
  // A bound below every serial made after this call, on this thread's hub: the
  // rest of its block, else whatever block it takes next.
  if (HubCore* hub = HubCore::current()) return hub->timeout_serials().lower_bound();
  return HubCore::timeout_serial_source.load(std::memory_order_relaxed);
}

bool detail::from_enclosing_timeout(const TimeoutError& error,
                                    std::uint64_t first_own_timeout) noexcept {
  // Serials grow only within a hub, and an enclosing Timeout is the calling
  // fiber's own: compare them only then.
  const FiberBase* self = current_fiber();
  return self && error.fiber_id() == self->id() && error.serial() < first_own_timeout;
}

TimeoutError::TimeoutError(std::uint64_t timeout_serial, std::uint64_t fiber_id)
    : std::runtime_error("weft::Timeout expired"),
      timeout_serial_(timeout_serial),
      fiber_id_(fiber_id) {}

bool TimeoutError::is(const Timeout& timeout) const noexcept {
  return timeout.serial_ == timeout_serial_;
}

Timeout::Timeout(std::chrono::nanoseconds duration)
    : fiber_(&detail::current_hub_core("weft::Timeout").require_fiber("weft::Timeout")),
      serial_(detail::FiberAccess::hub(*fiber_)->timeout_serials().take()) {
  timer_.owner = this;
  timer_.fire = &Timeout::fire;
  detail::FiberAccess::hub(*fiber_)->arm_timer(&timer_, detail::deadline_after(duration));
}

Timeout::~Timeout() {
  cancel();
}

void Timeout::cancel() noexcept {
  detail::HubCore* hub = detail::FiberAccess::hub(*fiber_);
  hub->disarm_timer(&timer_);
  hub->withdraw_interrupt(fiber_, serial_);
}

void Timeout::fire(detail::TimerNode* timer) noexcept {
  auto* timeout = static_cast<Timeout*>(timer->owner);
  std::exception_ptr error;
  try {
    error = std::make_exception_ptr(TimeoutError(timeout->serial_, timeout->fiber_->id()));
  } catch (const std::bad_alloc&) {
    detail::out_of_memory("raising a Timeout's TimeoutError");
  }
  detail::FiberAccess::hub(*timeout->fiber_)
      ->interrupt(timeout->fiber_, std::move(error), timeout->serial_);
}

}  // namespace weft

#include <weft/runtime/timeout.hpp>

#include <atomic>
#include <exception>
#include <new>

#include "runtime/hub_core.hpp"
#include "runtime/out_of_memory.hpp"

namespace weft {

namespace {
// Serials, not addresses, identify a Timeout: a later one may reuse the address.
std::atomic<std::uint64_t> timeout_serials{1};
}  // namespace

std::uint64_t detail::next_timeout_serial() noexcept {
  return timeout_serials.load(std::memory_order_relaxed);
}

TimeoutError::TimeoutError(std::uint64_t timeout_serial)
    : std::runtime_error("weft::Timeout expired"), timeout_serial_(timeout_serial) {}

bool TimeoutError::is(const Timeout& timeout) const noexcept {
  return timeout.serial_ == timeout_serial_;
}

Timeout::Timeout(std::chrono::nanoseconds duration)
    : fiber_(&detail::current_hub_core("weft::Timeout").require_fiber("weft::Timeout")),
      serial_(timeout_serials.fetch_add(1, std::memory_order_relaxed)) {
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
    error = std::make_exception_ptr(TimeoutError(timeout->serial_));
  } catch (const std::bad_alloc&) {
    detail::out_of_memory("raising a Timeout's TimeoutError");
  }
  detail::FiberAccess::hub(*timeout->fiber_)
      ->interrupt(timeout->fiber_, std::move(error), timeout->serial_);
}

}  // namespace weft

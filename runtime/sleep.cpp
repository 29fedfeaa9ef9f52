#include <weft/runtime/sleep.hpp>

#include "runtime/hub_core.hpp"

namespace weft {

void yield() { detail::current_hub_core("weft::yield").yield_now(); }

void sleep(std::chrono::nanoseconds duration) {
  detail::HubCore& hub = detail::current_hub_core("weft::sleep");
  if (duration.count() <= 0) return hub.yield_now();
  detail::FiberBase& self = hub.require_fiber("weft::sleep");

  detail::TimerNode timer;
  timer.owner = &self;
  timer.fire = [](detail::TimerNode* node) noexcept {
    auto* sleeper = static_cast<detail::FiberBase*>(node->owner);
    detail::FiberAccess::hub(*sleeper)->wake(sleeper);
  };
  hub.arm_timer(&timer, detail::HubCore::now_ns() + duration.count());
  struct Disarm {
    detail::HubCore& hub;
    detail::TimerNode& timer;
    ~Disarm() { hub.disarm_timer(&timer); }  // woken early by kill or Timeout
  } disarm{hub, timer};
  hub.suspend("sleep");
}

}  // namespace weft

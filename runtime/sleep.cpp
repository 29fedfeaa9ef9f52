#include <weft/runtime/sleep.hpp>

#include "runtime/hub_core.hpp"

namespace weft {

namespace detail {

namespace {
HubCore& yielding_hub() {
  HubCore* hub = HubCore::current();
  if (!hub) [[unlikely]]
    return current_hub_core("weft::yield");  // throws NoHubError
  return *hub;
}
}  // namespace

#ifdef WEFT_INLINE_SWITCH
YieldSwitch yield_begin() {
  HubCore& hub = yielding_hub();
  FiberBase* self = nullptr;
  void* to = hub.yield_begin(self);
  return YieldSwitch{to, self, &hub};
}

// A fiber never changes hubs: the one it left from is the one it resumes on.
void yield_end(void* hub, void* from_context, void* from) {
  static_cast<HubCore*>(hub)->yield_end(from_context, from);
}
#else
void yield_out_of_line() {
  yielding_hub().yield_now();
}
#endif

}  // namespace detail

namespace {

void sleep_until_ns(detail::HubCore& hub, std::int64_t deadline_ns) {
  detail::FiberBase& self = hub.require_fiber("weft::sleep");

  detail::TimerNode timer;
  timer.owner = &self;
  timer.fire = [](detail::TimerNode* node) noexcept {
    auto* sleeper = static_cast<detail::FiberBase*>(node->owner);
    detail::FiberAccess::hub(*sleeper)->wake(sleeper);
  };
  hub.arm_timer(&timer, deadline_ns);
  struct Disarm {
    detail::HubCore& hub;
    detail::TimerNode& timer;
    ~Disarm() { hub.disarm_timer(&timer); }  // woken early by kill or Timeout
  } disarm{hub, timer};
  hub.suspend("sleep");
}

}  // namespace

void sleep(std::chrono::nanoseconds duration) {
  detail::HubCore& hub = detail::current_hub_core("weft::sleep");
  if (duration.count() <= 0) return hub.yield_now();
  sleep_until_ns(hub, detail::deadline_after(duration));
}

void sleep_until(std::chrono::steady_clock::time_point deadline) {
  // The hub's clock counts from steady_clock's epoch (CLOCK_MONOTONIC in
  // libstdc++ and libc++), a virtual one too.
  detail::HubCore& hub = detail::current_hub_core("weft::sleep_until");
  const std::int64_t deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  if (deadline_ns <= hub.now_ns()) return hub.yield_now();
  sleep_until_ns(hub, deadline_ns);
}

}  // namespace weft

#include "runtime/hub_lifeline.hpp"

#include "runtime/hub_core.hpp"

namespace weft::detail {

bool HubLifeline::is_callers() const noexcept {
  return hub_.load(std::memory_order_acquire) == HubCore::current();
}

bool HubLifeline::post_if_alive(UniqueFunction<void()>& work) {
  std::lock_guard lock(mutex_);
  HubCore* hub = hub_.load(std::memory_order_relaxed);
  if (!hub) return false;
  hub->post(std::move(work));
  return true;
}

void HubLifeline::cut() noexcept {
  std::lock_guard lock(mutex_);
  hub_.store(nullptr, std::memory_order_release);
}

}  // namespace weft::detail

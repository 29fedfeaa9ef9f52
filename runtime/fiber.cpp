// The entry points weft's templates call (spawn, kill) and the WaitQueue.

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/spawn_options.hpp>

#include "runtime/fiber_block_cache.hpp"
#include "runtime/hub_core.hpp"

namespace weft::detail {

const char* to_string(FiberState state) noexcept {
  switch (state) {
    case FiberState::created:
      return "created";
    case FiberState::ready:
      return "ready";
    case FiberState::running:
      return "running";
    case FiberState::suspended:
      return "suspended";
    case FiberState::dead:
      return "dead";
  }
  return "?";
}

void* FiberBase::operator new(std::size_t size) {
  if constexpr (!FiberBlockCache::enabled) return ::operator new(size);
  const std::size_t bytes = FiberBlockCache::block_size(size);
  HubCore* hub = HubCore::current();
  if (!hub) return ::operator new(bytes);
  if (void* block = hub->fiber_blocks().take(size)) return block;
  void* block = ::operator new(bytes);
  hub->heap_prefault().after_new_block(block, bytes);
  return block;
}

void FiberBase::operator delete(void* block, std::size_t size) noexcept {
  if constexpr (FiberBlockCache::enabled) {
    HubCore* hub = HubCore::current();
    if (hub && hub->fiber_blocks().keep(block, size)) return;
  }
  ::operator delete(block);
}

const std::string& FiberBase::no_name() noexcept {
  static const std::string empty;
  return empty;
}

FiberBase* current_fiber() noexcept {
  HubCore* hub = HubCore::current();
  return hub ? hub->running_fiber() : nullptr;
}

HubCore& current_hub_core(const char* operation) {
  HubCore* hub = HubCore::current();
  if (!hub) throw NoHubError(std::string(operation) + ": no hub runs on this thread");
  return *hub;
}

void start_fiber(HubCore& hub, FiberBase* fiber, const SpawnOptions& options) {
  hub.start(fiber, options, std::nullopt);
}

void start_fiber_after(HubCore& hub, FiberBase* fiber, std::chrono::nanoseconds delay,
                       const SpawnOptions& options) {
  hub.start(fiber, options, deadline_after(delay));
}

void report_fiber_error(const FiberBase& fiber, std::exception_ptr error) noexcept {
  const std::string_view name = fiber.name().empty() ? "-" : std::string_view(fiber.name());
  if (HubCore* hub = HubCore::current()) return hub->report_error(name, error);
  // A link callback run by a plain thread (it linked to a fiber that had ended).
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log(LogLevel::error,
        "exception in a callback of fiber '" + std::string(name) + "': " + e.what());
  } catch (...) {
    log(LogLevel::error, "exception in a callback of fiber '" + std::string(name) + "'");
  }
}

void WaitQueue::wait(const char* reason) {
  Waiter waiter;
  wait(waiter, reason);
}

void WaitQueue::wait(Waiter& waiter, const char* reason) {
  HubCore& hub = current_hub_core(reason);
  waiter.fiber = &hub.require_fiber(reason);
  waiter.notified = false;
  waiters_.push_back(&waiter);
  struct Unqueue {
    IntrusiveList<Waiter, WaitTag>& list;
    Waiter& waiter;
    ~Unqueue() {
      if (waiter.linked()) list.remove(&waiter);  // interrupted before being notified
    }
  } unqueue{waiters_, waiter};
  hub.suspend(reason);
}

bool WaitQueue::notify_one() noexcept {
  Waiter* waiter = waiters_.pop_front();
  if (!waiter) return false;
  waiter->notified = true;
  FiberAccess::hub(*waiter->fiber)->wake(waiter->fiber);
  return true;
}

void WaitQueue::notify_all() noexcept {
  while (notify_one()) {
  }
}

}  // namespace weft::detail

#include <weft/process/thread_cache.hpp>
#include <weft/process/to_thread.hpp>

#include <cassert>

#include "runtime/hub_core.hpp"

namespace weft {

namespace to_thread {

CapacityLimiter& default_limiter() {
  static CapacityLimiter* const limiter = new CapacityLimiter(40);
  return *limiter;
}

}  // namespace to_thread

namespace detail {

// Who ends a call is decided by one atomic exchange on `state_`: the worker
// sets `completed` when the function has run, the hub's interrupt hook sets
// `abandoned` (only with abandon_on_cancel, only while still waiting). If the
// worker comes first, the fiber will be woken with the result and owns the
// call; if the hook comes first, the fiber leaves at once and the worker,
// finding `abandoned`, releases the token and deletes the call. The hook
// also notes the abandonment on the fiber's stack: from the exchange on, the
// worker may delete the call at any moment, so the fiber must learn that it
// left from somewhere that is still its own.

class ThreadCall::AbandonOnInterrupt final : public InterruptHook {
 public:
  explicit AbandonOnInterrupt(ThreadCall& call) : call_(call) {}

  void on_interrupt(FiberBase& fiber) noexcept override {
    if (!abandon_on_cancel_) return;  // wait for the function; the interrupt stays pending
    int expected = waiting;
    if (call_.state_.compare_exchange_strong(expected, abandoned, std::memory_order_acq_rel)) {
      abandoned_ = true;  // `call_` is the worker's now
      FiberAccess::hub(fiber)->wake(&fiber);
    }
  }
  bool has_abandoned() const noexcept { return abandoned_; }

 private:
  ThreadCall& call_;
  const bool abandon_on_cancel_ = call_.abandon_on_cancel_;
  bool abandoned_ = false;
};

void ThreadCall::run(std::unique_ptr<ThreadCall>& owner, const RunSyncOptions& options) {
  if (owner->wait_for_worker(options)) {
    owner.release();  // the worker deletes it
    throw_pending_interrupt();
  }
}

bool ThreadCall::wait_for_worker(const RunSyncOptions& options) {
  HubCore& hub = current_hub_core("weft::to_thread::run_sync");
  FiberBase& self = hub.require_fiber("weft::to_thread::run_sync");
  throw_if_interrupted("weft::to_thread::run_sync");  // cancelled before entry: never runs
  CapacityLimiter& limiter = options.limiter ? *options.limiter : to_thread::default_limiter();
  limiter.acquire_on_behalf_of(this);
  limiter_ = limiter.state_;

  fiber_ = &self;
  hub_ = &hub;
  epoch_ = HubCore::suspend_epoch(self);
  abandon_on_cancel_ = options.abandon_on_cancel;
  try {
    ThreadCache::global().start_thread_soon([this] { invoke(); },
                                            [this](std::exception_ptr) { finished(); });
  } catch (...) {
    release_capacity_token(*limiter_, this);  // nothing runs: the token goes back
    throw;
  }
  AbandonOnInterrupt hook(*this);
  // One suspension: only finished()'s wake-up (for this epoch) or the hook's
  // abandonment resumes it.
  hub.expect_remote_wakeup(true);
  hub.suspend_keeping_interrupt(self, "to_thread::run_sync", &hook);
  hub.expect_remote_wakeup(false);
  if (hook.has_abandoned()) return true;
  assert(state_.load(std::memory_order_acquire) == completed);
  release_capacity_token(*limiter_, this);
  return false;
}

void ThreadCall::finished() noexcept {
  if (state_.exchange(completed, std::memory_order_acq_rel) == abandoned) {
    release_capacity_token(*limiter_, this);
    delete this;
    return;
  }
  // The fiber waits for this wake-up and cannot leave before it: the call
  // and the hub stay alive until the post has run.
  auto* fiber = static_cast<FiberBase*>(fiber_);
  const std::uint32_t epoch = epoch_;
  static_cast<HubCore*>(hub_)->post(
      [fiber, epoch] { FiberAccess::hub(*fiber)->wake_if(fiber, epoch); });
}

}  // namespace detail

}  // namespace weft

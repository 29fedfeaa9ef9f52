#include <weft/runtime/detail/green_thread_core.hpp>

#include <stdexcept>

#include <weft/runtime/errors.hpp>

#include "runtime/hub_core.hpp"

namespace weft::detail {

void GreenThreadCore::wait_finished() {
  if (finished()) return;
  FiberBase* self = current_fiber();
  if (!self) throw NoHubError("weft::GreenThread::wait: must be called from a fiber");
  if (self == this)
    throw std::logic_error("weft::GreenThread::wait: a fiber cannot wait for itself");
  SpinGuard lock(lock_);
  if (finished_.load(std::memory_order_relaxed)) return;
  // finish() sets the flag and unparks under the lock: one unpark is enough.
  Parked record;
  // Killed or timed out while waiting: thrown, even if also unparked.
  waiters_.park_settled(lock, record, "GreenThread::wait", std::nullopt, [] {});
}

std::uint64_t GreenThreadCore::add_link(LinkCallback callback) {
  SpinGuard lock(lock_);
  if (!links_) links_ = std::make_unique<Links>();
  const std::uint64_t id = links_->next_id++;
  links_->list.push_back(Link{id, std::move(callback)});
  // Not ended yet, or someone is running the links already (the dying fiber,
  // or a callback that links another one): they will run this one too.
  if (!finished_.load(std::memory_order_relaxed) || resolving_links_) return id;
  resolving_links_ = true;
  lock.unlock();
  resolve_links();
  return id;
}

bool GreenThreadCore::remove_link(std::uint64_t id) noexcept {
  SpinGuard lock(lock_);
  if (!links_) return false;
  std::vector<Link>& list = links_->list;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->id == id) {
      list.erase(it);
      return true;
    }
  }
  return false;
}

void GreenThreadCore::kill(std::exception_ptr error, bool only_if_not_started) {
  deliver_kill(std::move(error), only_if_not_started, true);
}

void GreenThreadCore::kill_deferring_interrupts() noexcept {
  deliver_kill(nullptr, false, false);
}

void GreenThreadCore::wait_deferring_interrupts() noexcept {
  if (finished()) return;
  SpinGuard lock(lock_);
  if (finished_.load(std::memory_order_relaxed)) return;
  // Only finish() wakes a fiber parked this way, so when this returns the
  // fiber has ended, whatever is pending for the caller.
  Parked record;
  waiters_.park_ignoring_interrupts(lock, record, "GreenThread::wait (in a destructor)");
}

void GreenThreadCore::deliver_kill(std::exception_ptr error, bool only_if_not_started,
                                   bool killer_yields) {
  HubCore* here = HubCore::current();
  HubCore* home = FiberAccess::hub(*this);
  if (here && here == home) {
    // A fiber handed over by Runtime::spawn_on whose start is still in this
    // hub's remote queue is in no list yet: post the kill behind the start.
    const bool start_pending = state() == FiberState::created &&
                               !IntrusiveList<FiberBase, LiveTag>::contains_anywhere(this);
    if (!start_pending) {
      if (only_if_not_started && started()) return;
      return home->kill(this, std::move(error), killer_yields);
    }
  }
  // Another thread: the home hub delivers it at its next round. Posted under
  // the lock, so the fiber cannot finish meanwhile (finish() takes the lock)
  // and its hub, which ends only after its fibers have, is still there. A hub
  // that ends with the post unrun drops it, and the reference with it.
  SpinGuard lock(lock_);
  if (finished_.load(std::memory_order_relaxed) || !home) return;
  home->post([this, ref = FiberRef(this), error = std::move(error), only_if_not_started]() mutable {
    if (!(only_if_not_started && started())) FiberAccess::hub(*this)->kill(this, std::move(error));
  });
}

void GreenThreadCore::abort_unstarted(std::exception_ptr error) noexcept {
  if (!error) error = std::make_exception_ptr(FiberExit{});
  mark_ended_without_running();
  abort_before_start(std::move(error));  // records the outcome: finish()
  release();
}

void GreenThreadCore::finish(std::exception_ptr error) noexcept {
  SpinGuard lock(lock_);
  error_ = std::move(error);
  finished_.store(true, std::memory_order_release);
  // Links first, then the parked waiters: a waiter on another hub resumes
  // after every callback has run, as one on this hub always did.
  if (has_links() && !resolving_links_) {
    resolving_links_ = true;
    lock.unlock();
    resolve_links();
    lock.lock();
  }
  waiters_.unpark_all();
}

void GreenThreadCore::resolve_links() noexcept {
  add_ref();  // a callback may drop the last handle
  SpinGuard lock(lock_);
  while (has_links()) {
    std::vector<Link>& list = links_->list;
    LinkCallback callback = std::move(list.front().callback);
    list.erase(list.begin());
    lock.unlock();
    try {
      callback(*this);
    } catch (...) {
      report_fiber_error(*this, std::current_exception());
    }
    callback.reset();  // its captures die outside the lock too
    lock.lock();
  }
  resolving_links_ = false;
  lock.unlock();
  release();
}

}  // namespace weft::detail

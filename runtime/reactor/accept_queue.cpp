#include "runtime/reactor/accept_queue.hpp"

#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <utility>

#include "runtime/hub_core.hpp"

namespace weft::detail {

namespace {
// Past this many unclaimed connections, leave the rest in the kernel's backlog.
constexpr std::size_t max_queued = 128;
}  // namespace

// A kill or Timeout while waiting: nothing of the fiber's is in the kernel, so
// it leaves the line (a connection arriving now goes to the next fiber) and
// resumes. It stays inside take(), which keeps the queue alive, until it has
// left.
class AcceptQueue::WaiterHook final : public InterruptHook {
 public:
  WaiterHook(AcceptQueue& queue, Waiter& waiter) noexcept : queue_(queue), waiter_(waiter) {}
  void on_interrupt(FiberBase& fiber) noexcept override {
    if (waiter_.in_line) queue_.remove(waiter_);
    FiberAccess::hub(fiber)->wake(&fiber);
  }

 private:
  AcceptQueue& queue_;
  Waiter& waiter_;
};

AcceptQueue::AcceptQueue(HubCore& hub, int listen_fd) noexcept
    : owner_(&hub), owner_lifeline_(hub.lifeline()), hub_(&hub), listen_fd_(listen_fd) {
  complete = &on_complete;
  detached = true;
}

AcceptQueue::~AcceptQueue() {
  for (int fd : ready_)
    if (fd >= 0) ::close(fd);
}

AcceptQueue* AcceptQueue::start(HubCore& hub, int listen_fd) {
  auto* queue = new AcceptQueue(hub, listen_fd);
  if (!queue->arm()) {
    delete queue;
    return nullptr;
  }
  return queue;
}

bool AcceptQueue::arm() {
  backend_ = &hub_->backend();
  armed_ = backend_->start_multishot_accept(listen_fd_, this);
  cancel_requested_ = false;
  return armed_;
}

void AcceptQueue::stop_accepting() noexcept {
  if (armed_ && !cancel_requested_) {
    backend_->cancel(*this);
    cancel_requested_ = true;
  }
}

void AcceptQueue::push_back(Waiter& waiter) noexcept {
  waiter.previous = last_;
  waiter.next = nullptr;
  (last_ ? last_->next : first_) = &waiter;
  last_ = &waiter;
  waiter.in_line = true;
}

void AcceptQueue::remove(Waiter& waiter) noexcept {
  (waiter.previous ? waiter.previous->next : first_) = waiter.next;
  (waiter.next ? waiter.next->previous : last_) = waiter.previous;
  waiter.previous = waiter.next = nullptr;
  waiter.in_line = false;
}

void AcceptQueue::wake(Waiter& waiter) noexcept {
  FiberAccess::hub(*waiter.fiber)->wake_if(waiter.fiber, waiter.epoch);
}

void AcceptQueue::wake_all() noexcept {
  for (Waiter* waiter = first_; waiter; waiter = waiter->next)
    wake(*waiter);
}

void AcceptQueue::deliver(int result, bool first) noexcept {
  if (Waiter* waiter = first_) {
    remove(*waiter);
    waiter->handed = true;
    waiter->result = result;
    wake(*waiter);
  } else if (first) {
    ready_.push_front(result);
  } else {
    ready_.push_back(result);
  }
}

void AcceptQueue::leave(Waiter& waiter) noexcept {
  if (waiter.in_line) remove(waiter);
  --inside_;
  // The operation stopped and the fiber woken to start it again is gone:
  // the next one in line does it.
  if (!armed_ && !released_ && first_) wake(*first_);
  delete_if_unused();
}

void AcceptQueue::delete_if_unused() noexcept {
  if (released_ && !armed_ && inside_ == 0) delete this;
}

int AcceptQueue::take(HubCore& hub, FiberBase& self, const char* what) {
  if (!ready_.empty()) {  // then no one waits: arrivals go to waiting fibers first
    const int fd = ready_.front();
    ready_.pop_front();
    return fd;
  }
  Waiter waiter;
  waiter.fiber = &self;
  ++inside_;
  struct Inside {  // the last thing take() does: it may free the queue
    AcceptQueue& queue;
    Waiter& waiter;
    ~Inside() { queue.leave(waiter); }
  } inside{*this, waiter};
  push_back(waiter);
  for (;;) {
    if (!armed_ && !released_) {
      hub_ = &hub;  // the owner (serves()), or a hub made since at its address
      if (!arm()) return -EOPNOTSUPP;
    }
    waiter.epoch = HubCore::suspend_epoch(self);
    WaiterHook hook(*this, waiter);
    hub.suspend_keeping_interrupt(self, what, &hook);
    if (waiter.handed) {
      if (!HubCore::interrupt_pending(self)) return waiter.result;
      // A kill or Timeout that came after the connection keeps nothing: it
      // goes to the next in line (or first in the queue), as if never taken.
      waiter.handed = false;
      if (!released_) {
        deliver(waiter.result, true);
      } else if (waiter.result >= 0) {
        ::close(waiter.result);
      }
      HubCore::rethrow_interrupt(self);
    }
    if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
    if (released_) return -EBADF;  // the listener was closed meanwhile
    // Woken because the operation stopped: start it again, keeping our place.
  }
}

// A release handed to the queue's hub. Dropped unrun, the hub has ended (or
// there was no memory to post it): it releases where it is dropped.
class AcceptQueue::ReleaseOnItsHub {
 public:
  explicit ReleaseOnItsHub(AcceptQueue* queue) noexcept : queue_(queue) {}
  ReleaseOnItsHub(ReleaseOnItsHub&& other) noexcept
      : queue_(std::exchange(other.queue_, nullptr)) {}
  ReleaseOnItsHub& operator=(ReleaseOnItsHub&&) = delete;
  ~ReleaseOnItsHub() {
    if (queue_) queue_->release_here();
  }
  void operator()() noexcept { std::exchange(queue_, nullptr)->release_here(); }

 private:
  AcceptQueue* queue_;
};

void AcceptQueue::release() noexcept {
  if (owner_lifeline_->is_callers()) return release_here();
  try {
    UniqueFunction<void()> on_its_hub = ReleaseOnItsHub(this);
    owner_lifeline_->post_if_alive(on_its_hub);
  } catch (const std::bad_alloc&) {
    // The closure released it as it went.
  }
}

void AcceptQueue::release_here() noexcept {
  released_ = true;
  for (int fd : ready_)
    if (fd >= 0) ::close(fd);
  ready_.clear();
  stop_accepting();
  wake_all();  // each leaves the line itself, with -EBADF
  delete_if_unused();
}

void AcceptQueue::on_complete(IoCompletion* completion, int result, std::uint32_t flags) noexcept {
  auto* queue = static_cast<AcceptQueue*>(completion);
  const bool goes_on = (flags & IORING_CQE_F_MORE) != 0;
  if (queue->released_) {
    if (result >= 0) ::close(result);
  } else if (result != -ECANCELED) {  // ours, or the hub's teardown: not news
    queue->deliver(result, false);
  }
  if (!goes_on) {
    queue->armed_ = false;
    queue->hub_ = nullptr;  // the next take() starts it again, on its own hub
    // The first fiber in line starts it again.
    if (!queue->released_ && queue->first_) wake(*queue->first_);
  } else if (queue->ready_.size() >= max_queued) {
    queue->stop_accepting();
  }
  queue->delete_if_unused();
}

}  // namespace weft::detail

#include "io/accept_queue.hpp"

#include <liburing.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/hub_core.hpp"

namespace weft::detail {

namespace {
// Past this many unclaimed connections, leave the rest in the kernel's backlog.
constexpr std::size_t max_queued = 128;
}  // namespace

// A kill or Timeout while waiting: nothing of the fiber's is in the kernel, so
// it just stops waiting.
class AcceptQueue::WaiterHook final : public InterruptHook {
 public:
  // waiter_ stays set until take() itself clears it: it is what keeps the
  // queue alive until the fiber has left take().
  void on_interrupt(FiberBase& fiber) noexcept override { FiberAccess::hub(fiber)->wake(&fiber); }
};

AcceptQueue::AcceptQueue(HubCore& hub, int listen_fd) noexcept
    : owner_(&hub), hub_(&hub), listen_fd_(listen_fd) {
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

void AcceptQueue::wake_waiter() noexcept {
  if (FiberBase* waiter = waiter_) FiberAccess::hub(*waiter)->wake_if(waiter, waiter_epoch_);
}

void AcceptQueue::delete_if_unused() noexcept {
  if (released_ && !armed_ && !waiter_) delete this;
}

int AcceptQueue::take(HubCore& hub, FiberBase& self, const char* what) {
  for (;;) {
    if (!ready_.empty()) {
      const int fd = ready_.front();
      ready_.pop_front();
      return fd;
    }
    if (!armed_) {
      hub_ = &hub;  // the owner (serves()), or a hub made since at its address
      if (!arm()) return -EOPNOTSUPP;
    }
    waiter_ = &self;
    waiter_epoch_ = HubCore::suspend_epoch(self);
    WaiterHook hook;
    hub.suspend_keeping_interrupt(self, what, &hook);
    waiter_ = nullptr;
    if (released_) {  // the listener was closed meanwhile
      delete_if_unused();
      if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
      return -EBADF;
    }
    if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
  }
}

void AcceptQueue::release() noexcept {
  if (armed_ && hub_ && HubCore::current() != hub_) {
    // Another thread closed the listener: the ring and the waiter belong to
    // the hub's thread, so the release happens there.
    try {
      hub_->post([this] { release(); });
      return;
    } catch (...) {
      // No memory for the post: leak the queue rather than race the hub.
      return;
    }
  }
  released_ = true;
  for (int fd : ready_)
    if (fd >= 0) ::close(fd);
  ready_.clear();
  stop_accepting();
  wake_waiter();
  delete_if_unused();
}

void AcceptQueue::on_complete(IoCompletion* completion, int result, std::uint32_t flags) noexcept {
  auto* queue = static_cast<AcceptQueue*>(completion);
  const bool goes_on = (flags & IORING_CQE_F_MORE) != 0;
  if (queue->released_) {
    if (result >= 0) ::close(result);
  } else if (result != -ECANCELED) {  // ours, or the hub's teardown: not news
    queue->ready_.push_back(result);
  }
  if (!goes_on) {
    queue->armed_ = false;
    queue->hub_ = nullptr;  // the next take() starts it again, on its own hub
  } else if (queue->ready_.size() >= max_queued) {
    queue->stop_accepting();
  }
  queue->wake_waiter();
  queue->delete_if_unused();
}

}  // namespace weft::detail

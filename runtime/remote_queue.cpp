#include "runtime/remote_queue.hpp"

#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace weft::detail {

RemoteQueue::RemoteQueue() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (wake_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "weft: creating the hub's eventfd");
  }
}

RemoteQueue::~RemoteQueue() {
  // A kicker pushed before this hub ran its work, so it registered before the
  // hub could get here; it is a few instructions from done.
  while (kickers_.load(std::memory_order_acquire) != 0)
    ::sched_yield();
  Node* next = take_posted();
  while (next) {
    Node* node = next;
    next = node->next;
    delete node;
  }
  ::close(wake_fd_);
}

void RemoteQueue::post(UniqueFunction<void()> work) {
  Node* node = new Node{nullptr, std::move(work)};
  std::uintptr_t head = head_.load(std::memory_order_relaxed);
  bool registered = false;
  for (;;) {
    if ((head & sleeping_tag) && !registered) {
      // Register before the push makes the node visible (the release below
      // orders it): the hub may run the node and reach ~RemoteQueue before
      // the eventfd write.
      kickers_.fetch_add(1, std::memory_order_relaxed);
      registered = true;
    }
    node->next = reinterpret_cast<Node*>(head & ~sleeping_tag);
    if (head_.compare_exchange_weak(head, reinterpret_cast<std::uintptr_t>(node),
                                    std::memory_order_acq_rel, std::memory_order_relaxed)) {
      break;
    }
  }
  // From here on the queue may be gone, unless this poster is registered.
  if (!registered) return;
  if (head & sleeping_tag) kick();
  kickers_.fetch_sub(1, std::memory_order_release);
}

void RemoteQueue::kick() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the hub is being woken anyway.
  [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof one);
  const int extra = extra_kick_fd_.load(std::memory_order_acquire);
  if (extra >= 0) written = ::write(extra, &one, sizeof one);
}

RemoteQueue::Node* RemoteQueue::take_posted() noexcept {
  const std::uintptr_t taken = head_.exchange(0, std::memory_order_acquire);
  // The stack is newest first; reverse it so posts run in the order they were
  // made (a post that happened before another runs first).
  Node* newest_first = reinterpret_cast<Node*>(taken & ~sleeping_tag);
  Node* oldest_first = nullptr;
  while (newest_first) {
    Node* node = newest_first;
    newest_first = node->next;
    node->next = oldest_first;
    oldest_first = node;
  }
  return oldest_first;
}

}  // namespace weft::detail

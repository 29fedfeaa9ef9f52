#include "runtime/remote_queue.hpp"

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
  ::close(wake_fd_);
}

void RemoteQueue::post(UniqueFunction<void()> work) {
  // All of it under the mutex: once the hub can take the work, the work may
  // let the hub end (it wakes the fiber that was keeping it alive), so the
  // poster must not touch the queue after the unlock.
  std::lock_guard lock(mutex_);
  posted_.push_back(std::move(work));
  pending_.store(true, std::memory_order_seq_cst);
  if (hub_sleeping_.load(std::memory_order_seq_cst)) kick();
}

void RemoteQueue::kick() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the hub is being woken anyway.
  [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

void RemoteQueue::take_posted() {
  std::lock_guard lock(mutex_);
  running_.swap(posted_);
  pending_.store(false, std::memory_order_relaxed);
}

}  // namespace weft::detail

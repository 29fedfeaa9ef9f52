#pragma once
// Multishot accept (io_uring, Linux 5.19+): one operation in the kernel
// accepts connection after connection for a listener. Connections that arrive
// while no fiber is in accept() wait here, up to a bound; past it the
// operation is cancelled (the kernel's backlog holds the rest) and the next
// accept() starts it again.
//
// An AcceptQueue belongs to the hub it was started on and is used from that
// hub's thread only. The listener lets go of it with release(); it frees
// itself once the kernel has let go of it too, which may be after the hub has
// gone (the hub cancels it when destroyed).

#include <cstdint>
#include <deque>

#include "io/backend.hpp"

namespace weft::detail {

class FiberBase;
class HubCore;

class AcceptQueue final : IoCompletion {
 public:
  /// Starts accepting on `listen_fd` in `hub`'s ring; nullptr where the
  /// backend cannot (epoll, an older kernel).
  static AcceptQueue* start(HubCore& hub, int listen_fd);

  /// The next connection's fd (>= 0, close-on-exec, blocking) or -errno;
  /// waits for one (a suspension point: a kill or Timeout throws, and
  /// connections that arrive meanwhile stay queued for the next call).
  int take(HubCore& hub, FiberBase& self, const char* what);

  /// True for the hub it was started on, for good: other hubs' fibers use
  /// one-shot accepts on the listener (the queue is not thread-safe).
  bool serves(const HubCore& hub) const noexcept { return owner_ == &hub; }

  /// The listener lets go: queued connections are closed, the operation is
  /// cancelled, and a fiber waiting in take() gets -EBADF. From the hub's
  /// thread, or after the hub has gone. The object frees itself once neither
  /// the kernel nor a waiting fiber holds it.
  void release() noexcept;

 private:
  AcceptQueue(HubCore& hub, int listen_fd) noexcept;
  ~AcceptQueue();
  bool arm();
  void stop_accepting() noexcept;
  void wake_waiter() noexcept;
  void delete_if_unused() noexcept;
  static void on_complete(IoCompletion* self, int result, std::uint32_t flags) noexcept;
  class WaiterHook;

  HubCore* owner_;              // compared only: it may have been destroyed since
  HubCore* hub_;                // the hub whose ring holds it; null once it stopped
  Backend* backend_ = nullptr;  // the ring it was armed in (alive while the kernel holds it)
  int listen_fd_;
  std::deque<int> ready_;  // accepted fds, or -errno of a failed accept
  FiberBase* waiter_ = nullptr;
  std::uint32_t waiter_epoch_ = 0;
  bool armed_ = false;  // the kernel holds the operation
  bool cancel_requested_ = false;
  bool released_ = false;
};

}  // namespace weft::detail

#pragma once
// Multishot accept (io_uring, Linux 5.19+): one operation in the kernel
// accepts connection after connection for a listener. Connections that arrive
// while no fiber is in accept() wait here, up to a bound; past it the
// operation is cancelled (the kernel's backlog holds the rest) and the next
// accept() starts it again.
//
// Any number of fibers may wait in take() at once: they wait in a line, and
// each connection that arrives goes to the one that has waited longest.
//
// An AcceptQueue belongs to the hub it was started on and is used from that
// hub's thread only. The listener lets go of it with release(); it frees
// itself once the kernel has let go of it too and no fiber is inside take(),
// which may be after the hub has gone (the hub cancels it when destroyed).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "runtime/hub_lifeline.hpp"
#include "runtime/reactor/backend.hpp"

namespace weft::detail {

class FiberBase;
class HubCore;

class AcceptQueue final : IoCompletion {
 public:
  /// Starts accepting on `listen_fd` in `hub`'s ring; nullptr where the
  /// backend cannot (epoll, an older kernel).
  static AcceptQueue* start(HubCore& hub, int listen_fd);

  /// The next connection's fd (>= 0, close-on-exec, blocking) or -errno;
  /// waits for one behind the fibers already waiting (a suspension point: a
  /// kill or Timeout throws, and a connection it was handed but had not taken
  /// goes to the next in line, or stays queued for the next call).
  int take(HubCore& hub, FiberBase& self, const char* what);

  /// True for the hub it was started on, for good: other hubs' fibers use
  /// one-shot accepts on the listener (the queue is not thread-safe).
  bool serves(const HubCore& hub) const noexcept { return owner_ == &hub; }

  /// The listener lets go: queued connections are closed, the operation is
  /// cancelled, and every fiber waiting in take() gets -EBADF. From any
  /// thread: elsewhere than on its hub it is handed to the hub (its ring and
  /// its waiters live there), or done at once if the hub has ended. The
  /// object frees itself once neither the kernel nor a fiber inside take()
  /// holds it.
  void release() noexcept;

 private:
  // A fiber in take(), on its stack: in the line while it waits.
  struct Waiter {
    FiberBase* fiber = nullptr;
    std::uint32_t epoch = 0;
    Waiter* previous = nullptr;
    Waiter* next = nullptr;
    bool in_line = false;
    bool handed = false;  // `result` is its connection (or -errno), out of the line
    int result = 0;
  };
  class WaiterHook;

  class ReleaseOnItsHub;

  AcceptQueue(HubCore& hub, int listen_fd) noexcept;
  ~AcceptQueue();
  bool arm();
  void stop_accepting() noexcept;
  void push_back(Waiter& waiter) noexcept;
  void remove(Waiter& waiter) noexcept;
  static void wake(Waiter& waiter) noexcept;
  void wake_all() noexcept;
  /// A connection (or -errno) for the longest waiting fiber, else the queue.
  void deliver(int result, bool first) noexcept;
  void leave(Waiter& waiter) noexcept;
  void delete_if_unused() noexcept;
  /// release(), on the hub's thread or once the hub has ended.
  void release_here() noexcept;
  static void on_complete(IoCompletion* self, int result, std::uint32_t flags) noexcept;

  HubCore* owner_;                               // compared only: it may have been destroyed since
  std::shared_ptr<HubLifeline> owner_lifeline_;  // to reach the owner from other threads
  HubCore* hub_;                // the hub whose ring holds it; null once it stopped
  Backend* backend_ = nullptr;  // the ring it was armed in (alive while the kernel holds it)
  int listen_fd_;
  std::deque<int> ready_;    // accepted fds, or -errno of a failed accept; only while no one waits
  Waiter* first_ = nullptr;  // the fibers waiting, longest first
  Waiter* last_ = nullptr;
  std::size_t inside_ = 0;  // fibers inside take(): they keep the object alive
  bool armed_ = false;      // the kernel holds the operation
  bool cancel_requested_ = false;
  bool released_ = false;
};

}  // namespace weft::detail

#pragma once
// The seam between a hub and the kernel: what every event-loop backend
// (io_uring, epoll) implements. A hub calls wait() once per scheduling round;
// the backend submits everything queued during the round in one go, then
// collects completions and calls them back.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include <weft/runtime/hub.hpp>

namespace weft::detail {

/// An operation in flight. The backend calls `complete` on the hub's thread
/// with the kernel's result (-errno on failure, as liburing reports it).
struct IoCompletion {
  void (*complete)(IoCompletion* self, int result, std::uint32_t flags) noexcept = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const noexcept = 0;
  /// Submits queued work, then waits up to `timeout` (nullopt: no limit, zero:
  /// just collect) for completions or a wake-up, and dispatches completions.
  virtual void wait(std::optional<std::chrono::nanoseconds> timeout) = 0;
  /// True while user operations are in flight whose completions need polling.
  /// Not virtual: the hub asks at the end of every round.
  bool has_operations_in_flight() const noexcept { return in_flight_ != 0; }
  /// Readable when completions or wake-ups are waiting (for embedding).
  virtual int poll_fd() const noexcept = 0;

 protected:
  std::size_t in_flight_ = 0;  // operations submitted and not yet completed (or fds watched)
};

/// Makes the backend `requested` names, honouring WEFT_BACKEND and falling back
/// from io_uring to epoll (one line on stderr) when `automatic`. `wake_fd` is
/// an eventfd the backend watches and drains.
std::unique_ptr<Backend> make_backend(BackendKind requested, int wake_fd);

std::unique_ptr<Backend> make_uring_backend(int wake_fd);  // throws std::system_error
std::unique_ptr<Backend> make_epoll_backend(int wake_fd);  // throws std::system_error

}  // namespace weft::detail

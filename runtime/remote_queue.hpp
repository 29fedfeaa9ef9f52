#pragma once
// Work handed to a hub from other threads (Hub::post, and later cross-hub and
// cross-thread wake-ups). Posters append under a mutex and kick an eventfd
// only when the hub may be asleep in its backend; the hub drains the whole
// batch at once per round. The sleeping flag and the pending flag form a
// Dekker pair (both seq_cst): either the poster sees the hub asleep and kicks
// it, or the hub sees the pending work before it blocks.

#include <atomic>
#include <exception>
#include <mutex>
#include <vector>

#include <weft/runtime/detail/unique_function.hpp>

namespace weft::detail {

class RemoteQueue {
 public:
  RemoteQueue();  // throws std::system_error if no eventfd can be made
  ~RemoteQueue();
  RemoteQueue(const RemoteQueue&) = delete;
  RemoteQueue& operator=(const RemoteQueue&) = delete;

  /// Any thread. Never blocks on the hub.
  void post(UniqueFunction<void()> work);
  /// Readable when work was posted while the hub slept.
  int wake_fd() const noexcept { return wake_fd_; }
  /// A hint, exact enough for deciding whether to block.
  bool maybe_pending() const noexcept { return pending_.load(std::memory_order_seq_cst); }
  /// Hub thread: runs everything posted so far; an exception from one item
  /// goes to `on_error` and the rest still run. Returns how many ran.
  template <class OnError>
  std::size_t run_pending(OnError&& on_error) {
    if (!pending_.load(std::memory_order_acquire)) return 0;
    take_posted();
    const std::size_t count = running_.size();
    for (auto& work : running_) {
      try {
        work();
      } catch (...) {
        on_error(std::current_exception());
      }
    }
    running_.clear();
    return count;
  }
  /// Hub thread: call with true right before blocking, false after.
  void set_hub_sleeping(bool sleeping) noexcept {
    hub_sleeping_.store(sleeping, std::memory_order_seq_cst);
  }
  /// Makes a sleeping hub's backend return (any thread).
  void kick() noexcept;

 private:
  void take_posted();

  std::mutex mutex_;
  std::vector<UniqueFunction<void()>> posted_;
  std::vector<UniqueFunction<void()>> running_;
  std::atomic<bool> pending_{false};
  std::atomic<bool> hub_sleeping_{false};
  int wake_fd_;
};

}  // namespace weft::detail

#pragma once
// Work handed to a hub from other threads (Hub::post, cross-hub and
// cross-thread wake-ups, Runtime::spawn_on). Lock-free: posters push a node on
// an intrusive stack with one compare-and-swap; the hub takes the whole stack
// with one exchange per round and runs it oldest first.
//
// Sleeping. The stack's head word carries a tag bit that the hub sets (only on
// an empty stack) right before it blocks in its backend, and that any push
// clears, since the new head is a node. Both happen on the one word, so there
// is no Dekker pair to get wrong: either the poster's push comes first (the
// hub sees work and does not block) or the hub's tag does (the poster sees it
// and writes the eventfd). Exactly one poster per sleep writes the eventfd.
//
// Lifetime. Once a post is visible, the hub may run it, which may let the hub
// end (it wakes the fiber that kept it alive), and destroy the queue. The
// plain poster touches nothing after its push. The one that owes a kick must
// still write the eventfd after pushing, so it registers in `kickers_` before
// the push, and the destructor waits until no registered kicker is left.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>

#include <weft/runtime/detail/unique_function.hpp>

namespace weft::detail {

class RemoteQueue {
 public:
  RemoteQueue();  // throws std::system_error if no eventfd can be made
  /// Drops (without running) what was never taken; waits for a poster that is
  /// still writing the eventfd.
  ~RemoteQueue();
  RemoteQueue(const RemoteQueue&) = delete;
  RemoteQueue& operator=(const RemoteQueue&) = delete;

  /// Any thread. Never blocks on the hub; one allocation and one CAS, plus an
  /// eventfd write when the hub may be asleep.
  void post(UniqueFunction<void()> work);
  /// Readable when work was posted while the hub slept.
  int wake_fd() const noexcept { return wake_fd_; }
  /// A hint, exact enough for deciding whether to block.
  bool maybe_pending() const noexcept {
    return head_.load(std::memory_order_acquire) > sleeping_tag;
  }
  /// Hub thread: runs everything posted so far, oldest first; an exception
  /// from one item goes to `on_error` and the rest still run. Returns how many
  /// ran.
  template <class OnError>
  std::size_t run_pending(OnError&& on_error) {
    if (head_.load(std::memory_order_relaxed) <= sleeping_tag) return 0;
    Node* next = take_posted();
    std::size_t count = 0;
    while (next) {
      Node* node = next;
      next = node->next;
      try {
        node->work();
      } catch (...) {
        on_error(std::current_exception());
      }
      delete node;
      ++count;
    }
    return count;
  }
  /// Hub thread: call with true right before blocking, false after. Blocking
  /// is safe only if maybe_pending() is false after the call with true.
  void set_hub_sleeping(bool sleeping) noexcept {
    std::uintptr_t expected = sleeping ? 0 : sleeping_tag;
    head_.compare_exchange_strong(expected, sleeping ? sleeping_tag : 0, std::memory_order_seq_cst,
                                  std::memory_order_relaxed);
  }
  /// Makes a sleeping hub's backend return (any thread).
  void kick() noexcept;
  /// A second fd for kick() to write (a host loop's, when embedded).
  void set_extra_kick_fd(int fd) noexcept { extra_kick_fd_.store(fd, std::memory_order_release); }

 private:
  struct Node {
    Node* next;
    UniqueFunction<void()> work;
  };
  static constexpr std::uintptr_t sleeping_tag = 1;  // nodes are aligned: bit 0 is free

  /// Takes the whole stack and returns it oldest first.
  Node* take_posted() noexcept;

  std::atomic<std::uintptr_t> head_{0};  // Node* | sleeping_tag
  std::atomic<std::size_t> kickers_{0};  // posters that may still write wake_fd_
  int wake_fd_;
  std::atomic<int> extra_kick_fd_{-1};
};

}  // namespace weft::detail

#pragma once
// The hub's timers: a 4-ary min-heap of TimerNode pointers ordered by
// (deadline, sequence). Each node knows its index, so cancel is O(log n) and
// cancelled timers never linger (eventlet keeps them and compacts later).
// A 4-ary heap is shallower than a binary one and keeps a node's children in
// one cache line, which is what matters with a million pending timers.

#include <cstdint>
#include <vector>

#include <weft/runtime/detail/fiber_base.hpp>

namespace weft::detail {

class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  TimerNode* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

  /// Arms `node` for `deadline_ns`; a node that is armed already is moved.
  void arm(TimerNode* node, std::int64_t deadline_ns);
  /// Disarms `node` if it is armed.
  void disarm(TimerNode* node) noexcept;
  /// Removes and returns the earliest node if its deadline is <= now_ns.
  TimerNode* pop_due(std::int64_t now_ns) noexcept;

 private:
  static bool earlier(const TimerNode* a, const TimerNode* b) noexcept {
    return a->deadline_ns < b->deadline_ns ||
           (a->deadline_ns == b->deadline_ns && a->sequence < b->sequence);
  }
  void place(std::size_t index, TimerNode* node) noexcept {
    heap_[index] = node;
    node->heap_index = static_cast<std::uint32_t>(index);
  }
  void sift_up(std::size_t index) noexcept;
  void sift_down(std::size_t index) noexcept;
  void remove_at(std::size_t index) noexcept;

  std::vector<TimerNode*> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace weft::detail

#pragma once
// The hub's timers: a 4-ary min-heap ordered by (deadline, sequence), the
// sequence making equal deadlines fire in the order they were set. Cancel is
// O(log n), and cancelled timers never linger (eventlet keeps them and
// compacts later).
//
// Sifting never touches the nodes. They sit on as many different fiber stacks
// as there are sleepers, and each touch of one is a cache and TLB miss (on a
// VM, a walk of two page tables: ~1 us here). So an entry holds its key
// itself, and a node is found through a slot: a node keeps the number of its
// slot, written once when armed, and the dense slot array keeps each node's
// pointer and heap position, which is what a move updates. A node is touched
// when it is armed, cancelled or fired, never in between.
// 4-ary: half the depth of a binary heap, and a node's children lie together.

#include <cstdint>
#include <vector>

#include <weft/runtime/detail/fiber_base.hpp>

namespace weft::detail {

class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  /// The earliest node, or nullptr.
  TimerNode* top() const noexcept {
    return heap_.empty() ? nullptr : slots_[heap_.front().slot].node;
  }
  /// The earliest deadline; only when !empty().
  std::int64_t top_deadline() const noexcept { return heap_.front().deadline_ns; }

  /// Arms `node` for `deadline_ns`; a node that is armed already is moved.
  /// Throws std::bad_alloc (the node is then not armed).
  void arm(TimerNode* node, std::int64_t deadline_ns);
  /// Disarms `node` if it is armed.
  void disarm(TimerNode* node) noexcept {
    if (node->armed()) remove_at(slots_[node->slot].index);
  }
  /// Removes and returns the earliest node if its deadline is <= now_ns.
  TimerNode* pop_due(std::int64_t now_ns) noexcept {
    if (heap_.empty() || heap_.front().deadline_ns > now_ns) return nullptr;
    TimerNode* node = slots_[heap_.front().slot].node;
    remove_at(0);
    return node;
  }

 private:
  struct Entry {
    std::int64_t deadline_ns;
    std::uint64_t sequence;
    std::uint32_t slot;
  };
  struct Slot {
    TimerNode* node;
    std::uint32_t index;  // in heap_; the next free slot while free
  };
  static bool earlier(const Entry& a, const Entry& b) noexcept {
    return a.deadline_ns < b.deadline_ns ||
           (a.deadline_ns == b.deadline_ns && a.sequence < b.sequence);
  }
  void place(std::size_t index, const Entry& entry) noexcept {
    heap_[index] = entry;
    slots_[entry.slot].index = static_cast<std::uint32_t>(index);
  }
  void sift_up(std::size_t index, Entry entry) noexcept;
  void sift_down(std::size_t index, Entry entry) noexcept;
  void remove_at(std::size_t index) noexcept;

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::uint32_t free_slot_ = TimerNode::not_armed;  // a list through Slot::index
  std::uint64_t next_sequence_ = 0;
};

}  // namespace weft::detail

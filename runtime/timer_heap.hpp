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
//
// Arming and cancelling are inline, and the common case of each (a timer set
// later than its parent, one cancelled while it is still last, as a Timeout
// scope's is) follows no pointer it does not have to: node -> slot -> position.

#include <cstdint>
#include <vector>

#include <weft/runtime/detail/fiber_base.hpp>

namespace weft::detail {

class TimerHeap {
  static constexpr std::size_t arity = 4;

 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  /// The earliest node, or nullptr.
  TimerNode* top() const noexcept {
    return heap_.empty() ? nullptr : slots_[heap_.front().slot].node;
  }
  /// The earliest deadline; only when !empty().
  std::int64_t top_deadline() const noexcept { return heap_.front().deadline_ns; }

  /// Arms `node` for `deadline_ns`; a node that is armed already is moved, and
  /// counts as set now among equal deadlines. Throws std::bad_alloc (the node
  /// is then not armed).
  void arm(TimerNode* node, std::int64_t deadline_ns) {
    disarm(node);
    if (heap_.size() == heap_.capacity() || free_slot_ == TimerNode::not_armed) make_room();
    const std::uint32_t slot = free_slot_;
    free_slot_ = slots_[slot].index;
    slots_[slot].node = node;
    node->slot = slot;
    const Entry entry{deadline_ns, next_sequence_++, slot};
    const std::size_t index = heap_.size();
    heap_.push_back(entry);
    if (index > 0 && earlier(entry, heap_[(index - 1) / arity])) {
      sift_up(index, entry);
    } else {
      slots_[slot].index = static_cast<std::uint32_t>(index);
    }
  }
  /// Disarms `node` if it is armed.
  void disarm(TimerNode* node) noexcept {
    if (!node->armed()) return;
    const std::uint32_t slot = node->slot;
    remove(node, slot, slots_[slot].index);
  }
  /// Removes and returns the earliest node if its deadline is <= now_ns.
  TimerNode* pop_due(std::int64_t now_ns) noexcept {
    if (heap_.empty() || heap_.front().deadline_ns > now_ns) return nullptr;
    const std::uint32_t slot = heap_.front().slot;
    TimerNode* node = slots_[slot].node;
    remove(node, slot, 0);
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
  void remove(TimerNode* node, std::uint32_t slot, std::size_t index) noexcept {
    node->slot = TimerNode::not_armed;
    slots_[slot].index = free_slot_;
    free_slot_ = slot;
    if (index + 1 == heap_.size()) {
      heap_.pop_back();
    } else {
      fill_hole(index);
    }
  }
  /// Both have room for one more timer, or throw std::bad_alloc.
  void make_room();
  /// Carries `entry`, which is at `index`, up to where it belongs.
  void sift_up(std::size_t index, Entry entry) noexcept;
  /// The last entry takes the place of the removed one at `index`.
  void fill_hole(std::size_t index) noexcept;
  void sift_down(std::size_t index, Entry entry) noexcept;

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::uint32_t free_slot_ = TimerNode::not_armed;  // a list through Slot::index
  std::uint64_t next_sequence_ = 0;
};

}  // namespace weft::detail

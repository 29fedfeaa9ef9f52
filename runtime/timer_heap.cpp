#include "runtime/timer_heap.hpp"

#include <algorithm>

namespace weft::detail {

namespace {
constexpr std::size_t arity = 4;
}

void TimerHeap::arm(TimerNode* node, std::int64_t deadline_ns) {
  disarm(node);
  // Room first: nothing below may throw once the node is half armed.
  if (heap_.size() == heap_.capacity()) heap_.reserve(std::max<std::size_t>(64, 2 * heap_.size()));
  std::uint32_t slot = free_slot_;
  if (slot == TimerNode::not_armed) {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.push_back(Slot{node, 0});
  } else {
    free_slot_ = slots_[slot].index;
    slots_[slot].node = node;
  }
  node->slot = slot;
  node->deadline_ns = deadline_ns;
  node->sequence = next_sequence_++;
  heap_.push_back(Entry{deadline_ns, node->sequence, slot});
  sift_up(heap_.size() - 1, heap_.back());
}

void TimerHeap::remove_at(std::size_t index) noexcept {
  const std::uint32_t slot = heap_[index].slot;
  slots_[slot].node->slot = TimerNode::not_armed;
  slots_[slot].index = free_slot_;
  free_slot_ = slot;
  const Entry last = heap_.back();
  heap_.pop_back();
  if (index == heap_.size()) return;
  if (index > 0 && earlier(last, heap_[(index - 1) / arity])) {
    sift_up(index, last);
  } else {
    sift_down(index, last);
  }
}

// Both sifts carry `entry` down (or up) the hole at `index` and write it once,
// where it belongs.
void TimerHeap::sift_up(std::size_t index, Entry entry) noexcept {
  while (index > 0) {
    const std::size_t parent = (index - 1) / arity;
    if (!earlier(entry, heap_[parent])) break;
    place(index, heap_[parent]);
    index = parent;
  }
  place(index, entry);
}

void TimerHeap::sift_down(std::size_t index, Entry entry) noexcept {
  const std::size_t count = heap_.size();
  for (;;) {
    const std::size_t first_child = index * arity + 1;
    if (first_child >= count) break;
    std::size_t best = first_child;
    const std::size_t end = first_child + arity < count ? first_child + arity : count;
    for (std::size_t child = first_child + 1; child < end; ++child) {
      if (earlier(heap_[child], heap_[best])) best = child;
    }
    if (!earlier(heap_[best], entry)) break;
    place(index, heap_[best]);
    index = best;
  }
  place(index, entry);
}

}  // namespace weft::detail

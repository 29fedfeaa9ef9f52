#include "runtime/timer_heap.hpp"

#include <algorithm>

namespace weft::detail {

void TimerHeap::make_room() {
  if (heap_.size() == heap_.capacity()) heap_.reserve(std::max<std::size_t>(64, 2 * heap_.size()));
  if (free_slot_ == TimerNode::not_armed) {
    slots_.push_back(Slot{nullptr, TimerNode::not_armed});
    free_slot_ = static_cast<std::uint32_t>(slots_.size() - 1);
  }
}

void TimerHeap::fill_hole(std::size_t index) noexcept {
  const Entry last = heap_.back();
  heap_.pop_back();
  if (index > 0 && earlier(last, heap_[(index - 1) / arity])) {
    sift_up(index, last);
  } else {
    sift_down(index, last);
  }
}

// Both sifts carry an entry up (or down) through the hole at `index` and write
// it once, where it belongs.
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

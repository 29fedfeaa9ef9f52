#include "runtime/timer_heap.hpp"

namespace weft::detail {

namespace {
constexpr std::size_t arity = 4;
}

void TimerHeap::arm(TimerNode* node, std::int64_t deadline_ns) {
  disarm(node);
  node->deadline_ns = deadline_ns;
  node->sequence = next_sequence_++;
  heap_.push_back(node);
  node->heap_index = static_cast<std::uint32_t>(heap_.size() - 1);
  sift_up(heap_.size() - 1);
}

void TimerHeap::disarm(TimerNode* node) noexcept {
  if (node->armed()) remove_at(node->heap_index);
}

TimerNode* TimerHeap::pop_due(std::int64_t now_ns) noexcept {
  if (heap_.empty() || heap_.front()->deadline_ns > now_ns) return nullptr;
  TimerNode* node = heap_.front();
  remove_at(0);
  return node;
}

void TimerHeap::remove_at(std::size_t index) noexcept {
  TimerNode* removed = heap_[index];
  TimerNode* last = heap_.back();
  heap_.pop_back();
  removed->heap_index = TimerNode::not_armed;
  if (index == heap_.size()) return;
  place(index, last);
  if (index > 0 && earlier(last, heap_[(index - 1) / arity])) {
    sift_up(index);
  } else {
    sift_down(index);
  }
}

void TimerHeap::sift_up(std::size_t index) noexcept {
  TimerNode* node = heap_[index];
  while (index > 0) {
    std::size_t parent = (index - 1) / arity;
    if (!earlier(node, heap_[parent])) break;
    place(index, heap_[parent]);
    index = parent;
  }
  place(index, node);
}

void TimerHeap::sift_down(std::size_t index) noexcept {
  TimerNode* node = heap_[index];
  const std::size_t count = heap_.size();
  for (;;) {
    std::size_t first_child = index * arity + 1;
    if (first_child >= count) break;
    std::size_t best = first_child;
    std::size_t end = first_child + arity < count ? first_child + arity : count;
    for (std::size_t child = first_child + 1; child < end; ++child) {
      if (earlier(heap_[child], heap_[best])) best = child;
    }
    if (!earlier(heap_[best], node)) break;
    place(index, heap_[best]);
    index = best;
  }
  place(index, node);
}

}  // namespace weft::detail

#include <weft/runtime/green_pool.hpp>

#include <stdexcept>
#include <string>

namespace weft {

namespace detail {

void PoolState::acquire_slot() {
  // FIFO, no barging: a newcomer waits behind earlier spawners, and a freed
  // slot is handed to the oldest waiter rather than left for whoever runs first.
  if (free_slots() > 0 && slot_waiters_.empty()) {
    ++running_;
    return;
  }
  Waiter waiter;
  try {
    slot_waiters_.wait(waiter, "GreenPool::spawn");
  } catch (...) {
    if (waiter.notified) {  // handed a slot, then interrupted: pass it on
      --handed_off_;
      hand_off_free_slots();
    }
    throw;
  }
  --handed_off_;
  ++running_;
}

void PoolState::release_slot() noexcept {
  --running_;
  hand_off_free_slots();
  if (running_ == 0) idle_waiters_.notify_all();
}

void PoolState::hand_off_free_slots() noexcept {
  while (free_slots() > 0 && slot_waiters_.notify_one())
    ++handed_off_;
}

}  // namespace detail

namespace {

std::size_t checked_size(std::size_t size) {
  if (size == 0) {
    throw std::invalid_argument(
        "weft::GreenPool: a pool made with size 0 could never run anything");
  }
  return size;
}

}  // namespace

GreenPool::GreenPool(std::size_t size)
    : state_(std::make_shared<detail::PoolState>(checked_size(size))) {}

void GreenPool::waitall() {
  if (state_->caller_is_member()) {
    throw std::logic_error(
        "weft::GreenPool::waitall called from one of the pool's own fibers: it "
        "would wait for itself and never return");
  }
  while (state_->running_ > 0)
    state_->idle_waiters_.wait("GreenPool::waitall");
}

void GreenPool::resize(std::size_t size) {
  state_->size_ = size;
  state_->hand_off_free_slots();
}

}  // namespace weft

#include <weft/runtime/green_pool.hpp>

namespace weft {

namespace detail {

void PoolState::acquire_slot() {
  // FIFO: a newcomer does not overtake fibers already waiting for a slot.
  if (free_slots() <= 0 || !slot_waiters_.empty()) {
    try {
      do {
        slot_waiters_.wait("GreenPool::spawn");
      } while (free_slots() <= 0);
    } catch (...) {
      // Interrupted, perhaps just after being handed a slot: pass it on.
      if (free_slots() > 0) slot_waiters_.notify_one();
      throw;
    }
  }
  ++running_;
  // A slot may still be free for the next waiter (resize, several releases).
  if (free_slots() > 0) slot_waiters_.notify_one();
}

void PoolState::release_slot() noexcept {
  --running_;
  if (free_slots() > 0) slot_waiters_.notify_one();
  if (running_ == 0) idle_waiters_.notify_all();
}

}  // namespace detail

GreenPool::GreenPool(std::size_t size) : state_(std::make_shared<detail::PoolState>(size)) {}

void GreenPool::waitall() {
  if (state_->caller_is_member()) {
    throw std::logic_error("weft::GreenPool::waitall called from one of the pool's own fibers: it "
                           "would wait for itself and never return");
  }
  while (state_->running_ > 0) state_->idle_waiters_.wait("GreenPool::waitall");
}

void GreenPool::resize(std::size_t size) {
  state_->size_ = size;
  if (state_->free_slots() > 0) state_->slot_waiters_.notify_one();
}

}  // namespace weft

#include <weft/runtime/detail/event_count.hpp>

#include <algorithm>
#include <limits>

#include <weft/runtime/detail/deadline.hpp>

#include "runtime/hub_core.hpp"

namespace weft::detail {

void EventCount::notify_all() noexcept {
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  {
    SpinGuard lock(fibers_lock_);
    fibers_.unpark_all();
  }
  // A thread counts itself before it reads the epoch, and the epoch moved
  // before this read (both sequentially consistent): either it sees the new
  // epoch or it is counted here and waits under the mutex taken below.
  if (waiting_threads_.load(std::memory_order_seq_cst) != 0) {
    std::lock_guard lock(threads_mutex_);
    threads_.notify_all();
  }
}

bool EventCount::wait(Key key, std::optional<std::int64_t> deadline) {
  if (current_fiber()) return wait_as_fiber(key, deadline, true);
  return wait_as_thread(key, deadline);
}

void EventCount::wait_ignoring_interrupts(Key key) noexcept {
  if (current_fiber()) {
    // Without a deadline or interrupts the park ends only when unparked, and
    // nothing in it throws.
    wait_as_fiber(key, std::nullopt, false);
  } else {
    wait_as_thread(key, std::nullopt);
  }
}

std::optional<std::int64_t> EventCount::caller_deadline(
    std::optional<std::chrono::nanoseconds> timeout) noexcept {
  if (!timeout) return std::nullopt;
  if (current_fiber()) return deadline_after(*timeout);
  const std::int64_t now = HubCore::steady_now_ns();
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  if (timeout->count() <= 0) return now;
  return timeout->count() > max - now ? max : now + timeout->count();
}

bool EventCount::wait_as_fiber(Key key, std::optional<std::int64_t> deadline, bool interruptible) {
  SpinGuard lock(fibers_lock_);
  if (epoch_.load(std::memory_order_seq_cst) != key) return true;
  Parked record;
  if (!interruptible) {
    fibers_.park_ignoring_interrupts(lock, record, "weft wait (in a destructor)");
    return true;
  }
  return fibers_.park_settled(lock, record, "weft wait", deadline, KeepWhatWasHanded{});
}

bool EventCount::wait_as_thread(Key key, std::optional<std::int64_t> deadline) noexcept {
  using Clock = std::chrono::steady_clock;
  // As for fibers: poll briefly before sleeping (bounded by the deadline).
  constexpr std::int64_t spin_ns = 50'000;
  const std::int64_t spin_until =
      std::min(HubCore::steady_now_ns() + spin_ns,
               deadline.value_or(std::numeric_limits<std::int64_t>::max()));
  for (unsigned i = 1; epoch_.load(std::memory_order_acquire) == key; ++i) {
    spin_pause();
    if (i % 64 == 0 && HubCore::steady_now_ns() >= spin_until) break;
  }
  if (epoch_.load(std::memory_order_acquire) != key) return true;
  waiting_threads_.fetch_add(1, std::memory_order_seq_cst);
  bool notified = true;
  {
    std::unique_lock lock(threads_mutex_);
    while (epoch_.load(std::memory_order_seq_cst) == key) {
      if (!deadline) {
        threads_.wait(lock);
        continue;
      }
      const Clock::time_point until{std::chrono::nanoseconds(*deadline)};
      if (threads_.wait_until(lock, until) == std::cv_status::timeout &&
          epoch_.load(std::memory_order_seq_cst) == key) {
        notified = false;
        break;
      }
    }
  }
  waiting_threads_.fetch_sub(1, std::memory_order_seq_cst);
  return notified;
}

}  // namespace weft::detail

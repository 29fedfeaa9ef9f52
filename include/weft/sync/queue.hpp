#pragma once
/// Queue<T> (FIFO), LifoQueue<T> and PriorityQueue<T, Compare> (smallest
/// first): eventlet's queues, with FIFO order among waiting getters and
/// putters. maxsize 0 means unbounded; a rendezvous is Channel<T>.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include <weft/runtime/detail/parking.hpp>

namespace weft {

namespace detail {

template <class T>
struct FifoItems {
  std::deque<T> items;
  void push(T&& item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.front());
    items.pop_front();
    return item;
  }
  /// An item a getter was handed but could not keep goes back where it was.
  void push_back_taken(T&& item) { items.push_front(std::move(item)); }
  std::size_t size() const noexcept { return items.size(); }
};

template <class T>
struct LifoItems {
  std::vector<T> items;
  void push(T&& item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
  void push_back_taken(T&& item) { items.push_back(std::move(item)); }
  std::size_t size() const noexcept { return items.size(); }
};

template <class T, class Compare>
struct PriorityItems {
  std::vector<T> items;
  Compare less;
  // std heaps put the largest first; the queue hands out the smallest.
  bool after(const T& a, const T& b) const { return less(b, a); }
  void push(T&& item) {
    items.push_back(std::move(item));
    std::push_heap(items.begin(), items.end(),
                   [this](const T& a, const T& b) { return after(a, b); });
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(),
                  [this](const T& a, const T& b) { return after(a, b); });
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
  void push_back_taken(T&& item) { push(std::move(item)); }
  std::size_t size() const noexcept { return items.size(); }
};

/// The queue machinery, over a policy for the order items come out in.
///
/// Hand-offs. A put with a getter waiting gives the item straight to the
/// oldest getter. A get that makes room grants the slot to the oldest waiting
/// putter (counted in `reserved_` until that putter resumes and stores its
/// item), so no newcomer can take it first. A getter that a kill or Timeout
/// reaches after it was handed an item puts the item back (to the next getter
/// if there is one); a putter reached after it was granted a slot passes the
/// slot on. No item is ever lost to a fiber that did not return it.
template <class T, class Items>
class QueueCore {
 public:
  explicit QueueCore(std::size_t maxsize) : maxsize_(maxsize) {}
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  /// Adds an item, waiting (a suspension point) while the queue is full.
  /// From a fiber when the queue is bounded; on an unbounded queue it never
  /// waits and any thread may call it.
  void put(T item) { put_until(std::move(item), std::nullopt, "Queue::put"); }
  /// Adds an item if there is room now; never suspends. Any thread.
  bool try_put(T item) {
    SpinGuard lock(lock_);
    if (!has_room()) return false;
    store(std::move(item));
    return true;
  }
  /// As put, giving up after `timeout` (false: the item was not added).
  template <class Rep, class Period>
  bool put_for(T item, std::chrono::duration<Rep, Period> timeout) {
    if (timeout <= timeout.zero()) return try_put(std::move(item));
    return put_until(std::move(item), deadline_after(timeout), "Queue::put_for");
  }

  /// Takes an item, waiting (a suspension point) while the queue is empty.
  /// From a fiber.
  T get() { return *get_until(std::nullopt, "Queue::get"); }
  /// Takes an item if there is one; never suspends. Any thread.
  std::optional<T> try_get() {
    SpinGuard lock(lock_);
    if (items_.size() == 0) return std::nullopt;
    return take();
  }
  /// As get, giving up after `timeout` (empty optional).
  template <class Rep, class Period>
  std::optional<T> get_for(std::chrono::duration<Rep, Period> timeout) {
    if (timeout <= timeout.zero()) return try_get();
    return get_until(deadline_after(timeout), "Queue::get_for");
  }

  std::size_t size() const {
    SpinGuard lock(lock_);
    return items_.size();
  }
  bool empty() const { return size() == 0; }
  bool full() const {
    SpinGuard lock(lock_);
    return maxsize_ != 0 && items_.size() + reserved_ >= maxsize_;
  }
  /// 0: unbounded.
  std::size_t maxsize() const {
    SpinGuard lock(lock_);
    return maxsize_;
  }
  /// Changes the bound (0: unbounded). Growing wakes waiting putters;
  /// shrinking keeps the items already queued.
  void resize(std::size_t maxsize) {
    SpinGuard lock(lock_);
    maxsize_ = maxsize;
    grant_free_slots();
  }
  /// Fibers waiting in get / in put.
  std::size_t getting() const {
    SpinGuard lock(lock_);
    return getters_.size();
  }
  std::size_t putting() const {
    SpinGuard lock(lock_);
    return putters_.size();
  }

 private:
  struct Getter : Parked {
    std::optional<T> item;
  };

  bool has_room() const noexcept {
    return putters_.empty() && (maxsize_ == 0 || items_.size() + reserved_ < maxsize_);
  }

  // With the lock held and room checked: to the oldest getter, or queued.
  void store(T&& item) {
    if (auto* getter = static_cast<Getter*>(getters_.front())) {
      getter->item.emplace(std::move(item));
      getters_.unpark_one();
    } else {
      items_.push(std::move(item));
    }
  }

  T take() {
    T item = items_.pop();
    grant_free_slots();
    return item;
  }

  void grant_free_slots() noexcept {
    while (!putters_.empty() && (maxsize_ == 0 || items_.size() + reserved_ < maxsize_)) {
      ++reserved_;
      putters_.unpark_one();
    }
  }

  bool put_until(T&& item, std::optional<std::int64_t> deadline_ns, const char* reason) {
    if (maxsize_ != 0) require_fiber(reason);  // unbounded: never waits, any thread
    SpinGuard lock(lock_);
    if (has_room()) {
      store(std::move(item));
      return true;
    }
    Parked putter;
    const bool granted = putters_.park_settled(lock, putter, reason, deadline_ns, [&] {
      --reserved_;
      grant_free_slots();  // the slot goes to the next putter
    });
    if (!granted) return false;
    lock.lock();
    --reserved_;
    store(std::move(item));
    grant_free_slots();  // handed straight to a getter: the slot is free again
    return true;
  }

  std::optional<T> get_until(std::optional<std::int64_t> deadline_ns, const char* reason) {
    require_fiber(reason);
    SpinGuard lock(lock_);
    if (items_.size() != 0) return take();
    Getter getter;
    if (!getters_.park_settled(lock, getter, reason, deadline_ns,
                               [&] { give_back(std::move(*getter.item)); })) {
      return std::nullopt;
    }
    return std::move(getter.item);
  }

  void give_back(T&& item) {
    if (auto* getter = static_cast<Getter*>(getters_.front())) {
      getter->item.emplace(std::move(item));
      getters_.unpark_one();
    } else {
      items_.push_back_taken(std::move(item));
    }
  }

  mutable SpinLock lock_;
  Items items_;
  std::size_t maxsize_;
  std::size_t reserved_ = 0;  // slots granted to putters that have not stored yet
  ParkingLot getters_;
  ParkingLot putters_;
};

}  // namespace detail

/// First in, first out. `maxsize` 0: unbounded. get() waits while empty,
/// put() while full; both are suspension points, served oldest first.
/// try_put, try_get, size and the unbounded put work from any fiber of any
/// hub or from a plain OS thread.
template <class T>
class Queue : public detail::QueueCore<T, detail::FifoItems<T>> {
 public:
  explicit Queue(std::size_t maxsize = 0) : detail::QueueCore<T, detail::FifoItems<T>>(maxsize) {}
};

/// Last in, first out; otherwise as Queue.
template <class T>
class LifoQueue : public detail::QueueCore<T, detail::LifoItems<T>> {
 public:
  explicit LifoQueue(std::size_t maxsize = 0)
      : detail::QueueCore<T, detail::LifoItems<T>>(maxsize) {}
};

/// Smallest first by `Compare` (as Python's PriorityQueue); otherwise as Queue.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::QueueCore<T, detail::PriorityItems<T, Compare>> {
 public:
  explicit PriorityQueue(std::size_t maxsize = 0)
      : detail::QueueCore<T, detail::PriorityItems<T, Compare>>(maxsize) {}
};

}  // namespace weft

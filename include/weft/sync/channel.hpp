#pragma once
/// Channel<T>: a rendezvous. put() waits until a get() takes the item
/// (eventlet's Queue(0)).

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include <weft/runtime/detail/parking.hpp>

namespace weft {

/// No buffer: an item passes straight from a putter to a getter. put() waits
/// (a suspension point) until a getter takes its item, get() until a putter
/// offers one; both are served oldest first. Once an item has changed hands
/// neither side can take it back: a kill or Timeout that reaches the putter
/// or getter after that is thrown at its next suspension point instead, so
/// put returns (the item was delivered) and get returns the item. try_put and
/// try_get (only with a partner already waiting) work from any thread.
template <class T>
class Channel {
 public:
  Channel() = default;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Waits until a getter takes `item`. From a fiber.
  void put(T item) { put_until(item, std::nullopt, "Channel::put"); }
  /// As put, giving up after `timeout` (false: nobody took it).
  template <class Rep, class Period>
  bool put_for(T item, std::chrono::duration<Rep, Period> timeout) {
    return put_until(item, detail::deadline_after(timeout), "Channel::put_for");
  }
  /// Gives `item` to a getter that is already waiting; false if none is.
  bool try_put(T item) {
    detail::SpinGuard lock(lock_);
    return hand_to_getter(item);
  }

  /// Waits until a putter offers an item. From a fiber.
  T get() { return *get_until(std::nullopt, "Channel::get"); }
  template <class Rep, class Period>
  std::optional<T> get_for(std::chrono::duration<Rep, Period> timeout) {
    return get_until(detail::deadline_after(timeout), "Channel::get_for");
  }
  /// Takes the item of a putter that is already waiting, if there is one.
  std::optional<T> try_get() {
    detail::SpinGuard lock(lock_);
    return take_from_putter();
  }

  /// Fibers waiting in get / in put.
  std::size_t getting() const {
    detail::SpinGuard lock(lock_);
    return getters_.size();
  }
  std::size_t putting() const {
    detail::SpinGuard lock(lock_);
    return putters_.size();
  }

 private:
  struct Getter : detail::Parked {
    std::optional<T> item;
  };
  struct Putter : detail::Parked {
    T* item = nullptr;
  };

  bool hand_to_getter(T& item) {
    auto* getter = static_cast<Getter*>(getters_.front());
    if (!getter) return false;
    getter->item.emplace(std::move(item));
    getters_.unpark_one();
    return true;
  }

  std::optional<T> take_from_putter() {
    auto* putter = static_cast<Putter*>(putters_.front());
    if (!putter) return std::nullopt;
    std::optional<T> item(std::move(*putter->item));
    putters_.unpark_one();
    return item;
  }

  bool put_until(T& item, std::optional<std::int64_t> deadline_ns, const char* reason) {
    detail::require_fiber(reason);
    detail::SpinGuard lock(lock_);
    if (hand_to_getter(item)) return true;
    Putter putter;
    putter.item = &item;
    // Delivered is delivered: an interrupt that came too waits.
    return putters_.park_settled(lock, putter, reason, deadline_ns, detail::KeepWhatWasHanded{});
  }

  std::optional<T> get_until(std::optional<std::int64_t> deadline_ns, const char* reason) {
    detail::require_fiber(reason);
    detail::SpinGuard lock(lock_);
    if (auto item = take_from_putter()) return item;
    Getter getter;
    // The item is ours once handed over: an interrupt that came too waits.
    if (!getters_.park_settled(lock, getter, reason, deadline_ns, detail::KeepWhatWasHanded{})) {
      return std::nullopt;
    }
    return std::move(getter.item);
  }

  mutable detail::SpinLock lock_;
  detail::ParkingLot getters_;
  detail::ParkingLot putters_;
};

}  // namespace weft

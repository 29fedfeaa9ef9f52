#pragma once
/// FiberLocal<T>: a value per fiber, as thread_local is a value per thread.
///
///     weft::FiberLocal<std::string> request_id;
///     weft::spawn([&] { *request_id = "r-17"; handle(); });  // handle() reads *request_id
///
/// - `get()` (or `*`, `->`) in a fiber gives that fiber's own value, made on
///   its first use there: value-initialized (`T()`), or `make()` for a
///   FiberLocal made with a factory. No fiber sees another's value.
/// - A fiber's values are destroyed on its hub's thread when it ends: after
///   its callable has returned or thrown (also when it was killed) and its
///   arguments are gone, newest first, and before `wait()` returns to anyone
///   waiting for it. Values that its link callbacks make are destroyed after
///   those have run. A fiber killed before it started has no values: `make()`
///   never runs for it.
/// - Outside fibers, on any thread (a plain thread, a to_thread worker, a hub's
///   thread outside its fibers: in a `Hub::post` closure or a link callback
///   run by the loop), `get()` gives that thread's own value, destroyed when
///   the thread exits. It never throws NoHubError: code that runs both in and
///   outside fibers (a logger's context, a cache) works unchanged.
/// - Destroying a FiberLocal while fibers still hold values is safe and
///   leaks nothing: each value is still destroyed on its own fiber's thread,
///   when that fiber ends (or when it stores a value for a newer FiberLocal
///   that reuses the slot). A thread's values are destroyed when it exits.
/// - Cost: a fiber that uses no FiberLocal pays nothing (its storage is made on
///   first use). `get()` is a call to find the fiber and an indexed load; it
///   takes no lock. Making or destroying a FiberLocal takes a global mutex.
///
/// One FiberLocal may be used by fibers of any number of hubs at once; `make`
/// may then run on several threads at once. A value's destructor runs in the
/// ending fiber and must not suspend (as a link callback must not).

#include <concepts>
#include <functional>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/runtime/detail/local_storage.hpp>

namespace weft {

template <class T>
class FiberLocal {
  static_assert(std::is_object_v<T> && !std::is_array_v<T>,
                "weft::FiberLocal holds an object: use a pointer or std::array for others");

 public:
  using value_type = T;

  /// Each fiber's value starts as `T()`.
  FiberLocal() requires std::default_initializable<T> : slot_(detail::acquire_local_slot()) {}

  /// Each fiber's value starts as `make()`, called in that fiber at its first
  /// use. Throws std::invalid_argument if `make` is empty.
  explicit FiberLocal(std::function<T()> make) : make_(std::move(make)) {
    if (!make_) throw std::invalid_argument("weft::FiberLocal: empty factory");
    slot_ = detail::acquire_local_slot();
  }

  ~FiberLocal() { detail::release_local_slot(slot_); }
  FiberLocal(const FiberLocal&) = delete;
  FiberLocal& operator=(const FiberLocal&) = delete;

  /// The calling fiber's value (the calling thread's outside fibers), made
  /// now if it has none. Throws what making it threw (nothing is stored then).
  T& get() {
    detail::LocalStorage& storage = detail::current_local_storage();
    if (void* value = storage.find(slot_)) [[likely]]
      return *static_cast<T*>(value);
    return make_value(storage);
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

  /// Does the calling fiber (or thread) hold a value? Makes none.
  bool has_value() const noexcept {
    const detail::LocalStorage* storage = detail::current_local_storage_if_any();
    return storage && storage->find(slot_);
  }

  /// Destroys the calling fiber's (or thread's) value, if any; the next get()
  /// makes a new one.
  void reset() noexcept {
    if (detail::LocalStorage* storage = detail::current_local_storage_if_any())
      storage->erase(slot_);
  }

 private:
  T& make_value(detail::LocalStorage& storage) {
    // `new T(make_())` builds the value in place: T need not be movable.
    std::unique_ptr<T> value;
    if constexpr (std::default_initializable<T>) {
      value.reset(make_ ? new T(make_()) : new T());
    } else {
      value.reset(new T(make_()));
    }
    storage.install(slot_, value.get(), &destroy);
    return *value.release();
  }

  static void destroy(void* value) noexcept { delete static_cast<T*>(value); }

  std::function<T()> make_;
  detail::LocalSlot slot_;
};

}  // namespace weft

#pragma once
/// The storage behind weft::FiberLocal (fiber_local.hpp). Not part of the
/// public contract.
///
/// Every FiberLocal owns a slot: a small index, reused once the FiberLocal is
/// gone, and a generation that is never reused. Each fiber (and each thread,
/// for code outside fibers) has a LocalStorage: a vector of values indexed by
/// slot, each tagged with the generation that made it. A value whose
/// generation is not its slot's current one belongs to a FiberLocal that has
/// been destroyed: lookups skip it, and it is destroyed when its fiber ends or
/// when a new FiberLocal in the same slot stores a value there, always on the
/// fiber's own thread. So a FiberLocal never has to reach into other fibers'
/// storage (on other hubs' threads), and lookups take no lock.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft::detail {

struct LocalSlot {
  std::uint32_t index;
  std::uint64_t generation;  // never 0: 0 marks an empty entry
};

/// A slot for a new FiberLocal. Any thread.
LocalSlot acquire_local_slot();
/// Gives the index back for reuse by a later FiberLocal. Any thread.
void release_local_slot(LocalSlot slot) noexcept;

/// The values of one fiber (or thread), one per slot.
class LocalStorage {
 public:
  LocalStorage() noexcept = default;
  ~LocalStorage() { clear(); }
  LocalStorage(const LocalStorage&) = delete;
  LocalStorage& operator=(const LocalStorage&) = delete;

  /// The value stored for `slot`, or nullptr.
  void* find(LocalSlot slot) const noexcept {
    if (slot.index >= entries_.size()) return nullptr;
    const Entry& entry = entries_[slot.index];
    return entry.generation == slot.generation ? entry.value : nullptr;
  }

  /// Stores `value` for `slot`, which has none, and takes ownership of it
  /// only once it returns (it throws std::bad_alloc before storing anything).
  /// A value left in the same index by a FiberLocal that has gone is
  /// destroyed now.
  void install(LocalSlot slot, void* value, void (*destroy)(void*) noexcept);
  /// Destroys the value stored for `slot`, if there is one.
  void erase(LocalSlot slot) noexcept;
  /// Destroys every value, newest first (as thread_local objects are), until
  /// none is left: a destructor may make new values, which go too.
  void clear() noexcept;

 private:
  struct Entry {
    std::uint64_t generation = 0;
    void* value = nullptr;
    void (*destroy)(void*) noexcept = nullptr;
    std::uint64_t made = 0;  // creation order, for clear()
  };

  /// Empties entry `index` first, then destroys what it held: a destructor
  /// that uses FiberLocals finds a consistent storage.
  void destroy_entry(std::size_t index) noexcept;

  std::vector<Entry> entries_;
  std::uint64_t made_ = 0;
  std::size_t live_ = 0;
};

/// The calling fiber's storage (made on first use), or the calling thread's
/// outside fibers (on a hub's thread too: its loop is not a fiber).
LocalStorage& current_local_storage();
/// As current_local_storage, but nullptr where a fiber has none yet.
LocalStorage* current_local_storage_if_any() noexcept;

}  // namespace weft::detail

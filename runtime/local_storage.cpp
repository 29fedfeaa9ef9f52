// FiberLocal's slots and per-fiber storage: see local_storage.hpp.

#include <weft/runtime/detail/local_storage.hpp>

#include <limits>
#include <mutex>
#include <stdexcept>

#include "runtime/hub_core.hpp"

namespace weft::detail {

namespace {

struct SlotRegistry {
  std::mutex mutex;
  std::vector<std::uint32_t> free_indices;
  std::uint32_t next_index = 0;
  std::uint64_t next_generation = 1;
};

SlotRegistry& slot_registry() {
  // Never destroyed: a FiberLocal with static storage duration may be
  // destroyed after anything else at exit and still give its slot back.
  static SlotRegistry* registry = new SlotRegistry;
  return *registry;
}

}  // namespace

LocalSlot acquire_local_slot() {
  SlotRegistry& registry = slot_registry();
  std::lock_guard lock(registry.mutex);
  LocalSlot slot{0, registry.next_generation++};
  if (!registry.free_indices.empty()) {
    // The most recently freed index: fibers that held a value there find it
    // stale and destroy it when they store one for the new FiberLocal.
    slot.index = registry.free_indices.back();
    registry.free_indices.pop_back();
  } else {
    if (registry.next_index == std::numeric_limits<std::uint32_t>::max())
      throw std::length_error("weft::FiberLocal: too many at once");
    slot.index = registry.next_index++;
  }
  return slot;
}

void release_local_slot(LocalSlot slot) noexcept {
  SlotRegistry& registry = slot_registry();
  std::lock_guard lock(registry.mutex);
  try {
    registry.free_indices.push_back(slot.index);
  } catch (...) {
    // No memory to remember it: the index is simply never reused.
  }
}

void LocalStorage::install(LocalSlot slot, void* value, void (*destroy)(void*) noexcept) {
  if (slot.index >= entries_.size()) entries_.resize(std::size_t{slot.index} + 1);  // may throw
  const bool stale = entries_[slot.index].value != nullptr;
  Entry old = entries_[slot.index];
  entries_[slot.index] = Entry{slot.generation, value, destroy, ++made_};
  if (!stale) {
    ++live_;
    return;
  }
  // A value of a FiberLocal that has gone; its destructor runs after the new
  // value is in place, so it may use this FiberLocal too.
  old.destroy(old.value);
}

void LocalStorage::erase(LocalSlot slot) noexcept {
  if (find(slot)) destroy_entry(slot.index);
}

void LocalStorage::destroy_entry(std::size_t index) noexcept {
  const Entry old = entries_[index];
  entries_[index] = Entry{};
  --live_;
  old.destroy(old.value);
}

void LocalStorage::clear() noexcept {
  // A fiber uses a handful of FiberLocals: a scan per value is cheaper than
  // keeping an order that reset() and slot reuse would have to maintain.
  while (live_ != 0) {
    std::size_t newest = 0;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].value &&
          (!entries_[newest].value || entries_[i].made > entries_[newest].made))
        newest = i;
    }
    destroy_entry(newest);
  }
}

void FiberBase::destroy_local_storage() noexcept {
  // Values may be made while others are destroyed (a destructor that logs
  // through a FiberLocal): they land in this same storage, and clear() runs
  // until it is empty. Only then does the storage go.
  locals_->clear();
  delete locals_;
  locals_ = nullptr;
}

namespace {

LocalStorage& thread_storage() noexcept {
  // Destroyed when the thread exits, values newest first.
  thread_local LocalStorage storage;
  return storage;
}

}  // namespace

LocalStorage& current_local_storage() {
  FiberBase* fiber = current_fiber();
  if (!fiber) return thread_storage();
  LocalStorage*& storage = FiberAccess::locals(*fiber);
  if (!storage) storage = new LocalStorage;
  return *storage;
}

LocalStorage* current_local_storage_if_any() noexcept {
  FiberBase* fiber = current_fiber();
  return fiber ? FiberAccess::locals(*fiber) : &thread_storage();
}

}  // namespace weft::detail

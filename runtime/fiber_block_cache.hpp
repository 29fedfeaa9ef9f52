#pragma once
// The memory of ended fibers, kept by their hub for the next ones.
//
// A fiber's control block (its scheduling state, callable and result: ~270
// bytes) comes from malloc. A burst of a million fibers ends by freeing a
// million blocks; glibc then coalesces them and gives the top of its heap back
// to the kernel, and the next burst faults every page in again (on a VM, ~12 us
// a page: most of a warm skynet round here). Go keeps its ended goroutines on a
// free list for the same reason.
//
// So a hub keeps the blocks of fibers that end on its thread, one LIFO list per
// size class (up to ~1 KiB; larger blocks are not kept), and
// spawns take from them first: the most recently freed block, still in cache.
// The blocks are plain malloc memory, so any thread may free one, and a hub may
// keep a block another hub's thread allocated.
//
// What a burst leaves behind is given back when the hub goes idle, a bounded
// number of blocks at a time, as with idle stacks.
//
// A hub may also be handed blocks it never uses: another hub's fibers whose
// last reference is dropped here (a GreenThread waited on across hubs). On a
// hub that never goes idle they would pile up for ever. So a hub keeps no more
// blocks than the most fibers it has had alive at once, plus kept_beyond_peak,
// and the rest go back to the heap. A spawn takes a kept block before it
// mallocs a new one, so its own fibers' blocks fit, except those of ended
// fibers whose handles outlive many newer spawns (beyond kept_beyond_peak of
// them): those are freed, not kept.

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>

#include "runtime/switch_annotations.hpp"

namespace weft::detail {

class FiberBlockCache {
 public:
  /// Under a sanitizer every fiber's memory goes back to the heap at once: a
  /// kept block would hide from ASan a use after the fiber was freed.
  static constexpr bool enabled = !built_with_asan && !built_with_tsan;

  // Classes in glibc's chunk steps: 16 bytes, of which malloc's header takes
  // 8, so rounding a request up to its class costs no memory.
  static constexpr std::size_t granule = 16;
  static constexpr std::size_t classes = 64;
  static constexpr std::size_t largest = (classes - 1) * granule + 8;
  /// Blocks kept beyond the peak of live fibers (others' fibers' blocks).
  static constexpr std::size_t kept_beyond_peak = 1024;

  FiberBlockCache() = default;
  ~FiberBlockCache();
  FiberBlockCache(const FiberBlockCache&) = delete;
  FiberBlockCache& operator=(const FiberBlockCache&) = delete;

  /// What to allocate for `size` so that the block can be kept: its class size.
  static std::size_t block_size(std::size_t size) noexcept {
    return size <= largest ? class_of(size) * granule + 8 : size;
  }
  /// A kept block of `size`'s class, or nullptr.
  void* take(std::size_t size) noexcept {
    if (size > largest) return nullptr;
    List& list = lists_[class_of(size)];
    FreeBlock* block = list.head;
    if (!block) return nullptr;
    list.head = block->next;
    --list.count;
    --kept_;
    return block;
  }
  /// The hub has `live` fibers now: the peak that bounds what it keeps.
  void note_live(std::size_t live) noexcept {
    if (live > peak_live_) [[unlikely]]
      peak_live_ = live;
  }
  /// Keeps `block` (allocated with block_size(size) bytes); false when it is
  /// too large to keep or the cache is full, and the caller frees it.
  bool keep(void* block, std::size_t size) noexcept {
    if (size > largest || kept_ >= peak_live_ + kept_beyond_peak) return false;
    List& list = lists_[class_of(size)];
    list.head = new (block) FreeBlock{list.head};
    ++list.count;
    ++kept_;
    return true;
  }
  /// Frees all but the `keep` most recently kept blocks of each class, at most
  /// `budget` blocks in all.
  void trim(std::size_t keep, std::size_t budget) noexcept;
  /// Blocks kept now.
  std::size_t kept() const noexcept { return kept_; }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  struct List {
    FreeBlock* head = nullptr;
    std::size_t count = 0;
  };
  static std::size_t class_of(std::size_t size) noexcept { return (size + 7) / granule; }

  std::array<List, classes> lists_{};
  std::size_t kept_ = 0;       // the sum of the lists' counts
  std::size_t peak_live_ = 0;  // the most fibers the hub has had alive at once
};

}  // namespace weft::detail

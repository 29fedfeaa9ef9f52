#pragma once
// Heap pages for a burst of spawns, faulted in one ahead.
//
// A spawn that finds no kept block (fiber_block_cache.hpp) mallocs one, and in
// a burst each new heap page is first written by malloc itself, when it puts
// the header of the free chunk after a block there. A fault taken that way
// costs ~15 us on a VM; populated just before (page_populate.hpp) it costs
// 10-12: a fresh hub's first 100k spawn+join went from 1,260 to 1,035 ns.
//
// Only the heap below the program break is populated, between where the
// break was when the hub was made and where it is now: that is private
// anonymous memory whoever holds it, so populating it changes no byte. A page
// anywhere else could be anyone's mapping, a shared file's too. So this helps
// a hub on the thread that allocates from glibc's main heap (weft::run on the
// main thread); a Runtime's hubs run on threads of their own, whose blocks
// come from malloc arenas mapped elsewhere, and fault their pages one by one.

#include <cstddef>
#include <cstdint>

namespace weft::detail {

class HeapPrefault {
 public:
  HeapPrefault() noexcept;
  HeapPrefault(const HeapPrefault&) = delete;
  HeapPrefault& operator=(const HeapPrefault&) = delete;

  /// Called with a block just malloc'd, `bytes` long (the size asked for):
  /// populates the page after the one the block's successor header is in,
  /// once, if that page lies in the heap grown since construction.
  void after_new_block(void* block, std::size_t bytes) noexcept;

 private:
  std::uintptr_t floor_;    // the program break when the hub was made
  std::uintptr_t end_ = 0;  // pages below it were populated (or not fresh)
};

}  // namespace weft::detail

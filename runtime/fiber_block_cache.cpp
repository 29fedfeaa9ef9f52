#include "runtime/fiber_block_cache.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <new>

namespace weft::detail {

FiberBlockCache::FiberBlockCache() noexcept
    : heap_floor_(reinterpret_cast<std::uintptr_t>(::sbrk(0))) {}

FiberBlockCache::~FiberBlockCache() {
  trim(0, static_cast<std::size_t>(-1));
}

void FiberBlockCache::fault_in_ahead(void* block, std::size_t bytes) noexcept {
  static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(block);
  // malloc has already written the page the block ends in (the header of the
  // free chunk after it): the next page is the one later blocks will fill.
  // One page at a time, as the stack pool does: it is written before the page
  // after it is populated (measured here: pages populated together, before
  // any of them is written, are slow to touch again later).
  const std::uintptr_t next = ((start + bytes) & ~(page - 1)) + page;
  // Only inside the heap, between where the program break was when this
  // cache was made and where it is now: private anonymous memory whatever
  // holds it, so populating it changes no byte. (A page outside could be
  // anyone's mapping, a shared file's too. Blocks of other threads' malloc
  // arenas, mapped elsewhere, are left to fault one by one.) A heap that
  // shrank gave its pages back: they are fresh again.
  const auto program_break = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  faulted_in_end_ = std::max(std::min(faulted_in_end_, program_break), heap_floor_);
  if (next + page <= faulted_in_end_) return;
  if (start < heap_floor_ || next + page > program_break) return;
  ::madvise(reinterpret_cast<void*>(next), page, 23 /* MADV_POPULATE_WRITE, Linux 5.14 */);
  faulted_in_end_ = next + page;
}

void FiberBlockCache::trim(std::size_t keep, std::size_t budget) noexcept {
  for (List& list : lists_) {
    if (list.count <= keep) continue;
    // The most recently kept blocks are at the head: skip them, free the rest.
    FreeBlock** link = &list.head;
    for (std::size_t i = 0; i < keep; ++i)
      link = &(*link)->next;
    while (*link && budget > 0) {
      FreeBlock* block = *link;
      *link = block->next;
      ::operator delete(block);
      --list.count;
      --kept_;
      --budget;
    }
    if (budget == 0) return;
  }
}

}  // namespace weft::detail

#include "runtime/fiber_block_cache.hpp"

#include <new>

namespace weft::detail {

FiberBlockCache::~FiberBlockCache() {
  trim(0, static_cast<std::size_t>(-1));
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

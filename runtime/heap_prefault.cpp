#include "runtime/heap_prefault.hpp"

#include <unistd.h>

#include <algorithm>

#include "runtime/page_populate.hpp"

namespace weft::detail {

namespace {

std::uintptr_t program_break() noexcept {
  // glibc answers sbrk(0) from its cached break, without a system call. Read
  // while another thread moves the break, it is stale: too low only skips a
  // page; too high, past a heap that just shrank, the populate finds nothing
  // mapped there (a mapping made there in between is the one case left).
  return reinterpret_cast<std::uintptr_t>(::sbrk(0));
}

}  // namespace

HeapPrefault::HeapPrefault() noexcept : floor_(program_break()) {}

void HeapPrefault::after_new_block(void* block, std::size_t bytes) noexcept {
  const std::uintptr_t page = page_size();
  // malloc wrote the size of the free chunk after the block at block + bytes:
  // that page is faulted in already, the next is the one later blocks fill.
  const std::uintptr_t next =
      ((reinterpret_cast<std::uintptr_t>(block) + bytes) & ~(page - 1)) + page;
  const std::uintptr_t heap_end = program_break();
  // A heap that shrank below end_ gave those pages back: fresh again. (Shrunk
  // and grown back between two calls, they are missed: a lost saving only.)
  end_ = std::max(std::min(end_, heap_end), floor_);
  if (next < end_ || next + page > heap_end) return;
  populate_for_write(reinterpret_cast<void*>(next), page);
  end_ = next + page;
}

}  // namespace weft::detail

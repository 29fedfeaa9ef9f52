#pragma once
// Faulting fresh anonymous pages in before their first write.
//
// On a VM whose guest page tables the host shadows (Firecracker under PVM,
// where weft is measured), the first write to a fresh page costs ~15 us: a
// guest page fault, then a shadow fault. MADV_POPULATE_WRITE (Linux 5.14) does
// the guest's part inside one system call for ~0.5 us, and a write that
// follows at once costs the shadow fault alone, ~8.5 us: 10-12 us in all.
//
// One page at a time, each written before the next is populated: pages
// populated together, before any of them is written, now and then cost a
// fault's price again on their next touch (16 at a time: once in 4 runs; 64:
// every run), and that next touch is what waking parked fibers is made of.
// See StackPool::prepare_slab for the figures.

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>

namespace weft::detail {

constexpr int madv_populate_write = 23;  // MADV_POPULATE_WRITE, Linux 5.14

inline std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

/// Populates [start, start + bytes) for writing, if the kernel can; a kernel
/// that cannot is asked once. Changes no byte there, whoever owns it, and
/// leaves errno as it was (callers sit in operator new and noexcept paths).
inline void populate_for_write(void* start, std::size_t bytes) noexcept {
  static std::atomic<bool> unsupported{false};
  if (unsupported.load(std::memory_order_relaxed)) return;
  const int saved_errno = errno;
  if (::madvise(start, bytes, madv_populate_write) != 0 && errno == EINVAL)
    unsupported.store(true, std::memory_order_relaxed);
  errno = saved_errno;
}

}  // namespace weft::detail

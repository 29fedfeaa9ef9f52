// Where weft must allocate on a path that cannot throw (a Timeout firing, a
// wake-up posted to another hub), running out of memory ends the process
// with a line that says where. Before: std::terminate's bare "std::bad_alloc".

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include <weft/weft.hpp>

#include "runtime/stack_pool.hpp"

namespace {
std::atomic<bool> fail_allocations{false};
// Allocations still allowed before fail_allocations takes effect.
std::atomic<int> allocations_before_failing{0};
}  // namespace

// GCC sees free() after an operator new it inlined; the two replaced here
// are a matched pair (malloc and free underneath).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// This binary's allocations, failing on demand (in the death tests'
// children, and around one call in the StackPool case). malloc underneath, so
// sanitizers still see every block.
void* operator new(std::size_t size) {
  if (fail_allocations.load(std::memory_order_relaxed) &&
      allocations_before_failing.fetch_sub(1, std::memory_order_relaxed) <= 0)
    throw std::bad_alloc();
  if (void* block = std::malloc(size ? size : 1)) return block;
  throw std::bad_alloc();
}
void operator delete(void* block) noexcept {
  std::free(block);
}
void operator delete(void* block, std::size_t) noexcept {
  std::free(block);
}

TEST(OutOfMemoryDeathTest, ATimeoutThatCannotAllocateItsErrorSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(weft::run([] {
                 weft::Timeout timeout(std::chrono::nanoseconds(0));
                 fail_allocations = true;
                 weft::yield();  // the hub fires the Timeout
               }),
               "weft: out of memory while raising a Timeout's TimeoutError");
}

TEST(OutOfMemory, AllocationsWorkWhenNotMadeToFail) {
  EXPECT_EQ(weft::run([] { return weft::spawn([] { return 7; }).wait(); }), 7);
}

namespace {

// The process's mapped address space in pages (/proc/self/statm), read
// without allocating.
long mapped_pages() {
  char text[128] = {};
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_GT(::read(fd, text, sizeof text - 1), 0);
  ::close(fd);
  return std::atol(text);
}

}  // namespace

TEST(OutOfMemory, AStackPoolThatCannotRecordANewSlabMapsNoStacks) {
  // Before: the slab was mapped first. A bad_alloc from the list of slabs
  // left the mapping behind for good; one from the list of idle stacks left
  // it mapped, unused, until the pool was destroyed.
  using weft::detail::StackPool;
  StackPool::guard_mode();  // the process-wide policy reads files: not inside the count
  try {                     // the first throw's own allocations, likewise
    throw std::bad_alloc();
  } catch (const std::bad_alloc&) {
  }
  const long before = mapped_pages();
  for (int allowed = 0; allowed < 2; ++allowed) {  // the slab list's growth, then the idle list's
    StackPool pool(64 * 1024);
    allocations_before_failing = allowed;
    fail_allocations = true;
    bool threw = false;
    try {
      pool.acquire();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    fail_allocations = false;
    EXPECT_TRUE(threw) << allowed << " allocations allowed";
    EXPECT_EQ(mapped_pages(), before) << allowed << " allocations allowed";
    // Memory back: the pool works.
    const weft::detail::Stack stack = pool.acquire();
    std::memset(stack.base, 1, stack.size);
    pool.release(stack);
  }
  EXPECT_EQ(mapped_pages(), before);
}

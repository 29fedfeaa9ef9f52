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
}  // namespace

// GCC sees free() after an operator new it inlined; the two replaced here
// are a matched pair (malloc and free underneath).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// This binary's allocations, failing on demand (only in the death tests'
// children). malloc underneath, so sanitizers still see every block.
void* operator new(std::size_t size) {
  if (fail_allocations.load(std::memory_order_relaxed)) throw std::bad_alloc();
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
  // Before: the slab was mapped first, and a bad_alloc from the list that
  // records it left the mapping behind for good.
  using weft::detail::StackPool;
  try {  // the first throw's own allocations, before counting
    throw std::bad_alloc();
  } catch (const std::bad_alloc&) {
  }
  const long before = mapped_pages();
  {
    StackPool pool(64 * 1024);
    fail_allocations = true;
    bool threw = false;
    try {
      pool.acquire();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    fail_allocations = false;
    EXPECT_TRUE(threw);
    EXPECT_EQ(mapped_pages(), before);
    // Memory back: the pool works.
    const weft::detail::Stack stack = pool.acquire();
    std::memset(stack.base, 1, stack.size);
    pool.release(stack);
  }
  EXPECT_EQ(mapped_pages(), before);
}

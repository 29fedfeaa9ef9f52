// Where weft must allocate on a path that cannot throw (a Timeout firing, a
// wake-up posted to another hub), running out of memory ends the process
// with a line that says where. Before: std::terminate's bare "std::bad_alloc".

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>

#include <weft/weft.hpp>

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

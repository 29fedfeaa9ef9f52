// The stack pool: LIFO reuse, guard pages, and giving cold stacks' memory back.

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "runtime/stack_pool.hpp"

using weft::detail::Stack;
using weft::detail::StackPool;

namespace {

std::size_t resident_pages(const Stack& stack) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> residency(stack.size / page);
  EXPECT_EQ(mincore(stack.base, stack.size, residency.data()), 0);
  std::size_t count = 0;
  for (unsigned char r : residency)
    count += r & 1;
  return count;
}

}  // namespace

TEST(StackPool, TheMostRecentlyReleasedStackIsReusedFirst) {
  StackPool pool(64 * 1024);
  Stack a = pool.acquire();
  Stack b = pool.acquire();
  pool.release(a);
  pool.release(b);
  EXPECT_EQ(pool.acquire().base, b.base);
  EXPECT_EQ(pool.acquire().base, a.base);
}

TEST(StackPool, SizesAreRoundedUpToPages) {
  StackPool pool(10000);
  EXPECT_EQ(pool.stack_size() % static_cast<std::size_t>(sysconf(_SC_PAGESIZE)), 0u);
  EXPECT_GE(pool.stack_size(), 10000u);
}

TEST(StackPool, TrimGivesBackTheMemoryOfColdStacksAndKeepsTheHotOnes) {
  StackPool pool(64 * 1024);
  std::vector<Stack> stacks;
  for (int i = 0; i < 40; ++i) {
    stacks.push_back(pool.acquire());
    std::memset(stacks.back().base, 1, stacks.back().size);
  }
  for (const Stack& s : stacks)
    pool.release(s);  // stacks[39] is now the hottest
  pool.trim(/*keep=*/10, /*budget=*/1000);
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(resident_pages(stacks[i]), 0u) << "cold stack " << i;
  for (int i = 30; i < 40; ++i)
    EXPECT_GT(resident_pages(stacks[i]), 0u) << "hot stack " << i;
  // Trimmed stacks still work when handed out again.
  for (int i = 0; i < 40; ++i)
    std::memset(pool.acquire().base, 2, 4096);
}

TEST(StackPool, TrimDoesAtMostItsBudgetPerCall) {
  StackPool pool(16 * 1024);
  std::vector<Stack> stacks;
  for (int i = 0; i < 20; ++i) {
    stacks.push_back(pool.acquire());
    std::memset(stacks.back().base, 1, stacks.back().size);
  }
  for (const Stack& s : stacks)
    pool.release(s);
  pool.trim(0, 5);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(resident_pages(stacks[i]), 0u);
  EXPECT_GT(resident_pages(stacks[5]), 0u);
  pool.trim(0, 100);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(resident_pages(stacks[i]), 0u);
}

TEST(StackPool, TrimKeepingMoreThanTheUntrimmedStacksDoesNothing) {
  // A later trim that keeps more stacks hot than the last one left untrimmed
  // (fewer idle stacks now than were trimmed then) gives nothing back.
  StackPool pool(16 * 1024);
  std::vector<Stack> stacks;
  for (int i = 0; i < 40; ++i) {
    stacks.push_back(pool.acquire());
    std::memset(stacks.back().base, 1, stacks.back().size);
  }
  for (const Stack& s : stacks)
    pool.release(s);
  pool.trim(/*keep=*/10, /*budget=*/1000);
  pool.trim(/*keep=*/35, /*budget=*/1000);
  for (int i = 30; i < 40; ++i)
    EXPECT_GT(resident_pages(stacks[i]), 0u) << "hot stack " << i;
}

TEST(StackPool, AFreshStackHoldsItsTopPageAndNothingElseBeforeItsFirstUse) {
  // Written when the slab is made, before its guard pages go in (see
  // prepare_slab): the page every fiber touches first, and only that one.
  StackPool pool(64 * 1024);
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (int i = 0; i < 20; ++i) {
    const Stack stack = pool.acquire();
    unsigned char top = 0;
    ASSERT_EQ(mincore(static_cast<char*>(stack.base) + stack.size - page, page, &top), 0);
    EXPECT_EQ(top & 1, 1) << "stack " << i;
    EXPECT_EQ(resident_pages(stack), 1u) << "stack " << i;
  }
}

using StackPoolDeathTest = testing::Test;

TEST_F(StackPoolDeathTest, TheGuardPageBelowAStackFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        StackPool pool(16 * 1024);
        Stack stack = pool.acquire();
        static_cast<volatile char*>(stack.base)[-1] = 1;
      },
      "");
}

TEST_F(StackPoolDeathTest, EveryStackOfALargeSlabHasItsGuardPage) {
  // Guards are installed for a whole slab at once: the last stack of a slab
  // of 64 is guarded too (slabs hold 4, 8, 16, 32, then 64 stacks).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        StackPool pool(16 * 1024);
        Stack last{};
        for (int i = 0; i < 4 + 8 + 16 + 32 + 64; ++i)
          last = pool.acquire();
        static_cast<volatile char*>(last.base)[-1] = 1;
      },
      "");
}

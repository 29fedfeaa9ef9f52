// The memory a hub keeps for its fibers.
// - The stack pool: LIFO reuse, guard pages, and giving cold stacks' memory back.
// - The cache of ended fibers' control blocks: size classes, LIFO reuse,
//   bounded trims, nothing leaked; a hub that keeps a burst's blocks for the
//   next spawns and gives them back when it goes idle; no more kept than the
//   hub's peak of live fibers allows, however many other hubs' fibers end here.

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <new>
#include <vector>

#include <weft/weft.hpp>

#include "runtime/fiber_block_cache.hpp"
#include "runtime/heap_prefault.hpp"
#include "runtime/hub_core.hpp"
#include "runtime/page_populate.hpp"
#include "runtime/stack_pool.hpp"

using weft::detail::FiberBlockCache;
using weft::detail::HeapPrefault;
using weft::detail::Stack;
using weft::detail::StackPool;
using namespace std::chrono_literals;

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

// `count` stacks, each written through and then handed back: all idle and
// resident, the last one released (the hottest) last in the vector.
std::vector<Stack> used_then_idle(StackPool& pool, int count) {
  std::vector<Stack> stacks;
  for (int i = 0; i < count; ++i) {
    stacks.push_back(pool.acquire());
    std::memset(stacks.back().base, 1, stacks.back().size);
  }
  for (const Stack& s : stacks)
    pool.release(s);
  return stacks;
}

void* allocate_block(std::size_t size) {
  return ::operator new(FiberBlockCache::block_size(size));
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
  const std::vector<Stack> stacks = used_then_idle(pool, 40);  // stacks[39] is now the hottest
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
  const std::vector<Stack> stacks = used_then_idle(pool, 20);
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
  const std::vector<Stack> stacks = used_then_idle(pool, 40);
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

namespace {

bool resident(const void* page_start) {
  unsigned char in_core = 0;
  EXPECT_EQ(mincore(const_cast<void*>(page_start), 1, &in_core), 0);
  return in_core & 1;
}

bool kernel_populates() {
  void* probe = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(probe, MAP_FAILED);
  const bool populated = madvise(probe, 4096, weft::detail::madv_populate_write) == 0;
  munmap(probe, 4096);
  return populated;
}

}  // namespace

TEST(HeapPrefault, ANewBlockNearTheHeapTopGetsTheNextHeapPageFaultedIn) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  HeapPrefault prefault;
  // Heap grown after the hub was made, untouched: as malloc leaves it. (sbrk
  // itself, as under sanitizers malloc maps its memory elsewhere.) No huge
  // page, or the first write would bring in its neighbours too.
  char* grown = static_cast<char*>(sbrk(static_cast<intptr_t>(4 * page)));
  ASSERT_NE(grown, reinterpret_cast<char*>(-1));
  char* first_page = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(grown) + page - 1) &
                                             ~std::uintptr_t(page - 1));
  madvise(first_page, 3 * page, MADV_NOHUGEPAGE);
  // A block, and the chunk header malloc writes after it, in the first page.
  char* block = first_page + page - 128;
  block[0] = 1;
  EXPECT_FALSE(resident(first_page + page));
  prefault.after_new_block(block, 64);
  // Faulted in where the kernel can (Linux 5.14+), else left to the write.
  EXPECT_EQ(resident(first_page + page), kernel_populates());
  EXPECT_FALSE(resident(first_page + 2 * page));  // one page ahead, not more
  // The break stays where it is: malloc copes with a foreign sbrk, and may
  // have grown the heap past it meanwhile.
}

TEST(HeapPrefault, APageOutsideTheHeapIsNeverFaultedIn) {
  // Whatever lies past a block that is not in the heap may be anyone's
  // mapping: populating it could mark a shared file's pages dirty.
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  HeapPrefault prefault;
  char* mapped = static_cast<char*>(
      mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mapped, MAP_FAILED);
  madvise(mapped, 3 * page, MADV_NOHUGEPAGE);
  char* block = mapped + page - 128;
  block[0] = 1;
  prefault.after_new_block(block, 64);
  EXPECT_FALSE(resident(mapped + page));
  EXPECT_FALSE(resident(mapped + 2 * page));
  munmap(mapped, 3 * page);
}

TEST(FiberBlockCache, ABlockOfAClassServesEveryRequestOfThatClass) {
  for (std::size_t size = 1; size <= FiberBlockCache::largest; ++size) {
    const std::size_t block = FiberBlockCache::block_size(size);
    ASSERT_GE(block, size);
    ASSERT_LT(block - size, FiberBlockCache::granule) << "size " << size;
    ASSERT_EQ(block % FiberBlockCache::granule, 8u) << "not a whole glibc chunk: " << size;
    ASSERT_EQ(FiberBlockCache::block_size(block), block);
  }
  EXPECT_EQ(FiberBlockCache::block_size(FiberBlockCache::largest + 1),
            FiberBlockCache::largest + 1);
}

TEST(FiberBlockCache, TakeGivesTheMostRecentlyKeptBlockOfTheSameClass) {
  FiberBlockCache cache;
  void* first = allocate_block(264);
  void* second = allocate_block(264);
  ASSERT_TRUE(cache.keep(first, 264));
  ASSERT_TRUE(cache.keep(second, 260));  // same class
  EXPECT_EQ(cache.take(300), nullptr);   // another class
  EXPECT_EQ(cache.take(249), second);
  EXPECT_EQ(cache.take(264), first);
  EXPECT_EQ(cache.take(264), nullptr);
  ::operator delete(first);
  ::operator delete(second);
}

TEST(FiberBlockCache, ALargeBlockIsNotKept) {
  FiberBlockCache cache;
  void* block = allocate_block(FiberBlockCache::largest + 1);
  EXPECT_FALSE(cache.keep(block, FiberBlockCache::largest + 1));
  EXPECT_EQ(cache.take(FiberBlockCache::largest + 1), nullptr);
  EXPECT_EQ(cache.kept(), 0u);
  ::operator delete(block);
}

TEST(FiberBlockCache, TrimKeepsTheMostRecentBlocksAndFreesNoMoreThanItsBudget) {
  FiberBlockCache cache;
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) {
    blocks.push_back(allocate_block(264));
    cache.keep(blocks.back(), 264);
  }
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(allocate_block(40));
    cache.keep(blocks.back(), 40);
  }
  cache.trim(3, 4);
  EXPECT_EQ(cache.kept(), 9u);  // 6 of one class, 3 of the other
  cache.trim(3, 100);
  EXPECT_EQ(cache.kept(), 6u);
  for (int i = 9; i >= 7; --i)
    EXPECT_EQ(cache.take(264), blocks[i]);
  EXPECT_EQ(cache.take(264), nullptr);
  for (int i = 12; i >= 10; --i)
    EXPECT_EQ(cache.take(40), blocks[i]);
  for (int i = 7; i < 13; ++i)
    ::operator delete(blocks[i]);
}

TEST(FiberBlockCache, TrimmingToNoneFreesEveryBlockAsTheDestructorDoes) {
  // The destructor is trim(0, all): LeakSanitizer (the ASan build) fails this
  // test if the blocks left in the second cache are not freed.
  FiberBlockCache cache;
  FiberBlockCache dying;
  for (std::size_t i = 0; i < 1000; ++i) {
    cache.keep(allocate_block(8 + i % 900), 8 + i % 900);
    dying.keep(allocate_block(8 + i % 900), 8 + i % 900);
  }
  EXPECT_EQ(cache.kept(), 1000u);
  cache.trim(0, static_cast<std::size_t>(-1));
  EXPECT_EQ(cache.kept(), 0u);
  for (std::size_t size = 1; size <= FiberBlockCache::largest; ++size)
    ASSERT_EQ(cache.take(size), nullptr);
}

TEST(FiberBlockCache, KeepsNoMoreThanThePeakOfLiveFibersAllows) {
  FiberBlockCache cache;
  cache.note_live(10);
  cache.note_live(3);  // a peak, not the last count
  const std::size_t room = 10 + FiberBlockCache::kept_beyond_peak;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < room; ++i) {
    blocks.push_back(allocate_block(264));
    ASSERT_TRUE(cache.keep(blocks.back(), 264)) << "block " << i;
  }
  void* extra = allocate_block(40);
  EXPECT_FALSE(cache.keep(extra, 40)) << "the cache is full, whatever the class";
  EXPECT_EQ(cache.kept(), room);
  EXPECT_EQ(cache.take(264), blocks.back());
  EXPECT_TRUE(cache.keep(extra, 40)) << "a take makes room";
  cache.trim(0, static_cast<std::size_t>(-1));
  EXPECT_EQ(cache.kept(), 0u);
  ::operator delete(blocks.back());
}

TEST(FiberBlockCache, AHubThatNeverGoesIdleKeepsFewOfTheBlocksOfOtherHubsFibers) {
  // Hub 0 drops the last references of fibers that ran on hub 1, and never
  // goes idle meanwhile (it yields instead of waiting): without a bound it
  // kept every one of those blocks, which its own spawns never take.
  static constexpr std::size_t foreign = 4 * FiberBlockCache::kept_beyond_peak;
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    auto& blocks = weft::detail::HubCore::current()->fiber_blocks();
    std::vector<weft::GreenThread<int>> fibers;
    for (std::size_t i = 0; i < foreign; ++i)
      fibers.push_back(runtime.spawn_on(1, [] { return 1; }));
    // Hub 1 runs its fibers in order: when this one runs, every one before it
    // has ended and dropped its own reference.
    std::atomic<bool> all_ended{false};
    runtime.spawn_on(1, [&] { all_ended = true; });
    while (!all_ended)
      weft::yield();
    const std::size_t kept_before = blocks.kept();
    fibers.clear();  // the last references: the blocks are freed here, on hub 0
    if constexpr (FiberBlockCache::enabled) {
      // Hub 0's own peak is its main fiber and the marker's handle: a few.
      EXPECT_GE(blocks.kept(), kept_before + FiberBlockCache::kept_beyond_peak)
          << "the other hub's blocks did not reach this hub's cache: nothing was tested";
      EXPECT_LE(blocks.kept(), std::size_t{16} + FiberBlockCache::kept_beyond_peak);
    } else {
      EXPECT_EQ(blocks.kept(), 0u) << "a sanitizer build must free every fiber at once";
    }
  });
}

TEST(FiberBlockCache, AHubKeepsABurstsBlocksForTheNextSpawnsAndGivesThemBackWhenIdle) {
  static constexpr std::size_t burst = 10'000;
  weft::run([] {
    auto& blocks = weft::detail::HubCore::current()->fiber_blocks();
    std::vector<weft::GreenThread<int>> fibers;
    for (std::size_t i = 0; i < burst; ++i)
      fibers.push_back(weft::spawn([] { return 1; }));
    for (auto& fiber : fibers)
      fiber.wait();
    fibers.clear();  // the last references: the blocks are freed now
    if constexpr (FiberBlockCache::enabled) {
      EXPECT_GE(blocks.kept(), burst);
      const std::size_t kept = blocks.kept();
      fibers.push_back(weft::spawn([] { return 2; }));
      EXPECT_EQ(blocks.kept(), kept - 1) << "a spawn did not take a kept block";
      EXPECT_EQ(fibers.back().wait(), 2);
      fibers.clear();
    } else {
      EXPECT_EQ(blocks.kept(), 0u) << "a sanitizer build must free every fiber at once";
    }
    weft::sleep(2ms);  // the hub goes idle
    EXPECT_LE(blocks.kept(), 256u);
  });
}

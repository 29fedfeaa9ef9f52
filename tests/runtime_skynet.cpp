// A million fibers: the skynet tree with eventlet's spawn order (a child starts
// at the next round), so the whole tree is alive at once.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include <weft/weft.hpp>

namespace {

std::int64_t skynet(std::int64_t number, std::int64_t size) {
  if (size == 1) return number;
  std::array<weft::GreenThread<std::int64_t>, 10> children;
  const std::int64_t part = size / 10;
  for (int i = 0; i < 10; ++i)
    children[i] = weft::spawn(skynet, number + i * part, part);
  std::int64_t sum = 0;
  for (auto& child : children)
    sum += child.wait();
  return sum;
}

}  // namespace

TEST(Skynet, AMillionFibersSumCorrectly) {
  EXPECT_EQ(weft::run([] { return skynet(0, 1'000'000); }), 499'999'500'000);
}

TEST(Skynet, KillingTheRootUnwindsTheWholeTree) {
  weft::run([] {
    auto root = weft::spawn(skynet, 0, 100'000);
    for (int i = 0; i < 3; ++i)
      weft::yield();
    root.kill();
    EXPECT_THROW(root.wait(), weft::FiberExit);
  });  // run kills the orphaned subtrees; ASan/LSan would flag a leak
}

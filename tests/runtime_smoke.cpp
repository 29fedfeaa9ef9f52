#include <gtest/gtest.h>

#include <weft/weft.hpp>

TEST(Smoke, RunReturnsMainResult) {
  int r = weft::run([] {
    auto a = weft::spawn([](int x) { weft::sleep(std::chrono::milliseconds(1)); return x * 2; }, 21);
    weft::yield();
    return a.wait();
  });
  EXPECT_EQ(r, 42);
}

// The floating-point control state (rounding mode, in MXCSR and the x87
// control word) is callee-saved in the SysV ABI, so each fiber keeps its own
// across switches, as it would across a function call.

#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>

#include <weft/weft.hpp>

namespace {

// Rounds through the FPU at run time, so the compiler cannot fold it.
double round_half(double x) {
  volatile double at_run_time = x;
  return std::nearbyint(at_run_time);
}

}  // namespace

TEST(FloatingPointEnv, RoundingModeSetInOneFiberDoesNotLeakIntoAnother) {
  weft::run([] {
    auto upward = weft::spawn([] {
      std::fesetround(FE_UPWARD);
      weft::yield();
      const int mode = std::fegetround();
      std::fesetround(FE_TONEAREST);
      return mode;
    });
    auto nearest = weft::spawn([] {
      weft::yield();  // runs while `upward` is suspended with FE_UPWARD set
      return std::fegetround();
    });
    EXPECT_EQ(nearest.wait(), FE_TONEAREST);
    EXPECT_EQ(upward.wait(), FE_UPWARD);
  });
}

TEST(FloatingPointEnv, EachFiberRoundsWithItsOwnModeAfterSwitches) {
  weft::run([] {
    auto make = [](int mode) {
      return weft::spawn([mode] {
        std::fesetround(mode);
        double sum = 0;
        for (int i = 0; i < 100; ++i) {
          weft::yield();
          sum += round_half(2.5);
        }
        std::fesetround(FE_TONEAREST);
        return sum;
      });
    };
    auto up = make(FE_UPWARD);
    auto down = make(FE_DOWNWARD);
    auto nearest = make(FE_TONEAREST);
    EXPECT_EQ(up.wait(), 300.0);
    EXPECT_EQ(down.wait(), 200.0);
    EXPECT_EQ(nearest.wait(), 200.0);  // ties to even
  });
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
}

TEST(FloatingPointEnv, NewFiberStartsWithItsSpawnersRoundingMode) {
  weft::run([] {
    std::fesetround(FE_DOWNWARD);
    auto child = weft::spawn([] { return std::fegetround(); });
    std::fesetround(FE_TONEAREST);  // changed again before the child starts
    EXPECT_EQ(child.wait(), FE_DOWNWARD);
  });
}

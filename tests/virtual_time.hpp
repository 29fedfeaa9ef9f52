#pragma once
// What the tests of time-dependent code share: a weft::run on the hub's
// virtual clock, where every instant is exact, and ways to read and check it.

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

namespace weft_test {

/// Seconds: virtual time is exact but for rounding to the nanosecond.
inline constexpr double exact = 1e-6;

template <class F>
auto run_virtual(F main) {
  return weft::run(std::move(main), weft::RunOptions{.clock = weft::Clock::virtual_time});
}

/// Seconds on the hub's clock since `origin`.
inline double since(std::chrono::steady_clock::time_point origin) {
  return std::chrono::duration<double>(weft::now() - origin).count();
}

inline void expect_times(const std::vector<double>& seen, const std::vector<double>& expected) {
  ASSERT_EQ(seen.size(), expected.size());
  for (std::size_t i = 0; i < seen.size(); ++i)
    EXPECT_NEAR(seen[i], expected[i], exact) << "call " << i;
}

}  // namespace weft_test

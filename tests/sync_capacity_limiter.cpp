// CapacityLimiter: trio's semantics — one token per borrower, FIFO hand-off,
// releases from anywhere, the bound holds under kills and resizes.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

TEST(CapacityLimiter, ZeroTokensThrowsInvalidArgument) {
  EXPECT_THROW(weft::CapacityLimiter(0), std::invalid_argument);
  weft::CapacityLimiter limiter(1);
  EXPECT_THROW(limiter.set_total_tokens(0), std::invalid_argument);
}

TEST(CapacityLimiter, BorrowersNeverExceedTheTotal) {
  weft::run([] {
    weft::CapacityLimiter limiter(3);
    int inside = 0;
    int most = 0;
    std::vector<weft::GreenThread<void>> workers;
    for (int i = 0; i < 100; ++i) {
      workers.push_back(weft::spawn([&] {
        limiter.acquire();
        most = std::max(most, ++inside);
        EXPECT_LE(limiter.borrowed_tokens(), 3u);
        weft::yield();
        --inside;
        limiter.release();
      }));
    }
    for (auto& w : workers)
      w.wait();
    EXPECT_EQ(most, 3);
    EXPECT_EQ(limiter.borrowed_tokens(), 0u);
    EXPECT_EQ(limiter.available_tokens(), 3u);
  });
}

TEST(CapacityLimiter, WaitersGetTokensInTheOrderTheyCame) {
  weft::run([] {
    weft::CapacityLimiter limiter(1);
    limiter.acquire();
    std::vector<int> order;
    std::vector<weft::GreenThread<void>> waiters;
    for (int i = 0; i < 4; ++i) {
      waiters.push_back(weft::spawn([&, i] {
        limiter.acquire();
        order.push_back(i);
        limiter.release();
      }));
    }
    weft::yield();
    EXPECT_EQ(limiter.waiting(), 4u);
    limiter.release();
    for (auto& w : waiters)
      w.wait();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  });
}

TEST(CapacityLimiter, SameBorrowerAcquiringTwiceThrowsLogicError) {
  weft::run([] {
    weft::CapacityLimiter limiter(5);
    limiter.acquire();
    EXPECT_THROW(limiter.acquire(), std::logic_error);
    EXPECT_THROW(limiter.try_acquire(), std::logic_error);
    EXPECT_EQ(limiter.borrowed_tokens(), 1u);
  });
}

TEST(CapacityLimiter, ReleaseByANonBorrowerThrowsLogicError) {
  weft::CapacityLimiter limiter(2);
  EXPECT_THROW(limiter.release(), std::logic_error);
  int other;
  EXPECT_TRUE(limiter.try_acquire_on_behalf_of(&other));
  EXPECT_THROW(limiter.release(), std::logic_error);
  limiter.release_on_behalf_of(&other);
  EXPECT_EQ(limiter.borrowed_tokens(), 0u);
}

TEST(CapacityLimiter, MoreTotalTokensWakeWaitersAtOnce) {
  weft::run([] {
    weft::CapacityLimiter limiter(1);
    limiter.acquire();
    int got = 0;
    auto a = weft::spawn([&] {
      limiter.acquire();
      ++got;
    });
    auto b = weft::spawn([&] {
      limiter.acquire();
      ++got;
    });
    weft::yield();
    EXPECT_EQ(got, 0);
    limiter.set_total_tokens(3);
    a.wait();
    b.wait();
    EXPECT_EQ(got, 2);
    EXPECT_EQ(limiter.borrowed_tokens(), 3u);
  });
}

TEST(CapacityLimiter, FewerTotalTokensTakeEffectAsBorrowersRelease) {
  weft::run([] {
    weft::CapacityLimiter limiter(2);
    int first;
    int second;
    limiter.acquire_on_behalf_of(&first);
    limiter.acquire_on_behalf_of(&second);
    limiter.set_total_tokens(1);
    EXPECT_EQ(limiter.available_tokens(), 0u);
    limiter.release_on_behalf_of(&first);
    EXPECT_FALSE(limiter.try_acquire());  // still at the new bound of 1
    limiter.release_on_behalf_of(&second);
    EXPECT_TRUE(limiter.try_acquire());
  });
}

TEST(CapacityLimiter, KilledWaiterNeverKeepsAToken) {
  weft::run([] {
    weft::CapacityLimiter limiter(1);
    limiter.acquire();
    auto doomed = weft::spawn([&] { limiter.acquire(); });
    auto survivor = weft::spawn([&] {
      limiter.acquire();
      limiter.release();
    });
    weft::yield();
    limiter.release();  // handed to `doomed`, which has not resumed yet
    doomed.kill();
    survivor.wait();
    EXPECT_THROW(doomed.wait(), weft::FiberExit);
    EXPECT_EQ(limiter.borrowed_tokens(), 0u);
  });
}

TEST(CapacityLimiter, AcquireForReturnsFalseAfterTheTimeout) {
  weft::run([] {
    weft::CapacityLimiter limiter(1);
    int other;
    limiter.acquire_on_behalf_of(&other);
    EXPECT_FALSE(limiter.acquire_for(5ms));
    EXPECT_EQ(limiter.waiting(), 0u);
  });
}

TEST(CapacityLimiter, ReleaseOnBehalfOfAFiberFromAPlainThreadWakesTheNextWaiter) {
  weft::run([] {
    weft::CapacityLimiter limiter(1);
    int job;
    limiter.acquire_on_behalf_of(&job);
    std::thread worker([&] {
      std::this_thread::sleep_for(5ms);
      limiter.release_on_behalf_of(&job);
    });
    limiter.acquire();
    EXPECT_EQ(limiter.borrowed_tokens(), 1u);
    limiter.release();
    worker.join();
  });
}

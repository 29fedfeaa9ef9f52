// Semaphore and BoundedSemaphore: FIFO hand-off without barging; an
// interrupted waiter never consumes a permit.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

TEST(Semaphore, NegativeCountThrowsInvalidArgument) {
  EXPECT_THROW(weft::Semaphore(-1), std::invalid_argument);
}

TEST(Semaphore, AcquireWithAFreePermitDoesNotSuspend) {
  weft::run([] {
    weft::Semaphore sem(2);
    bool other_ran = false;
    weft::spawn([&] { other_ran = true; });
    sem.acquire();
    sem.acquire();
    EXPECT_FALSE(other_ran);
    EXPECT_EQ(sem.balance(), 0);
    EXPECT_TRUE(sem.locked());
  });
}

TEST(Semaphore, TryAcquireFailsWhenNoPermitIsFree) {
  weft::Semaphore sem(0);
  EXPECT_FALSE(sem.try_acquire());
  sem.release();
  EXPECT_TRUE(sem.try_acquire());
}

TEST(Semaphore, WaitersGetReleasedPermitsInTheOrderTheyCame) {
  weft::run([] {
    weft::Semaphore sem(0);
    std::vector<int> order;
    std::vector<weft::GreenThread<void>> waiters;
    for (int i = 0; i < 4; ++i) {
      waiters.push_back(weft::spawn([&, i] {
        sem.acquire();
        order.push_back(i);
      }));
    }
    weft::yield();
    EXPECT_EQ(sem.balance(), -4);
    for (int i = 0; i < 4; ++i)
      sem.release();
    for (auto& w : waiters)
      w.wait();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  });
}

TEST(Semaphore, NoBargingAReleasedPermitGoesToTheWaiterNotToANewcomer) {
  weft::run([] {
    weft::Semaphore sem(1);
    sem.acquire();
    bool waiter_got_it = false;
    auto waiter = weft::spawn([&] {
      sem.acquire();
      waiter_got_it = true;
    });
    weft::yield();
    sem.release();  // handed to the waiter, which has not resumed yet
    EXPECT_FALSE(sem.try_acquire());
    waiter.wait();
    EXPECT_TRUE(waiter_got_it);
  });
}

TEST(Semaphore, AcquireForReturnsFalseAfterTheTimeout) {
  weft::run([] {
    weft::Semaphore sem(0);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(sem.acquire_for(20ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    EXPECT_EQ(sem.balance(), 0);  // the timed-out waiter left the queue
  });
}

TEST(Semaphore, AcquireForSucceedsWhenReleasedInTime) {
  weft::run([] {
    weft::Semaphore sem(0);
    weft::spawn_after(1ms, [&] { sem.release(); });
    EXPECT_TRUE(sem.acquire_for(10s));
  });
}

TEST(Semaphore, KilledWaiterDoesNotConsumeAPermit) {
  weft::run([] {
    weft::Semaphore sem(0);
    auto doomed = weft::spawn([&] { sem.acquire(); });
    auto survivor = weft::spawn([&] { sem.acquire(); });
    weft::yield();
    doomed.kill();
    sem.release();
    survivor.wait();
    EXPECT_THROW(doomed.wait(), weft::FiberExit);
    EXPECT_EQ(sem.balance(), 0);
  });
}

TEST(Semaphore, PermitHandedToAWaiterKilledBeforeItResumedPassesOn) {
  weft::run([] {
    weft::Semaphore sem(0);
    auto doomed = weft::spawn([&] { sem.acquire(); });
    auto survivor = weft::spawn([&] { sem.acquire(); });
    weft::yield();
    sem.release();  // to `doomed`, which has not run since
    doomed.kill();
    survivor.wait();
    EXPECT_THROW(doomed.wait(), weft::FiberExit);
    EXPECT_EQ(sem.balance(), 0);
  });
}

TEST(Semaphore, TimeoutInterruptingAWaiterLeavesTheCountUnchanged) {
  weft::run([] {
    weft::Semaphore sem(0);
    EXPECT_THROW(weft::with_timeout(5ms, [&] { sem.acquire(); }), weft::TimeoutError);
    sem.release();
    EXPECT_EQ(sem.balance(), 1);
  });
}

TEST(Semaphore, WorksAsALockGuard) {
  weft::run([] {
    weft::Semaphore sem(1);
    int inside = 0;
    int most = 0;
    std::vector<weft::GreenThread<void>> workers;
    for (int i = 0; i < 10; ++i) {
      workers.push_back(weft::spawn([&] {
        std::lock_guard guard(sem);
        most = std::max(most, ++inside);
        weft::yield();
        --inside;
      }));
    }
    for (auto& w : workers)
      w.wait();
    EXPECT_EQ(most, 1);
  });
}

TEST(Semaphore, ReleaseFromEightPlainThreadsLosesNoWakeup) {
  constexpr int threads = 8;
  constexpr int per_thread = 2000;
  weft::run([] {
    weft::Semaphore sem(0);
    std::vector<std::thread> releasers;
    for (int t = 0; t < threads; ++t) {
      releasers.emplace_back([&] {
        for (int i = 0; i < per_thread; ++i)
          sem.release();
      });
    }
    for (int i = 0; i < threads * per_thread; ++i)
      sem.acquire();
    for (auto& t : releasers)
      t.join();
    EXPECT_EQ(sem.balance(), 0);
  });
}

TEST(BoundedSemaphore, ReleaseAboveTheInitialCountThrowsLogicError) {
  weft::BoundedSemaphore sem(2);
  EXPECT_THROW(sem.release(), std::logic_error);
  EXPECT_TRUE(sem.try_acquire());
  sem.release();
  EXPECT_THROW(sem.release(), std::logic_error);
  EXPECT_EQ(sem.balance(), 2);
}

// The rule for plain threads (sync_plain_threads): a call that may wait is
// for fibers, free or not (before: it worked while a permit was free).
TEST(Semaphore, AcquireOutsideAHubThrowsNoHubErrorEvenWhenFree) {
  weft::Semaphore sem(1);
  EXPECT_THROW(sem.acquire(), weft::NoHubError);
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_THROW(sem.acquire(), weft::NoHubError);
}

// Before: the count wrapped to PTRDIFF_MIN.
TEST(Semaphore, ReleaseAtTheLargestCountThrowsOverflowError) {
  weft::Semaphore semaphore(PTRDIFF_MAX);
  EXPECT_THROW(semaphore.release(), std::overflow_error);
  EXPECT_EQ(semaphore.balance(), PTRDIFF_MAX);
  EXPECT_TRUE(semaphore.try_acquire());
  semaphore.release();
  EXPECT_EQ(semaphore.balance(), PTRDIFF_MAX);
}

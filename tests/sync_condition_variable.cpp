// ConditionVariable over weft::Mutex, and the Mutex itself: FIFO wake-ups and
// hand-offs, timeouts, waiters that are killed (the mutex is held again before
// FiberExit leaves wait; a killed mutex waiter never owns it), notifies that
// reach an interrupted waiter, and notifies from plain OS threads.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

// Armed first thing in every test's main fiber: a bug that leaves a fiber
// waiting forever fails the test with a TimeoutError instead of hanging.
constexpr auto kWatchdog = 10s;

// From another fiber (so the caller's ownership does not count): can the
// mutex be taken right now? Takes and releases it if so.
bool lockable_from_another_fiber(weft::Mutex& m) {
  return weft::spawn([&m] {
           if (!m.try_lock()) return false;
           m.unlock();
           return true;
         })
      .wait();
}

}  // namespace

// --- ConditionVariable ------------------------------------------------------------

TEST(ConditionVariable, NotifyOneWakesTheOldestWaiterFirst) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    std::vector<int> woken;
    for (int i = 0; i < 3; ++i) {
      weft::spawn([&, i] {
        std::unique_lock lock(m);
        cv.wait(lock);
        woken.push_back(i);
      });
    }
    weft::yield();
    EXPECT_TRUE(woken.empty());
    cv.notify_one();
    weft::yield();
    EXPECT_EQ(woken, (std::vector<int>{0}));
    cv.notify_one();
    weft::yield();
    EXPECT_EQ(woken, (std::vector<int>{0, 1}));
    cv.notify_one();
    weft::yield();
    EXPECT_EQ(woken, (std::vector<int>{0, 1, 2}));
  });
}

TEST(ConditionVariable, NotifyAllWakesEveryWaiter) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    std::vector<int> woken;
    std::vector<weft::GreenThread<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(weft::spawn([&, i] {
        std::unique_lock lock(m);
        cv.wait(lock);
        woken.push_back(i);
      }));
    }
    weft::yield();
    EXPECT_TRUE(woken.empty());
    cv.notify_all();
    for (auto& w : waiters)
      w.wait();
    EXPECT_EQ(woken, (std::vector<int>{0, 1, 2}));
  });
}

TEST(ConditionVariable, WaitWithAPredicateReturnsOnlyOnceItHolds) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    bool ready = false;
    int checks = 0;
    auto waiter = weft::spawn([&] {
      std::unique_lock lock(m);
      cv.wait(lock, [&] {
        ++checks;
        return ready;
      });
      EXPECT_TRUE(lock.owns_lock());
      return checks;
    });
    weft::yield();
    cv.notify_one();  // predicate still false: back to waiting
    weft::yield();
    weft::yield();
    EXPECT_FALSE(waiter.dead());
    {
      std::lock_guard guard(m);
      ready = true;
    }
    cv.notify_one();
    EXPECT_EQ(waiter.wait(), 3);
  });
}

TEST(ConditionVariable, WaitForReturnsTimeoutWhenNotNotifiedWithTheMutexHeldAgain) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    std::unique_lock lock(m);
    EXPECT_EQ(cv.wait_for(lock, 2ms), std::cv_status::timeout);
    EXPECT_TRUE(lock.owns_lock());
    EXPECT_FALSE(lockable_from_another_fiber(m));
    lock.unlock();
    EXPECT_TRUE(lockable_from_another_fiber(m));
  });
}

TEST(ConditionVariable, WaitForReturnsNoTimeoutWhenNotified) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    auto waiter = weft::spawn([&] {
      std::unique_lock lock(m);
      const auto status = cv.wait_for(lock, 1h);
      EXPECT_TRUE(lock.owns_lock());
      return status;
    });
    weft::yield();
    cv.notify_one();
    EXPECT_EQ(waiter.wait(), std::cv_status::no_timeout);
  });
}

TEST(ConditionVariable, WaitForWithAPredicateReturnsItsValueAfterTheTimeout) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    std::unique_lock lock(m);
    EXPECT_FALSE(cv.wait_for(lock, 2ms, [] { return false; }));
    EXPECT_TRUE(lock.owns_lock());
    EXPECT_TRUE(cv.wait_for(lock, 1h, [] { return true; }));
  });
}

TEST(ConditionVariable, WaitWithoutHoldingTheLockThrowsSystemError) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    std::unique_lock lock(m, std::defer_lock);
    EXPECT_THROW(cv.wait(lock), std::system_error);
  });
}

TEST(ConditionVariable, AWaiterKilledWhileWaitingRethrowsFiberExitWithTheMutexHeld) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    bool in_handler = false;
    bool owned_in_handler = false;
    auto waiter = weft::spawn([&] {
      std::unique_lock lock(m);
      try {
        cv.wait(lock);
      } catch (const weft::FiberExit&) {
        owned_in_handler = lock.owns_lock();
        in_handler = true;
        weft::yield();  // still holding the mutex: others must find it locked
        throw;
      }
    });
    weft::yield();
    EXPECT_TRUE(lockable_from_another_fiber(m));  // released while it waits
    waiter.kill();                                // returns after the waiter ran once
    ASSERT_TRUE(in_handler);
    EXPECT_TRUE(owned_in_handler);
    EXPECT_FALSE(m.try_lock());
    EXPECT_THROW(waiter.wait(), weft::FiberExit);
    EXPECT_TRUE(m.try_lock());  // its unique_lock released it while unwinding
    m.unlock();
  });
}

TEST(ConditionVariable, AKilledWaiterWaitsForTheMutexHeldElsewhereBeforeThrowing) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    bool in_handler = false;
    bool owned_in_handler = false;
    auto waiter = weft::spawn([&] {
      std::unique_lock lock(m);
      try {
        cv.wait(lock);
      } catch (const weft::FiberExit&) {
        owned_in_handler = lock.owns_lock();
        in_handler = true;
        throw;
      }
    });
    weft::yield();
    m.lock();
    waiter.kill();
    weft::yield();
    EXPECT_FALSE(in_handler);  // woken, but waiting for the mutex we hold
    EXPECT_FALSE(waiter.dead());
    m.unlock();  // handed to the waiter
    EXPECT_THROW(waiter.wait(), weft::FiberExit);
    EXPECT_TRUE(in_handler);
    EXPECT_TRUE(owned_in_handler);
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST(ConditionVariable, ANotifyOneThatReachesAWaiterThenInterruptedPassesOnToTheNext) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    std::vector<int> woken;
    auto make_waiter = [&](int i) {
      return weft::spawn([&, i] {
        std::unique_lock lock(m);
        cv.wait(lock);
        woken.push_back(i);
      });
    };
    auto w1 = make_waiter(1);
    auto w2 = make_waiter(2);
    weft::yield();
    cv.notify_one();  // reaches w1, which has not resumed yet
    w1.kill();
    EXPECT_THROW(w1.wait(), weft::FiberExit);
    w2.wait();  // the notify passed on
    EXPECT_EQ(woken, (std::vector<int>{2}));
  });
}

TEST(ConditionVariable, NotifyFromAPlainThreadWakesAFiberWaitingOnAHub) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    bool ready = false;  // guarded by m
    std::atomic<bool> fiber_holds_lock{false};
    std::jthread notifier([&] {
      const auto until = std::chrono::steady_clock::now() + kWatchdog;
      while (!fiber_holds_lock && std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
      // The fiber holds m until it waits: try_lock succeeds only then.
      while (!m.try_lock()) {
        if (std::chrono::steady_clock::now() > until) return;
        std::this_thread::yield();
      }
      ready = true;
      m.unlock();
      cv.notify_one();
    });
    std::unique_lock lock(m);
    fiber_holds_lock = true;
    cv.wait(lock, [&] { return ready; });
    EXPECT_TRUE(ready);
    EXPECT_TRUE(lock.owns_lock());
  });
}

TEST(ConditionVariable, NotifyWithNoWaitersIsNotRemembered) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    weft::ConditionVariable cv;
    cv.notify_one();
    cv.notify_all();
    std::unique_lock lock(m);
    EXPECT_EQ(cv.wait_for(lock, 2ms), std::cv_status::timeout);
  });
}

// --- Mutex ------------------------------------------------------------------------

TEST(Mutex, LockIsHandedOverFifoWithNoBargingAfterUnlock) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    Log order;
    m.lock();
    auto make_locker = [&](std::string name) {
      return weft::spawn([&, name] {
        m.lock();
        order.push_back(name);
        m.unlock();
      });
    };
    auto a = make_locker("a");
    auto b = make_locker("b");
    weft::yield();  // both wait
    m.unlock();     // handed to a
    EXPECT_FALSE(m.try_lock());
    m.lock();  // queues behind b
    order.push_back("main");
    m.unlock();
    EXPECT_EQ(order, (Log{"a", "b", "main"}));
    a.wait();
    b.wait();
  });
}

TEST(Mutex, TryLockFailsWhileHeld) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    EXPECT_TRUE(m.try_lock());
    EXPECT_FALSE(lockable_from_another_fiber(m));
    m.unlock();
    EXPECT_TRUE(lockable_from_another_fiber(m));
    {
      std::scoped_lock guard(m);
      EXPECT_FALSE(lockable_from_another_fiber(m));
    }
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST(Mutex, UnlockByANonOwnerThrowsSystemError) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    EXPECT_THROW(m.unlock(), std::system_error);  // not locked at all
    m.lock();
    auto other = weft::spawn([&] {
      try {
        m.unlock();
      } catch (const std::system_error& e) {
        return e.code();
      }
      return std::error_code();
    });
    const std::error_code code = other.wait();
    EXPECT_TRUE(code == std::errc::operation_not_permitted) << code.message();
    EXPECT_FALSE(lockable_from_another_fiber(m));  // still ours
    m.unlock();
  });
}

TEST(Mutex, RecursiveLockThrowsSystemError) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    m.lock();
    try {
      m.lock();
      ADD_FAILURE() << "a second lock by the owner succeeded";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(e.code() == std::errc::resource_deadlock_would_occur) << e.code().message();
    }
    EXPECT_FALSE(lockable_from_another_fiber(m));
    m.unlock();
    EXPECT_TRUE(lockable_from_another_fiber(m));
  });
}

TEST(Mutex, AFiberKilledWhileWaitingNeverOwnsItAndTheNextWaiterGetsIt) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    Log owners;
    auto make_locker = [&](std::string name) {
      return weft::spawn([&, name] {
        m.lock();
        owners.push_back(name);
        m.unlock();
      });
    };
    m.lock();
    auto a = make_locker("a");
    auto b = make_locker("b");
    weft::yield();
    a.kill();
    EXPECT_THROW(a.wait(), weft::FiberExit);
    m.unlock();
    b.wait();
    EXPECT_EQ(owners, (Log{"b"}));
    EXPECT_TRUE(lockable_from_another_fiber(m));
  });
}

TEST(Mutex, AFiberKilledAfterBeingHandedTheLockPassesItToTheNextWaiter) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    Log owners;
    auto make_locker = [&](std::string name) {
      return weft::spawn([&, name] {
        m.lock();
        owners.push_back(name);
        m.unlock();
      });
    };
    m.lock();
    auto a = make_locker("a");
    auto b = make_locker("b");
    weft::yield();
    m.unlock();  // handed to a, which has not resumed yet
    a.kill();
    EXPECT_THROW(a.wait(), weft::FiberExit);
    b.wait();
    EXPECT_EQ(owners, (Log{"b"}));
    EXPECT_TRUE(lockable_from_another_fiber(m));
  });
}

TEST(Mutex, TryLockForReturnsFalseAfterTheTimeoutWhileHeld) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    m.lock();
    auto other = weft::spawn([&] { return m.try_lock_for(2ms); });
    EXPECT_FALSE(other.wait());
    m.unlock();
    EXPECT_TRUE(m.try_lock());  // no waiter left behind
    m.unlock();
  });
}

TEST(Mutex, TryLockForSucceedsOnceTheOwnerUnlocks) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Mutex m;
    m.lock();
    auto other = weft::spawn([&] {
      const bool got = m.try_lock_for(1h);
      if (got) m.unlock();
      return got;
    });
    weft::yield();
    m.unlock();
    EXPECT_TRUE(other.wait());
  });
}

TEST(Mutex, AHundredFibersIncrementingUnderTheLockNeverOverlapAndCountEveryIncrement) {
  weft::run([] {
    weft::Timeout watchdog(60s);
    weft::Mutex m;
    int counter = 0;
    int inside = 0;
    int most_inside = 0;
    std::vector<weft::GreenThread<void>> workers;
    for (int f = 0; f < 100; ++f) {
      workers.push_back(weft::spawn([&] {
        for (int i = 0; i < 100; ++i) {
          m.lock();
          most_inside = std::max(most_inside, ++inside);
          weft::yield();
          ++counter;
          --inside;
          m.unlock();
        }
      }));
    }
    for (auto& w : workers)
      w.wait();
    EXPECT_EQ(counter, 10000);
    EXPECT_EQ(most_inside, 1);
  });
}

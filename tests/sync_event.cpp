// Event<T>: one send wakes every waiter with the value or the exception;
// eventlet's Event semantics, FIFO wake order, deferred wake-up.

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

TEST(Event, WaitReturnsTheValueSentByAnotherFiber) {
  weft::run([] {
    weft::Event<std::string> event;
    weft::spawn([&] { event.send("hello"); });
    EXPECT_EQ(event.wait(), "hello");
  });
}

TEST(Event, WaitAfterSendReturnsTheValueAgainWithoutSuspending) {
  weft::run([] {
    weft::Event<int> event;
    event.send(7);
    bool other_ran = false;
    weft::spawn([&] { other_ran = true; });
    EXPECT_EQ(event.wait(), 7);
    EXPECT_EQ(event.wait(), 7);
    EXPECT_FALSE(other_ran);  // no suspension: the spawned fiber has not run
  });
}

TEST(Event, EveryWaiterWakesInTheOrderItStartedWaiting) {
  weft::run([] {
    weft::Event<int> event;
    std::vector<int> woke;
    std::vector<weft::GreenThread<void>> waiters;
    for (int i = 0; i < 5; ++i) {
      waiters.push_back(weft::spawn([&, i] {
        EXPECT_EQ(event.wait(), 42);
        woke.push_back(i);
      }));
    }
    weft::yield();
    event.send(42);
    for (auto& w : waiters)
      w.wait();
    EXPECT_EQ(woke, (std::vector<int>{0, 1, 2, 3, 4}));
  });
}

TEST(Event, SendExceptionIsRethrownToEveryWaiterAndLaterWait) {
  weft::run([] {
    weft::Event<int> event;
    auto waiter = weft::spawn([&] { return event.wait(); });
    weft::yield();
    event.send_exception(std::make_exception_ptr(std::runtime_error("boom")));
    EXPECT_THROW(waiter.wait(), std::runtime_error);
    EXPECT_THROW(event.wait(), std::runtime_error);
    EXPECT_TRUE(event.has_exception());
  });
}

TEST(Event, SecondSendWithoutResetThrowsLogicError) {
  weft::Event<int> event;
  event.send(1);
  EXPECT_THROW(event.send(2), std::logic_error);
}

TEST(Event, ResetOfAnUnsentEventThrowsLogicError) {
  weft::Event<> event;
  EXPECT_THROW(event.reset(), std::logic_error);
}

TEST(Event, ResetThenSendAgainDeliversTheNewValue) {
  weft::run([] {
    weft::Event<int> event;
    event.send(1);
    event.reset();
    EXPECT_FALSE(event.ready());
    weft::spawn([&] { event.send(2); });
    EXPECT_EQ(event.wait(), 2);
  });
}

TEST(Event, ResetForgetsAnExceptionSent) {
  weft::run([] {
    weft::Event<int> event;
    event.send_exception(std::make_exception_ptr(std::runtime_error("old")));
    event.reset();
    EXPECT_EQ(event.wait_for(1ms), std::nullopt);
  });
}

TEST(Event, WaiterWokenBeforeAResetKeepsTheValueSentToIt) {
  weft::run([] {
    weft::Event<int> event;
    auto waiter = weft::spawn([&] { return event.wait(); });
    weft::yield();
    event.send(5);
    event.reset();  // before the waiter has resumed
    EXPECT_EQ(waiter.wait(), 5);
  });
}

TEST(Event, WaitForReturnsEmptyOnTimeoutWithoutThrowing) {
  weft::run([] {
    weft::Event<int> event;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(event.wait_for(20ms), std::nullopt);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    weft::Event<> done;
    EXPECT_FALSE(done.wait_for(1ms));
  });
}

TEST(Event, WaitForReturnsTheValueSentInTime) {
  weft::run([] {
    weft::Event<int> event;
    weft::spawn_after(1ms, [&] { event.send(3); });
    EXPECT_EQ(event.wait_for(10s), 3);
    weft::Event<> done;
    weft::spawn([&] { done.send(); });
    EXPECT_TRUE(done.wait_for(10s));
  });
}

TEST(Event, TimeoutThatFiresAfterSendButBeforeTheWaiterResumesWins) {
  // eventlet test__event.py::test_send: the wake-up is deferred, so a Timeout
  // that comes due before the woken waiter runs is thrown instead.
  weft::run([] {
    weft::Event<std::string> event;
    auto waiter = weft::spawn([&] {
      weft::Timeout timeout(5ms);
      return event.wait();
    });
    weft::yield();  // the waiter parks
    event.send("hello");
    std::this_thread::sleep_for(10ms);  // hold the hub: the Timeout comes due
    EXPECT_THROW(waiter.wait(), weft::TimeoutError);
    EXPECT_EQ(event.wait(), "hello");  // the value is still there
  });
}

TEST(Event, WaiterKilledAfterSendButBeforeItResumesThrowsFiberExit) {
  weft::run([] {
    weft::Event<int> event;
    auto waiter = weft::spawn([&] { return event.wait(); });
    weft::yield();
    event.send(1);
    waiter.kill();
    EXPECT_THROW(waiter.wait(), weft::FiberExit);
  });
}

TEST(Event, KilledWaiterLeavesNothingBehind) {
  weft::run([] {
    weft::Event<int> event;
    auto doomed = weft::spawn([&] { return event.wait(); });
    auto survivor = weft::spawn([&] { return event.wait(); });
    weft::yield();
    doomed.kill();
    event.send(9);
    EXPECT_THROW(doomed.wait(), weft::FiberExit);
    EXPECT_EQ(survivor.wait(), 9);
  });
}

TEST(Event, SendFromAPlainThreadWakesAFiber) {
  weft::run([] {
    weft::Event<int> event;
    std::thread sender([&] {
      std::this_thread::sleep_for(5ms);
      event.send(11);
    });
    EXPECT_EQ(event.wait(), 11);
    sender.join();
  });
}

TEST(Event, WaitOutsideAHubThrowsNoHubError) {
  weft::Event<int> event;
  EXPECT_THROW(event.wait(), weft::NoHubError);
}

TEST(Event, SendExceptionWithNullThrowsInvalidArgument) {
  weft::Event<int> event;
  EXPECT_THROW(event.send_exception(nullptr), std::invalid_argument);
  EXPECT_FALSE(event.ready());
}

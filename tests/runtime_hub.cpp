// A Hub made by the user and driven from outside (the embedding API).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include <weft/weft.hpp>

#include "runtime/hub_core.hpp"

using namespace std::chrono_literals;

TEST(Hub, OnlyOneHubPerThread) {
  weft::Hub hub;
  EXPECT_THROW(weft::Hub second, std::logic_error);
  EXPECT_EQ(&weft::Hub::current(), &hub);
}

TEST(Hub, SpawnFromOutsideAFiberThenRunOnce) {
  weft::Hub hub;
  int ran = 0;
  auto child = hub.spawn([&] { return ++ran; });
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(hub.next_deadline(), std::chrono::nanoseconds{0});
  hub.run_once();
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(child.dead());
  EXPECT_EQ(child.wait(), 1);
  EXPECT_FALSE(hub.next_deadline().has_value());
}

TEST(Hub, NextDeadlineIsTheTimeToTheNextTimerAndNeverNegative) {
  weft::Hub hub;
  hub.spawn([] { weft::sleep(50ms); });
  hub.run_once();
  auto left = hub.next_deadline();
  ASSERT_TRUE(left.has_value());
  EXPECT_GT(*left, 0ns);
  EXPECT_LE(*left, 50ms);
  hub.spawn([] { weft::sleep(1ms); });
  hub.run_once();
  std::this_thread::sleep_for(3ms);
  EXPECT_EQ(hub.next_deadline(), std::chrono::nanoseconds{0});
}

TEST(Hub, PostFromAnotherThreadWakesABlockedRunOnce) {
  weft::Hub hub;
  std::atomic<bool> posted_ran{false};
  std::atomic<bool> blocking{false};
  weft::detail::HubCore::current()->set_before_blocking_for_test([&] { blocking = true; });
  std::thread poster([&] {
    while (!blocking)  // the hub is about to sleep in its backend
      std::this_thread::yield();
    hub.post([&] { posted_ran = true; });
  });
  while (!posted_ran)
    hub.run_once(10s);
  poster.join();
  EXPECT_TRUE(posted_ran);
}

TEST(Hub, RunReturnsWhenEveryFiberHasEnded) {
  weft::Hub hub;
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    hub.spawn([&, i] {
      weft::sleep(std::chrono::milliseconds(i));
      ++done;
    });
  }
  hub.run();
  EXPECT_EQ(done, 3);
  EXPECT_EQ(hub.live_fibers(), 0u);
}

TEST(Hub, StopFromAnotherThreadEndsRun) {
  weft::Hub hub;
  hub.spawn([] { weft::sleep(1h); });
  std::atomic<bool> blocking{false};
  weft::detail::HubCore::current()->set_before_blocking_for_test([&] { blocking = true; });
  std::thread stopper([&] {
    while (!blocking)  // run() is about to sleep in the backend
      std::this_thread::yield();
    hub.stop();
  });
  hub.run();
  stopper.join();
  EXPECT_EQ(hub.live_fibers(), 1u);  // stop leaves fibers alone; ~Hub kills them
}

TEST(Hub, DestroyingAHubKillsAndUnwindsItsFibers) {
  bool unwound = false;
  {
    weft::Hub hub;
    hub.spawn([&] {
      struct Sentinel {
        bool& flag;
        ~Sentinel() { flag = true; }
      } sentinel{unwound};
      weft::sleep(1h);
    });
    hub.run_once();
  }
  EXPECT_TRUE(unwound);
}

TEST(Hub, PollFdIsAValidDescriptor) {
  weft::Hub hub;
  EXPECT_GE(hub.poll_fd(), 0);
}

TEST(Hub, PostOfAnEmptyCallableIsRejected) {
  weft::Hub hub;
  EXPECT_THROW(hub.post({}), std::invalid_argument);
  EXPECT_THROW(hub.post(std::function<void()>()), std::invalid_argument);
  hub.run_once();  // the hub is unharmed
  int ran = 0;
  hub.post([&] { ++ran; });
  hub.run_once();
  EXPECT_EQ(ran, 1);
}

TEST(Hub, DrivingAHubFromAnotherThreadThrowsLogicError) {
  weft::Hub hub;
  hub.spawn([] { weft::sleep(1h); });
  std::thread([&] {
    EXPECT_THROW(hub.run_once(), std::logic_error);
    EXPECT_THROW(hub.run(), std::logic_error);
    EXPECT_THROW(hub.run_until([] { return false; }), std::logic_error);
    EXPECT_THROW(hub.kill_all(), std::logic_error);
    EXPECT_THROW(static_cast<void>(hub.next_deadline()), std::logic_error);
    EXPECT_THROW(hub.spawn([] {}), std::logic_error);
    try {
      hub.run_once();
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("only on the thread that made it"), std::string::npos);
    }
  }).join();
  hub.run_once();  // still whole on its own thread
  EXPECT_EQ(hub.live_fibers(), 1u);
}

// Before: hubA.spawn from a fiber of hub B ran the fiber on B.
TEST(Hub, SpawnOnAnotherThreadsHubFromAFiberThrowsLogicError) {
  weft::Hub* other = nullptr;
  std::atomic<bool> other_ready{false};
  std::atomic<bool> done{false};
  std::thread owner([&] {
    weft::Hub hub;
    other = &hub;
    other_ready = true;
    while (!done)
      hub.run_once(1ms);
  });
  while (!other_ready)
    std::this_thread::yield();
  weft::run([&] {
    EXPECT_THROW(other->spawn([] {}), std::logic_error);
    EXPECT_EQ(weft::Hub::current().live_fibers(), 1u);  // nothing landed on this hub
  });
  done = true;
  owner.join();
}

// Destroyed on a foreign thread, a hub must neither call std::terminate (its
// io_uring refuses a second issuer) nor leave the owner's thread pointing at
// freed memory. It throws and leaks, so the check runs in a child process.
TEST(HubDeathTest, DestroyingAHubOnAnotherThreadThrowsLogicError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weft::Hub* hub = nullptr;
        std::thread([&] { hub = new weft::Hub; }).join();
        bool caught = false;
        try {
          delete hub;
        } catch (const std::logic_error& e) {
          caught = std::string(e.what()).find("destroyed on the thread that made it") !=
                   std::string::npos;
        }
        std::_Exit(caught ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

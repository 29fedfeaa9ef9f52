// A Hub made by the user and driven from outside (the embedding API).

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <weft/weft.hpp>

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
  std::thread poster([&] {
    std::this_thread::sleep_for(5ms);
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
  std::thread stopper([&] {
    std::this_thread::sleep_for(5ms);
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

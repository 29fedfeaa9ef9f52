// kill and cancel: before start, while suspended, from inside, twice.

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {
struct Custom : std::runtime_error {
  Custom() : std::runtime_error("custom") {}
};

// An error whose copies are counted: it lives as long as the fiber that
// ended with it, so it shows whether that fiber's control block was freed.
struct Counted {
  static inline int alive = 0;
  Counted() { ++alive; }
  Counted(const Counted&) { ++alive; }
  ~Counted() { --alive; }
};
}  // namespace

TEST(Kill, BeforeStartTheFunctionNeverRunsAndWaitThrowsFiberExit) {
  weft::run([] {
    bool ran = false;
    auto child = weft::spawn([&] { ran = true; });
    child.kill();
    EXPECT_TRUE(child.dead());
    EXPECT_FALSE(child.started());
    EXPECT_THROW(child.wait(), weft::FiberExit);
    weft::sleep(1ms);
    EXPECT_FALSE(ran);
  });
}

TEST(Kill, BeforeStartRunsTheLinksInTheKiller) {
  weft::run([] {
    std::vector<std::string> log;
    auto child = weft::spawn([] {});
    child.link([&] { log.push_back("link"); });
    child.kill();
    log.push_back("after kill");
    EXPECT_EQ(log, (std::vector<std::string>{"link", "after kill"}));
  });
}

TEST(Kill, BeforeStartWithACustomExceptionNeverThrowsInTheKiller) {  // eventlet#310
  weft::run([] {
    auto child = weft::spawn([] { return 1; });
    EXPECT_NO_THROW(child.kill(std::make_exception_ptr(Custom{})));
    EXPECT_THROW(child.wait(), Custom);
  });
}

// A kill from a plain thread is posted to the fiber's hub. A hub that ends
// before it runs the post drops it; the fiber it names must still be freed.
TEST(Kill, APostedKillThatItsHubNeverRunsStillLetsTheFiberGo) {
  weft::GreenThread<void> child;
  {
    weft::Hub hub;
    child = hub.spawn([] {});
    std::thread([&] { child.kill(); }).join();
    child.kill(std::make_exception_ptr(Counted{}));  // on its hub's thread: ends it now
    ASSERT_TRUE(child.dead());
  }  // the hub ends with the first kill still posted
  EXPECT_THROW(child.wait(), Counted);
  EXPECT_EQ(Counted::alive, 1);
  child = {};
  EXPECT_EQ(Counted::alive, 0);
}

TEST(Kill, ASecondKillAndAKillOfADeadFiberAreNoOps) {
  weft::run([] {
    auto child = weft::spawn([] { return 5; });
    EXPECT_EQ(child.wait(), 5);
    child.kill();
    child.kill();
    EXPECT_EQ(child.wait(), 5);

    auto sleeper = weft::spawn([] { weft::sleep(1h); });
    weft::yield();
    sleeper.kill();
    sleeper.kill();
    EXPECT_THROW(sleeper.wait(), weft::FiberExit);
  });
}

TEST(Kill, WhileSuspendedThrowsAtTheSuspensionPointAndUnwindsTheStack) {
  weft::run([] {
    bool destructor_ran = false;
    struct Sentinel {
      bool& flag;
      ~Sentinel() { flag = true; }
    };
    auto child = weft::spawn([&] {
      Sentinel sentinel{destructor_ran};
      weft::sleep(1h);
    });
    weft::yield();
    EXPECT_TRUE(child.started());
    child.kill();
    // kill yields once: the target has unwound by the time it returns.
    EXPECT_TRUE(destructor_ran);
    EXPECT_TRUE(child.dead());
    EXPECT_THROW(child.wait(), weft::FiberExit);
  });
}

TEST(Kill, LeavesNoTimerBehindForAKilledSleeper) {
  weft::run([] {
    auto child = weft::spawn([] { weft::sleep(1h); });
    weft::yield();
    child.kill();
    EXPECT_FALSE(weft::Hub::current().next_deadline().has_value());
  });
}

TEST(Kill, ACatchOfStdExceptionDoesNotSwallowIt) {
  weft::run([] {
    bool swallowed = false;
    auto child = weft::spawn([&] {
      try {
        weft::sleep(1h);
      } catch (const std::exception&) {
        swallowed = true;
      }
    });
    weft::yield();
    child.kill();
    EXPECT_FALSE(swallowed);
    EXPECT_THROW(child.wait(), weft::FiberExit);
  });
}

TEST(Kill, AFiberMayCatchFiberExitAndReturnAValue) {
  weft::run([] {
    auto child = weft::spawn([] {
      try {
        weft::sleep(1h);
      } catch (const weft::FiberExit&) {
        return 7;
      }
      return 0;
    });
    weft::yield();
    child.kill();
    EXPECT_EQ(child.wait(), 7);
  });
}

TEST(Kill, FromInsideItselfThrowsAtOnce) {
  weft::run([] {
    auto self = std::make_shared<weft::GreenThread<int>>();
    bool after = false;
    *self = weft::spawn([&, self] {
      self->kill();
      after = true;
      return 1;
    });
    EXPECT_THROW(self->wait(), weft::FiberExit);
    EXPECT_FALSE(after);
    *self = {};
  });
}

TEST(Kill, WithACustomExceptionWhileSuspended) {
  weft::run([] {
    auto child = weft::spawn([] { weft::sleep(1h); });
    weft::yield();
    child.kill(std::make_exception_ptr(Custom{}));
    EXPECT_THROW(child.wait(), Custom);
  });
}

TEST(Kill, AFiberThatYieldedGetsTheKillWhenItResumes) {
  weft::run([] {
    int steps = 0;
    auto child = weft::spawn([&] {
      for (;;) {
        ++steps;
        weft::yield();
      }
    });
    weft::yield();
    weft::yield();
    child.kill();
    const int at_kill = steps;
    weft::yield();
    EXPECT_EQ(steps, at_kill);
    EXPECT_THROW(child.wait(), weft::FiberExit);
  });
}

TEST(Kill, AWaitingFiberIsKilledWithoutDisturbingOtherWaiters) {
  weft::run([] {
    auto source = weft::spawn([] {
      weft::sleep(2ms);
      return 1;
    });
    auto doomed = weft::spawn([source] { return source.wait(); });
    auto survivor = weft::spawn([source] { return source.wait(); });
    weft::yield();
    doomed.kill();
    EXPECT_THROW(doomed.wait(), weft::FiberExit);
    EXPECT_EQ(survivor.wait(), 1);
  });
}

TEST(Cancel, BeforeStartPreventsTheRun) {
  weft::run([] {
    bool ran = false;
    auto child = weft::spawn_after(50ms, [&] { ran = true; });
    child.cancel();
    EXPECT_TRUE(child.dead());
    EXPECT_THROW(child.wait(), weft::FiberExit);
    EXPECT_FALSE(ran);
    EXPECT_FALSE(weft::Hub::current().next_deadline().has_value());
  });
}

TEST(Cancel, AfterStartHasNoEffect) {
  weft::run([] {
    auto child = weft::spawn_after(0ms, [] {
      weft::sleep(1ms);
      return 22;
    });
    weft::sleep(100us);
    weft::yield();
    ASSERT_TRUE(child.started());
    child.cancel();
    EXPECT_EQ(child.wait(), 22);
  });
}

// weft::run: the result, the exception, and what happens to leftover fibers.

#include <dirent.h>
#include <gtest/gtest.h>

#include <thread>

#include <string>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {
int open_fd_count() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir))
    count += entry->d_name[0] != '.';
  closedir(dir);
  return count;
}
}  // namespace

TEST(Run, ReturnsTheResultOfMain) {
  EXPECT_EQ(weft::run([] { return std::string("done"); }), "done");
}

TEST(Run, RethrowsTheExceptionOfMain) {
  EXPECT_THROW(weft::run([]() -> int { throw std::out_of_range("main failed"); }),
               std::out_of_range);
}

TEST(Run, KillsAndUnwindsFibersStillAliveWhenMainReturns) {
  int unwound = 0;
  bool never_started_ran = false;
  struct Sentinel {
    int& count;
    ~Sentinel() { ++count; }
  };
  weft::run([&] {
    for (int i = 0; i < 3; ++i) {
      weft::spawn_n([&] {
        Sentinel s{unwound};
        weft::sleep(1h);
      });
    }
    weft::spawn_n([&] {
      Sentinel s{unwound};
      for (;;)
        weft::yield();
    });
    weft::yield();
    weft::spawn_n([&] { never_started_ran = true; });
  });
  EXPECT_EQ(unwound, 4);
  EXPECT_FALSE(never_started_ran);
}

TEST(Run, KillsAgainAFiberThatCatchesFiberExitAndSuspendsAgain) {
  int catches = 0;
  weft::run([&] {
    weft::spawn_n([&] {
      try {
        weft::sleep(1h);
      } catch (const weft::FiberExit&) {
        ++catches;
      }
      weft::sleep(1h);
    });
    weft::yield();
  });
  EXPECT_EQ(catches, 1);
}

TEST(Run, ANestedRunOnTheSameThreadIsALogicError) {
  weft::run([] { EXPECT_THROW(weft::run([] {}), std::logic_error); });
}

TEST(Run, LeavesNoFileDescriptorOpen) {
  const int before = open_fd_count();
  weft::run([] { weft::spawn([] { weft::sleep(1ms); }).wait(); });
  EXPECT_EQ(open_fd_count(), before);
}

TEST(Run, CanRunAgainOnTheSameThreadAndOnOtherThreads) {
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(weft::run([i] { return i; }), i);
  int on_thread = -1;
  std::thread([&] { on_thread = weft::run([] { return 9; }); }).join();
  EXPECT_EQ(on_thread, 9);
}

TEST(Run, ReportsTheBackendItRunsOn) {
  weft::run([] {
    const std::string name = weft::backend_name();
    EXPECT_TRUE(name == "io_uring" || name == "epoll") << name;
    if (const char* forced = std::getenv("WEFT_BACKEND")) {
      EXPECT_EQ(name, forced);
    }
  });
}

// Before: "terminate called after throwing an instance of 'weft::FiberExit'"
// and nothing more. (On a thread of its own, so that the FiberExit leaves the
// thread's function and reaches std::terminate, as it does when it leaves
// main.)
TEST(RunDeathTest, AnUncaughtKillOfMainSaysWhatHappened) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(std::thread([] { weft::run([] { throw weft::FiberExit{}; }); }).join(),
               "weft: weft::FiberExit: fiber killed, and nothing caught the FiberExit");
  EXPECT_DEATH(std::thread([] {
                 weft::Runtime runtime(weft::RuntimeOptions{.hubs = 1});
                 runtime.run([] { throw weft::FiberExit{}; });
               }).join(),
               "nothing caught the FiberExit");
}

// Fiber names, ids and dump_fibers.

#include <gtest/gtest.h>

#include <string>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

TEST(Debug, DumpListsLiveFibersWithNameStateAndWhatTheyWaitOn) {
  weft::run([] {
    auto sleeper = weft::spawn(weft::SpawnOptions{.name = "napper"}, [] { weft::sleep(1h); });
    auto waiter = weft::spawn(weft::SpawnOptions{.name = "watcher"}, [sleeper] { sleeper.wait(); });
    weft::spawn_n(weft::SpawnOptions{.name = "unstarted"}, [] {});
    weft::yield();
    weft::spawn_n(weft::SpawnOptions{.name = "fresh"}, [] {});
    const std::string dump = weft::dump_fibers();
    EXPECT_NE(dump.find("napper suspended waiting on sleep"), std::string::npos) << dump;
    EXPECT_NE(dump.find("watcher suspended waiting on GreenThread::wait"), std::string::npos)
        << dump;
    EXPECT_NE(dump.find("fresh created"), std::string::npos) << dump;
    EXPECT_NE(dump.find("main running"), std::string::npos) << dump;
    EXPECT_EQ(dump.find("unstarted"), std::string::npos) << dump;  // it has ended
    sleeper.kill();
  });
}

TEST(Debug, ThisFiberIdAndName) {
  EXPECT_EQ(weft::this_fiber::id(), 0u);
  weft::run([] {
    auto child = weft::spawn(weft::SpawnOptions{.name = "named"}, [] {
      EXPECT_EQ(weft::this_fiber::name(), "named");
      weft::this_fiber::set_name("renamed");
      return weft::this_fiber::id();
    });
    const auto id = child.wait();
    EXPECT_EQ(id, child.id());
    EXPECT_EQ(child.name(), "renamed");
    EXPECT_NE(id, weft::this_fiber::id());
  });
}

TEST(Debug, DumpOutsideAHubIsEmpty) {
  EXPECT_EQ(weft::dump_fibers(), "");
}

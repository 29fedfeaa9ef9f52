// GreenThread::link / unlink.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

TEST(Link, CallbacksRunInOrderWithTheHandleOnceTheResultIsAvailable) {
  weft::run([] {
    std::vector<std::string> log;
    auto child = weft::spawn([] { return 4; });
    child.link(
        [&](weft::GreenThread<int>& gt) { log.push_back("first:" + std::to_string(gt.wait())); });
    child.link([&] { log.push_back("second"); });
    EXPECT_EQ(child.wait(), 4);
    EXPECT_EQ(log, (std::vector<std::string>{"first:4", "second"}));
  });
}

TEST(Link, AfterTheFiberEndedRunsImmediatelyInTheCaller) {
  weft::run([] {
    auto child = weft::spawn([] { return 1; });
    child.wait();
    bool called = false;
    child.link([&] { called = true; });
    EXPECT_TRUE(called);
  });
}

TEST(Link, ALinkAddedFromALinkRunsOnceWithoutRecursion) {
  weft::run([] {
    int inner_calls = 0;
    int outer_calls = 0;
    auto child = weft::spawn([] {});
    child.link([&](weft::GreenThread<void>& gt) {
      ++outer_calls;
      gt.link([&] { ++inner_calls; });
      EXPECT_EQ(inner_calls, 0);  // not run re-entrantly
    });
    child.wait();
    weft::yield();
    EXPECT_EQ(outer_calls, 1);
    EXPECT_EQ(inner_calls, 1);
  });
}

TEST(Link, AThrowingCallbackIsReportedAndTheOthersStillRun) {
  std::vector<std::string> log;
  int reports = 0;
  weft::run([&] {
    weft::Hub::current().set_error_handler(
        [&](std::string_view, std::exception_ptr) { ++reports; });
    auto child = weft::spawn([] { return 2; });
    child.link([&] { log.push_back("one"); });
    child.link([]() { throw std::runtime_error("link failed"); });
    child.link([&] { log.push_back("three"); });
    EXPECT_EQ(child.wait(), 2);  // the real result is untouched
    weft::yield();
  });
  EXPECT_EQ(log, (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(reports, 1);
}

TEST(Link, UnlinkRemovesACallbackOnce) {
  weft::run([] {
    int calls = 0;
    auto child = weft::spawn([] { weft::sleep(1ms); });
    const auto id = child.link([&] { ++calls; });
    EXPECT_TRUE(child.unlink(id));
    EXPECT_FALSE(child.unlink(id));
    EXPECT_FALSE(child.unlink(12345));
    child.wait();
    EXPECT_EQ(calls, 0);
  });
}

TEST(Link, RunsWhenTheFiberIsKilledWhileSuspended) {
  weft::run([] {
    bool linked = false;
    auto child = weft::spawn([] { weft::sleep(1h); });
    child.link([&](weft::GreenThread<void>& gt) {
      linked = true;
      EXPECT_THROW(gt.wait(), weft::FiberExit);
    });
    weft::yield();
    child.kill();
    EXPECT_TRUE(linked);
  });
}

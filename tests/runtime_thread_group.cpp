// ThreadGroup (oslo.service threadgroup): oslo's own checks on virtual time,
// with exact times, plus what weft adds (the caller is never killed or waited
// for, cancel never spins, bad input) and one stop on real time.

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

#include "tests/fd_leak_check.hpp"
#include "tests/log_capture.hpp"
#include "tests/virtual_time.hpp"

using namespace std::chrono_literals;
using Seconds = std::chrono::duration<double>;

namespace {

using weft_test::exact;
using weft_test::LogCapture;
using weft_test::run_virtual;
using weft_test::since;

class ThreadGroupTest : public weft_test::FdLeakCheck {};

}  // namespace

TEST_F(ThreadGroupTest, AThreadLeavesTheGroupWhenItEndsHoweverItEnds) {
  run_virtual([] {
    weft::ThreadGroup group;
    auto returns = group.add_thread([] { weft::sleep(1s); });
    auto throws = group.add_thread([] {
      weft::sleep(2s);
      throw std::runtime_error("boom");
    });
    auto killed = group.add_thread([] { weft::sleep(10s); });
    EXPECT_EQ(group.thread_count(), 3u);
    weft::sleep(1.5s);
    EXPECT_EQ(group.thread_count(), 2u);
    killed.kill();
    EXPECT_EQ(group.thread_count(), 1u);
    weft::sleep(1s);
    EXPECT_EQ(group.thread_count(), 0u);
    EXPECT_THROW(throws.wait(), std::runtime_error);
  });
}

TEST_F(ThreadGroupTest, AddThreadSuspendsWhileThePoolIsFull) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group(2);
    group.add_thread([] { weft::sleep(1s); });
    group.add_thread([] { weft::sleep(3s); });
    group.add_thread([] {});  // waits for a free slot: the first thread's, at 1 s
    EXPECT_NEAR(since(origin), 1.0, exact);
    group.wait();
    EXPECT_NEAR(since(origin), 3.0, exact);
  });
}

TEST_F(ThreadGroupTest, AddThreadFromAGroupThreadWhileThePoolIsFullRunsInline) {
  run_virtual([] {
    weft::ThreadGroup group(1);
    bool inner_ran = false;
    auto outer = group.add_thread([&] {
      auto inner = group.add_thread([&] { inner_ran = true; });  // no deadlock
      EXPECT_TRUE(inner.dead());
    });
    outer.wait();
    EXPECT_TRUE(inner_ran);
  });
}

TEST_F(ThreadGroupTest, TimersWithArgumentsAndOptionsRunAndStayInTheGroup) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group;
    std::vector<double> fixed;
    std::vector<double> delayed;
    std::vector<double> dynamic;
    auto timer = group.add_timer(
        1s, [&](double scale) { fixed.push_back(since(origin) * scale); }, 10.0);
    auto later =
        group.add_timer(1s, weft::TimerOptions{.initial_delay = 2s, .stop_on_exception = false},
                        [&] { delayed.push_back(since(origin)); });
    auto poller = group.add_dynamic_timer(
        weft::TimerOptions{.initial_delay = 1s, .periodic_interval_max = 2s},
        [&](const std::string& tag) -> std::optional<Seconds> {
          dynamic.push_back(since(origin));
          EXPECT_EQ(tag, "arg");
          return 5s;  // capped at 2 s
        },
        std::string("arg"));
    EXPECT_EQ(group.timer_count(), 3u);
    EXPECT_TRUE(timer->running());
    weft::sleep(3.5s);
    EXPECT_EQ(fixed, (std::vector<double>{0, 10, 20, 30}));
    EXPECT_EQ(delayed, (std::vector<double>{2, 3}));
    EXPECT_EQ(dynamic, (std::vector<double>{1, 3}));
    group.stop_timers();
    EXPECT_EQ(group.timer_count(), 0u);
    EXPECT_FALSE(timer->running());
    EXPECT_FALSE(poller->running());
    EXPECT_FALSE(later->running());
  });
}

TEST_F(ThreadGroupTest, AStoppedTimerStaysInTheGroupUntilTimerDone) {
  run_virtual([] {
    weft::ThreadGroup group;
    auto timer = group.add_timer(1s, [] {});
    auto dynamic = group.add_dynamic_timer([]() -> std::optional<Seconds> { return 1s; });
    EXPECT_TRUE(dynamic->running());
    timer->stop();
    dynamic->stop();
    EXPECT_EQ(group.timer_count(), 2u);
    group.timer_done(timer);
    EXPECT_EQ(group.timer_count(), 1u);
    group.timer_done(timer);  // not there any more: ignored
    group.timer_done(dynamic);
    EXPECT_EQ(group.timer_count(), 0u);
  });
}

TEST_F(ThreadGroupTest, StopKillsEveryThreadAtOnceAndForgetsTheTimers) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group;
    for (int i = 0; i < 3; ++i)
      group.add_thread([] { weft::sleep(1s); });
    group.add_timer(1s, [] {});
    weft::sleep(0s);
    group.stop();
    EXPECT_NEAR(since(origin), 0.0, exact);
    EXPECT_EQ(group.thread_count(), 0u);
    EXPECT_EQ(group.timer_count(), 0u);
  });
}

TEST_F(ThreadGroupTest, StopGracefullyWaitsForEveryThreadWithoutKilling) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group;
    int finished = 0;
    for (int i = 0; i < 3; ++i)
      group.add_thread([&] {
        weft::sleep(1s);
        ++finished;
      });
    group.add_timer(0.3s, [] {});
    group.stop(true);
    EXPECT_NEAR(since(origin), 1.0, exact);
    EXPECT_EQ(finished, 3);
    EXPECT_EQ(group.thread_count(), 0u);
    EXPECT_EQ(group.timer_count(), 0u);
  });
}

TEST_F(ThreadGroupTest, StopFromAGroupThreadKillsTheOthersAndSparesTheCaller) {
  run_virtual([] {
    weft::ThreadGroup group;
    weft::Event<> stopped;
    std::size_t left_after_stop = 0;
    for (int arg = 0; arg < 4; ++arg) {
      group.add_thread([&, arg] {
        if (arg != 1) return weft::sleep(10s);
        weft::sleep(1s);
        group.stop();
        left_after_stop = group.thread_count();
        stopped.send();
      });
    }
    stopped.wait();
    EXPECT_EQ(left_after_stop, 1u);  // the stopper survives
    group.wait();
    EXPECT_EQ(group.thread_count(), 0u);
  });
}

TEST_F(ThreadGroupTest, WaitSwallowsWhatItsThreadsEndWithAndLogsIt) {
  LogCapture log;
  run_virtual([] {
    weft::ThreadGroup group;
    group.add_thread([] {
      weft::sleep(1s);
      throw std::runtime_error("disk on fire");
    });
    auto victim = group.add_thread([] { weft::sleep(5s); });
    weft::spawn([=] {
      weft::sleep(0.5s);
      victim.kill();
    });
    group.wait();
  });
  const auto lines = log.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].level, weft::LogLevel::error);
  EXPECT_NE(lines[0].text.find("disk on fire"), std::string::npos) << lines[0].text;
  EXPECT_EQ(lines[1].level, weft::LogLevel::debug);  // the kill
}

TEST_F(ThreadGroupTest, WaitWaitsForTimersUntilTheyAreStopped) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group;
    auto timer = group.add_timer(1s, [] {});
    weft::spawn([=] {
      weft::sleep(2.5s);
      timer->stop();
    });
    group.wait();
    EXPECT_NEAR(since(origin), 2.5, exact);
  });
}

TEST_F(ThreadGroupTest, StopTimersWithWaitLetsARunningCallbackFinish) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group;
    bool callback_finished = false;
    group.add_timer(10s, [&] {
      weft::sleep(2s);
      callback_finished = true;
    });
    weft::sleep(1s);
    group.stop_timers(true);
    EXPECT_TRUE(callback_finished);
    EXPECT_NEAR(since(origin), 2.0, exact);
  });
}

TEST_F(ThreadGroupTest, StopTimersWithoutWaitNeverInterruptsARunningCallback) {
  run_virtual([] {
    weft::ThreadGroup group;
    bool callback_finished = false;
    group.add_timer(10s, [&] {
      weft::sleep(2s);
      callback_finished = true;
    });
    weft::sleep(1s);
    group.stop_timers();
    EXPECT_EQ(group.timer_count(), 0u);
    weft::sleep(2s);
    EXPECT_TRUE(callback_finished);
  });
}

TEST_F(ThreadGroupTest, StopFromATimerCallbackDoesNotWaitForItself) {
  run_virtual([] {
    weft::ThreadGroup group;
    weft::Event<> done;
    group.add_timer(1s, [&] {
      group.stop(true);
      done.send();
    });
    done.wait();
    EXPECT_EQ(group.timer_count(), 0u);
  });
}

TEST_F(ThreadGroupTest, CancelEarlyPreventsThreadsThatHaveNotStarted) {
  run_virtual([] {
    weft::ThreadGroup group;
    bool ran = false;
    group.add_thread([&] { ran = true; });
    group.cancel();
    EXPECT_EQ(group.thread_count(), 0u);
    weft::sleep(1s);
    EXPECT_FALSE(ran);
  });
}

TEST_F(ThreadGroupTest, CancelLateLeavesARunningThreadAlone) {
  run_virtual([] {
    weft::ThreadGroup group;
    group.add_thread([] { weft::sleep(1s); });
    weft::sleep(0s);
    group.cancel();
    EXPECT_EQ(group.thread_count(), 1u);
    group.wait();
  });
}

TEST_F(ThreadGroupTest, CancelWithATimeoutStopsThreadsThatOutliveIt) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group;
    auto slow = group.add_thread([] { weft::sleep(0.3s); });
    weft::sleep(0s);
    group.cancel(0.2s, 0.1s);
    EXPECT_EQ(group.thread_count(), 0u);
    EXPECT_TRUE(slow.dead());
    EXPECT_THROW(slow.wait(), weft::FiberExit);
    // Looked at 0, 0.1 and 0.2 s; stopped at the first look past the timeout.
    EXPECT_NEAR(since(origin), 0.2, exact);
  });
}

TEST_F(ThreadGroupTest, CancelWithATimeoutReturnsWhenTheThreadsEndFirstAndLeavesTimers) {
  run_virtual([] {
    const auto origin = weft::now();
    weft::ThreadGroup group;
    group.add_thread([] { weft::sleep(0.25s); });
    group.add_timer(1s, [] {});
    weft::sleep(0s);
    group.cancel(5s, 0.1s);
    EXPECT_NEAR(since(origin), 0.3, exact);  // the first look after the thread ended
    EXPECT_EQ(group.timer_count(), 1u);
    group.stop();
  });
}

TEST_F(ThreadGroupTest, BadInputIsAnErrorNotAHang) {
  EXPECT_THROW(weft::ThreadGroup{}, weft::NoHubError);
  run_virtual([] {
    EXPECT_THROW(weft::ThreadGroup(0), std::invalid_argument);
    weft::ThreadGroup group;
    EXPECT_THROW(group.add_timer(-1s, [] {}), std::invalid_argument);
    EXPECT_THROW(group.cancel(-1s), std::invalid_argument);
    EXPECT_THROW(group.cancel(1s, 0s), std::invalid_argument);
    EXPECT_EQ(group.timer_count(), 0u);
  });
}

TEST_F(ThreadGroupTest, AGroupUsedFromAnotherHubIsALogicError) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    weft::ThreadGroup group;
    auto elsewhere = runtime.spawn_on(1, [&] {
      EXPECT_THROW(group.add_thread([] {}), std::logic_error);
      EXPECT_THROW(group.stop(), std::logic_error);
      EXPECT_THROW(group.thread_count(), std::logic_error);
    });
    elsewhere.wait();
  });
}

TEST_F(ThreadGroupTest, TheDestructorStopsTheGroup) {
  run_virtual([] {
    bool finished = false;
    weft::GreenThread<void> thread;
    std::shared_ptr<weft::FixedIntervalLoopingCall<>> timer;
    {
      weft::ThreadGroup group;
      thread = group.add_thread([&] {
        weft::sleep(10s);
        finished = true;
      });
      timer = group.add_timer(1s, [] {});
      weft::sleep(0s);
    }
    EXPECT_TRUE(thread.dead());
    EXPECT_FALSE(finished);
    EXPECT_FALSE(timer->running());
  });
}

TEST_F(ThreadGroupTest, StopOnRealTimeKillsASleeperWithoutWaitingForIt) {
  weft::run([] {
    weft::ThreadGroup group;
    auto sleeper = group.add_thread([] { weft::sleep(1h); });
    int ticks = 0;
    group.add_timer(20ms, [&] { ++ticks; });
    const auto started = std::chrono::steady_clock::now();
    weft::sleep(50ms);
    group.stop();
    EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);  // nothing early
    EXPECT_GE(ticks, 1);
    EXPECT_TRUE(sleeper.dead());
    EXPECT_EQ(group.thread_count(), 0u);
  });
}

// Looping calls (oslo.service loopingcall): oslo's own checks on virtual time,
// with exact times, plus what weft fixes (wait() never hangs, an absolute
// fixed-interval schedule, no busy loop) and a few checks on real time.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "tests/fd_leak_check.hpp"
#include "tests/log_capture.hpp"
#include "tests/virtual_time.hpp"

using namespace std::chrono_literals;
using Seconds = std::chrono::duration<double>;
using weft::BackOffLoopingCall;
using weft::BackOffOptions;
using weft::DynamicLoopingCall;
using weft::FixedIntervalLoopingCall;
using weft::FixedIntervalWithTimeoutLoopingCall;
using weft::LoopingCallDone;

namespace {

using weft_test::exact;
using weft_test::expect_times;
using weft_test::LogCapture;
using weft_test::run_virtual;
using weft_test::since;

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

class LoopingCallTest : public weft_test::FdLeakCheck {};

}  // namespace

// --- fixed interval -------------------------------------------------------------

TEST_F(LoopingCallTest, FixedIntervalCallsStartAtOslosDriftCheckTimes) {
  // oslo's test_interval_adjustment: interval 1.01 s, calls that take 0.99,
  // 2.0 and 1.02 s. The second and third overrun, so the next call follows
  // at once.
  LogCapture log;
  std::vector<double> starts;
  const std::vector<Seconds> takes = {990ms, 2000ms, 1020ms};
  const bool result = run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() > takes.size()) throw LoopingCallDone{};
      weft::sleep(takes[starts.size() - 1]);
    });
    call.start(1.01s);
    return call.wait();
  });
  EXPECT_TRUE(result);
  expect_times(starts, {0, 1.01, 3.01, 4.03});
  const auto warnings = log.at(weft::LogLevel::warning);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_TRUE(contains(warnings[0].text, "run outlasted interval by 0.99 sec")) << warnings[0].text;
  EXPECT_TRUE(contains(warnings[1].text, "run outlasted interval by 0.01 sec")) << warnings[1].text;
}

TEST_F(LoopingCallTest, FixedIntervalRestartsItsScheduleAfterAnOverrunWithoutABurst) {
  // The call due at 1 s runs until 4.5 s: the calls due at 2, 3 and 4 s are
  // not made up for; the next follows at once, and then every second.
  LogCapture log;
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 2) weft::sleep(3.5s);
      if (starts.size() == 5) throw LoopingCallDone{};
    });
    call.start(1s);
    call.wait();
  });
  expect_times(starts, {0, 1, 4.5, 5.5, 6.5});
  const auto warnings = log.at(weft::LogLevel::warning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0].text, "run outlasted interval by 2.50 sec")) << warnings[0].text;
}

TEST_F(LoopingCallTest, FixedIntervalOverrunUnderFiveMillisecondsLogsNothing) {
  LogCapture log;
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{};
      weft::sleep(1004ms);
    });
    call.start(1s);
    call.wait();
  });
  expect_times(starts, {0, 1.004, 2.008});
  EXPECT_TRUE(log.at(weft::LogLevel::warning).empty());
}

TEST_F(LoopingCallTest, FixedIntervalScheduleIsAbsoluteSoRunTimeDoesNotAccumulate) {
  // oslo sleeps `interval - run time` rounded to 10 ms: 0.333 s calls would
  // start 3 ms later every time. weft's calls are due at start + initial
  // delay + k·interval, whatever they take.
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 5) throw LoopingCallDone{};
      weft::sleep(333ms);
    });
    call.start(1s, 0.5s);
    call.wait();
  });
  expect_times(starts, {0.5, 1.5, 2.5, 3.5, 4.5});
}

TEST_F(LoopingCallTest, FixedIntervalPassesCopiesOfItsArgumentsOnEveryCall) {
  std::vector<int> seen;
  run_virtual([&] {
    FixedIntervalLoopingCall call(
        [&](int& counter, const std::string& tag) {
          EXPECT_EQ(tag, "tick");
          seen.push_back(++counter);
          if (counter == 13) throw LoopingCallDone{};
        },
        10, std::string("tick"));
    call.start(1s);
    call.wait();
  });
  EXPECT_EQ(seen, (std::vector<int>{11, 12, 13}));  // the same copy, called again
}

TEST_F(LoopingCallTest, FixedIntervalTakesAMoveOnlyFunction) {
  int calls = 0;
  run_virtual([&] {
    auto owned = std::make_unique<int>(7);
    FixedIntervalLoopingCall call([&calls, owned = std::move(owned)] {
      EXPECT_EQ(*owned, 7);
      if (++calls == 2) throw LoopingCallDone{};
    });
    call.start(10ms);
    call.wait();
  });
  EXPECT_EQ(calls, 2);
}

// --- LoopingCallDone ------------------------------------------------------------

TEST_F(LoopingCallTest, LoopingCallDoneEndsTheLoopAndWaitReturnsItsValue) {
  run_virtual([] {
    FixedIntervalLoopingCall returns_false([] { throw LoopingCallDone{false}; });
    returns_false.start(1s);
    EXPECT_FALSE(returns_false.wait());

    FixedIntervalLoopingCall returns_true([] { throw LoopingCallDone<>{}; });
    returns_true.start(1s);
    EXPECT_TRUE(returns_true.wait());

    FixedIntervalLoopingCall<std::string> returns_text(
        [] { throw LoopingCallDone{std::string("finished")}; });
    returns_text.start(1s);
    EXPECT_EQ(returns_text.wait(), "finished");
  });
}

TEST_F(LoopingCallTest, LoopingCallDoneIsNotSwallowedByACatchOfStdException) {
  run_virtual([] {
    int calls = 0;
    FixedIntervalLoopingCall<int> call([&] {
      try {
        if (++calls == 2) throw LoopingCallDone{42};
      } catch (const std::exception&) {
        ADD_FAILURE() << "LoopingCallDone caught as a std::exception";
      }
    });
    call.start(1s);
    EXPECT_EQ(call.wait(), 42);
  });
}

TEST_F(LoopingCallTest, ALoopingCallDoneOfAnotherTypeEndsTheLoopAndWaitThrowsLogicError) {
  LogCapture log;
  run_virtual([] {
    int calls = 0;
    FixedIntervalLoopingCall<int> call([&] {
      ++calls;
      throw LoopingCallDone{std::string("not an int")};
    });
    call.start(1s);
    EXPECT_THROW(call.wait(), std::logic_error);
    EXPECT_EQ(calls, 1);
    EXPECT_FALSE(call.running());
  });
  EXPECT_EQ(log.at(weft::LogLevel::error).size(), 1u);
}

// --- stop -----------------------------------------------------------------------

TEST_F(LoopingCallTest, StopDuringTheIdleWaitEndsTheLoopAtOnceAndWaitReturnsTrue) {
  int calls = 0;
  double ended = 0;
  run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] { ++calls; });
    call.start(10s);
    weft::spawn([&] {
      weft::sleep(0.5s);
      call.stop();
    });
    EXPECT_TRUE(call.wait());
    ended = since(origin);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_NEAR(ended, 0.5, exact);
}

TEST_F(LoopingCallTest, StopDuringTheInitialDelayMeansNoCallAtAll) {
  int calls = 0;
  double ended = 0;
  run_virtual([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&]() -> std::optional<Seconds> {
      ++calls;
      return 1s;
    });
    call.start(5s);
    weft::sleep(1s);
    call.stop();
    EXPECT_TRUE(call.wait());
    ended = since(origin);
  });
  EXPECT_EQ(calls, 0);
  EXPECT_NEAR(ended, 1, exact);
}

TEST_F(LoopingCallTest, StopDuringACallbackLetsItFinishAndNoCallFollows) {
  int calls = 0;
  bool finished = false;
  double ended = 0;
  run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] {
      ++calls;
      weft::sleep(2s);
      finished = true;
    });
    call.start(0s);
    weft::sleep(1s);
    call.stop();
    EXPECT_FALSE(call.running());
    EXPECT_TRUE(call.wait());
    ended = since(origin);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(finished);
  EXPECT_NEAR(ended, 2, exact);
}

TEST_F(LoopingCallTest, AStopBeforeStartIsForgotten) {
  int calls = 0;
  run_virtual([&] {
    FixedIntervalLoopingCall call([&] {
      if (++calls == 3) throw LoopingCallDone{false};
    });
    call.stop();
    call.start(1s);
    EXPECT_FALSE(call.wait());
  });
  EXPECT_EQ(calls, 3);
}

TEST_F(LoopingCallTest, StopIsIdempotent) {
  run_virtual([] {
    FixedIntervalLoopingCall call([] {});
    call.start(1s);
    call.stop();
    call.stop();
    EXPECT_TRUE(call.wait());
    call.stop();
  });
}

TEST_F(LoopingCallTest, RunningIsTrueFromStartUntilTheLoopEndsOrStop) {
  run_virtual([] {
    int calls = 0;
    FixedIntervalLoopingCall call([&] {
      if (++calls == 2) throw LoopingCallDone{};
    });
    EXPECT_FALSE(call.running());
    call.start(1s);
    EXPECT_TRUE(call.running());
    call.wait();
    EXPECT_FALSE(call.running());

    call.start(1s);
    EXPECT_TRUE(call.running());
    call.stop();
    EXPECT_FALSE(call.running());
    call.wait();
  });
}

// --- exceptions -------------------------------------------------------------------

TEST_F(LoopingCallTest, WithStopOnExceptionAnExceptionEndsTheLoopIsLoggedAndWaitRethrowsIt) {
  LogCapture log;
  int calls = 0;
  run_virtual([&] {
    FixedIntervalLoopingCall call([&] {
      ++calls;
      throw std::runtime_error("disk on fire");
    });
    call.start(1s);
    try {
      call.wait();
      ADD_FAILURE() << "wait() returned";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "disk on fire");
    }
  });
  EXPECT_EQ(calls, 1);
  const auto errors = log.at(weft::LogLevel::error);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(contains(errors[0].text, "disk on fire")) << errors[0].text;
}

TEST_F(LoopingCallTest, WithoutStopOnExceptionAnExceptionIsLoggedAndTheLoopGoesOn) {
  // oslo's test_do_not_stop_on_exception: two failures, then Done(False).
  LogCapture log;
  std::vector<double> starts;
  const bool result = run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{false};
      throw std::runtime_error("attempt " + std::to_string(starts.size()));
    });
    call.start(1s, 0s, false);
    return call.wait();
  });
  EXPECT_FALSE(result);
  expect_times(starts, {0, 1, 2});
  const auto errors = log.at(weft::LogLevel::error);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_TRUE(contains(errors[0].text, "attempt 1")) << errors[0].text;
  EXPECT_TRUE(contains(errors[1].text, "attempt 2")) << errors[1].text;
}

TEST_F(LoopingCallTest, AKillOfTheLoopsFiberEndsItWhateverStopOnExceptionSays) {
  int calls = 0;
  run_virtual([&] {
    FixedIntervalLoopingCall call([&] {
      ++calls;
      throw weft::FiberExit{};
    });
    call.start(1s, 0s, false);
    EXPECT_TRUE(call.wait());
  });
  EXPECT_EQ(calls, 1);
}

// --- start and wait rules -----------------------------------------------------------

TEST_F(LoopingCallTest, StartWhileRunningThrowsLogicError) {
  run_virtual([] {
    FixedIntervalLoopingCall call([] { weft::sleep(1s); });
    call.start(2s);
    EXPECT_THROW(call.start(2s), std::logic_error);
    weft::sleep(0.5s);
    call.stop();  // the callback still runs: not ended yet
    EXPECT_THROW(call.start(2s), std::logic_error);
    call.wait();
  });
}

TEST_F(LoopingCallTest, WaitBeforeStartThrowsLogicError) {
  run_virtual([] {
    FixedIntervalLoopingCall call([] {});
    EXPECT_THROW(call.wait(), std::logic_error);
  });
}

TEST_F(LoopingCallTest, WaitFromTheLoopsOwnCallbackThrowsLogicError) {
  run_virtual([] {
    std::unique_ptr<FixedIntervalLoopingCall<>> call;
    call = std::make_unique<FixedIntervalLoopingCall<>>([&] {
      EXPECT_THROW(call->wait(), std::logic_error);
      throw LoopingCallDone{};
    });
    call->start(1s);
    EXPECT_TRUE(call->wait());
  });
}

TEST_F(LoopingCallTest, ACallThatEndedCanStartAgain) {
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    int run = 0;
    FixedIntervalLoopingCall<int> call([&] {
      starts.push_back(since(origin));
      if (starts.size() % 2 == 0) throw LoopingCallDone{run};
    });
    run = 1;
    call.start(1s);
    EXPECT_EQ(call.wait(), 1);
    run = 2;
    call.start(2s);
    EXPECT_TRUE(call.running());
    EXPECT_EQ(call.wait(), 2);
  });
  expect_times(starts, {0, 1, 1, 3});
}

TEST_F(LoopingCallTest, AnyNumberOfFibersMayWait) {
  run_virtual([] {
    FixedIntervalLoopingCall<int> call([] { throw LoopingCallDone{5}; });
    call.start(1s, 1s);
    int total = 0;
    std::vector<weft::GreenThread<void>> waiters;
    for (int i = 0; i < 3; ++i)
      waiters.push_back(weft::spawn([&] { total += call.wait(); }));
    for (auto& waiter : waiters)
      waiter.wait();
    EXPECT_EQ(total, 15);
  });
}

TEST_F(LoopingCallTest, NegativeDurationsThrowInvalidArgument) {
  run_virtual([] {
    FixedIntervalLoopingCall fixed([] {});
    EXPECT_THROW(fixed.start(-1s), std::invalid_argument);
    EXPECT_THROW(fixed.start(1s, -1ms), std::invalid_argument);
    EXPECT_THROW(fixed.start(Seconds(std::nan(""))), std::invalid_argument);
    EXPECT_FALSE(fixed.running());

    FixedIntervalWithTimeoutLoopingCall with_timeout([] {});
    EXPECT_THROW(with_timeout.start(1s, 0s, true, -1s), std::invalid_argument);

    DynamicLoopingCall dynamic([]() -> std::optional<Seconds> { return 1s; });
    EXPECT_THROW(dynamic.start(-1s), std::invalid_argument);
    EXPECT_THROW(dynamic.start(0s, Seconds(-5)), std::invalid_argument);

    BackOffLoopingCall back_off([] { return true; });
    EXPECT_THROW(back_off.start({.initial_delay = Seconds(-1)}), std::invalid_argument);
    EXPECT_THROW(back_off.start({.starting_interval = Seconds(-1)}), std::invalid_argument);
    EXPECT_THROW(back_off.start({.timeout = Seconds(-1)}), std::invalid_argument);
    EXPECT_THROW(back_off.start({.max_interval = Seconds(-1)}), std::invalid_argument);
    EXPECT_THROW(back_off.start({.min_interval = Seconds(-1)}), std::invalid_argument);
    EXPECT_FALSE(back_off.running());
  });
}

TEST_F(LoopingCallTest, StartAndWaitOutsideAFiberThrowNoHubError) {
  FixedIntervalLoopingCall call([] {});
  EXPECT_THROW(call.start(1s), weft::NoHubError);
  EXPECT_THROW(call.wait(), weft::NoHubError);
  EXPECT_FALSE(call.running());
  call.stop();  // never waits: fine anywhere
}

// --- fibers killed: wait() never hangs ------------------------------------------------

TEST_F(LoopingCallTest, WaitReturnsTrueWhenTheLoopsFiberIsKilledAtHubTeardown) {
  std::optional<bool> seen;
  run_virtual([&] {
    auto call = std::make_shared<FixedIntervalLoopingCall<>>([] {});
    call->start(1s);
    weft::spawn([call, &seen] {
      // The teardown kills this fiber (again each time it waits once more)
      // and the loop's. Once the loop's fiber is gone, wait() returns; oslo's
      // would hang, and so would the teardown, waiting for this fiber.
      for (int attempt = 0; attempt < 5 && !seen; ++attempt) {
        try {
          seen = call->wait();
        } catch (const weft::FiberExit&) {
        }
      }
    });
    weft::sleep(0.5s);
  });
  EXPECT_EQ(seen, true);
}

TEST_F(LoopingCallTest, WaitReturnsTheDefaultWhenTheHubEndedBeforeTheLoopEverRan) {
  auto call = std::make_shared<FixedIntervalLoopingCall<int>>([] { ADD_FAILURE() << "it ran"; });
  run_virtual([&] { call->start(1s); });  // main returns before the loop's fiber starts
  EXPECT_FALSE(call->running());
  // Its fiber was killed before it ever ran; waiting (on another hub) returns at once.
  EXPECT_EQ(run_virtual([&] { return call->wait(); }), 0);
}

// --- the destructor -------------------------------------------------------------------

TEST_F(LoopingCallTest, DestroyingARunningCallKillsItsCallbackAndWaitsForItsFiber) {
  bool unwound = false;
  double destroyed_at = -1;
  run_virtual([&] {
    const auto origin = weft::now();
    {
      FixedIntervalLoopingCall call([&] {
        struct Flag {
          bool& set;
          ~Flag() { set = true; }
        } flag{unwound};
        weft::sleep(10s);
      });
      call.start(1s);
      weft::sleep(1s);
    }
    destroyed_at = since(origin);
    EXPECT_TRUE(unwound);  // before the destructor returned
  });
  EXPECT_NEAR(destroyed_at, 1, exact);
}

TEST_F(LoopingCallTest, DestroyingACallWakesItsWaitersWithTheDefault) {
  run_virtual([] {
    auto call = std::make_unique<FixedIntervalLoopingCall<>>([] {});
    call->start(1s);
    auto waiter = weft::spawn([&call] {
      auto& borrowed = *call;
      return borrowed.wait();
    });
    weft::sleep(2.5s);
    call.reset();
    EXPECT_TRUE(waiter.wait());
  });
}

TEST_F(LoopingCallTest, TheDestructorDefersAKillAimedAtTheDestroyingFiberAndNeverThrows) {
  bool destructor_returned = false;
  bool loop_ended = false;
  double killed_at = -1;
  run_virtual([&] {
    const auto origin = weft::now();
    auto destroyer = weft::spawn([&] {
      {
        FixedIntervalLoopingCall call([&] {
          try {
            weft::sleep(10s);
          } catch (const weft::FiberExit&) {
            weft::sleep(2s);  // a slow clean-up, during which the destroyer is killed
            loop_ended = true;
            throw;
          }
        });
        call.start(1s);
        weft::sleep(1s);
      }
      destructor_returned = true;
      weft::sleep(1s);  // the deferred kill is thrown here
      ADD_FAILURE() << "not killed";
    });
    weft::sleep(2s);
    destroyer.kill();
    EXPECT_THROW(destroyer.wait(), weft::FiberExit);
    killed_at = since(origin);
  });
  EXPECT_TRUE(loop_ended);
  EXPECT_TRUE(destructor_returned);
  EXPECT_NEAR(killed_at, 3, exact);
}

TEST_F(LoopingCallTest, TheDestructorDefersATimeoutOfTheDestroyingFiber) {
  bool destructor_returned = false;
  double timed_out_at = -1;
  run_virtual([&] {
    const auto origin = weft::now();
    try {
      weft::Timeout timeout(1.5s);
      {
        FixedIntervalLoopingCall call([&] {
          try {
            weft::sleep(10s);
          } catch (const weft::FiberExit&) {
            weft::sleep(2s);
            throw;
          }
        });
        call.start(1s);
        weft::sleep(1s);
      }  // the destructor waits until 3 s, past the deadline
      destructor_returned = true;
      weft::yield();
      ADD_FAILURE() << "no TimeoutError";
    } catch (const weft::TimeoutError&) {
      timed_out_at = since(origin);
    }
  });
  EXPECT_TRUE(destructor_returned);
  EXPECT_NEAR(timed_out_at, 3, exact);
}

TEST_F(LoopingCallTest, ACallbackMayDestroyItsOwnLoopingCall) {
  int calls = 0;
  bool after_destroy = false;
  run_virtual([&] {
    std::shared_ptr<FixedIntervalLoopingCall<>> call;
    call = std::make_shared<FixedIntervalLoopingCall<>>([&] {
      if (++calls == 2) {
        auto self = std::move(call);  // the last owner, in the loop's own fiber
        self.reset();
        weft::sleep(1s);  // the function (and this lambda) is still alive
        after_destroy = true;
      }
    });
    call->start(1s);
    weft::sleep(10s);
    EXPECT_EQ(call, nullptr);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(after_destroy);
}

// --- fixed interval with timeout ---------------------------------------------------------

TEST_F(LoopingCallTest, FixedIntervalWithTimeoutEndsWithLoopingCallTimeOutAfterTheFirstCallPastIt) {
  // oslo's test_looping_call_timed_out: a no-op every 0.1 s with a 0.3 s timeout.
  std::vector<double> starts;
  std::string message;
  double ended = 0;
  run_virtual([&] {
    const auto origin = weft::now();
    FixedIntervalWithTimeoutLoopingCall call([&] { starts.push_back(since(origin)); });
    call.start(0.1s, 0s, true, 0.3s);
    try {
      call.wait();
    } catch (const weft::LoopingCallTimeOut& e) {
      message = e.what();
    }
    ended = since(origin);
  });
  expect_times(starts, {0, 0.1, 0.2, 0.3, 0.4});
  EXPECT_EQ(message, "Looping call timed out after 0.40 seconds");
  EXPECT_NEAR(ended, 0.4, exact);
}

TEST_F(LoopingCallTest, FixedIntervalWithTimeoutZeroNeverTimesOut) {
  int calls = 0;
  run_virtual([&] {
    FixedIntervalWithTimeoutLoopingCall call([&] {
      if (++calls == 100) throw LoopingCallDone{};
    });
    call.start(1h);
    EXPECT_TRUE(call.wait());
  });
  EXPECT_EQ(calls, 100);
}

// --- dynamic ----------------------------------------------------------------------------------

TEST_F(LoopingCallTest, DynamicDelayIsCappedByPeriodicIntervalMax) {
  // oslo's test_interval_adjustment: returns 21 then 1 with a maximum of 5.
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    const std::vector<Seconds> delays = {21s, 1s};
    DynamicLoopingCall call([&]() -> std::optional<Seconds> {
      starts.push_back(since(origin));
      if (starts.size() > delays.size()) throw LoopingCallDone{};
      return delays[starts.size() - 1];
    });
    call.start(0s, 5s);
    call.wait();
  });
  expect_times(starts, {0, 5, 6});
}

TEST_F(LoopingCallTest, DynamicInitialDelayComesFirst) {
  // oslo's test_initial_delay: initial delay 3, one run returning 1.
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 2) throw LoopingCallDone{};
      return 1s;
    });
    call.start(3s);
    call.wait();
  });
  expect_times(starts, {3, 4});
}

TEST_F(LoopingCallTest, DynamicDelayDoesNotSubtractTheRunTime) {
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{};
      weft::sleep(0.5s);
      return 2s;
    });
    call.start();
    call.wait();
  });
  expect_times(starts, {0, 2.5, 5});
}

TEST_F(LoopingCallTest, DynamicNulloptMeansPeriodicIntervalMax) {
  // oslo's test_timeout_task_without_return.
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&]() -> std::optional<Seconds> {
      starts.push_back(since(origin));
      if (starts.size() == 2) throw LoopingCallDone{};
      return std::nullopt;
    });
    call.start(0s, 5s);
    call.wait();
  });
  expect_times(starts, {0, 5});
}

TEST_F(LoopingCallTest, DynamicNulloptWithoutAMaximumEndsTheLoopWithRuntimeError) {
  // oslo's test_timeout_task_without_return_and_max_periodic.
  std::string message;
  run_virtual([&] {
    DynamicLoopingCall call([]() -> std::optional<Seconds> { return std::nullopt; });
    call.start();
    try {
      call.wait();
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
  });
  EXPECT_EQ(message,
            "A dynamic interval looping call should supply either an interval or "
            "periodic_interval_max");
}

TEST_F(LoopingCallTest, DynamicZeroOrNegativeDelayMeansTheNextCallAtOnce) {
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{};
      return starts.size() == 1 ? Seconds(0) : Seconds(-4);
    });
    call.start(1s);
    call.wait();
  });
  expect_times(starts, {1, 1, 1});
}

TEST_F(LoopingCallTest, DynamicCallsAtOnceStillLetOtherFibersRun) {
  // "At once" is after one yield(): a stop from another fiber gets in.
  int calls = 0;
  run_virtual([&] {
    DynamicLoopingCall call([&] {
      ++calls;
      return 0s;
    });
    call.start();
    weft::yield();
    weft::yield();
    call.stop();
    EXPECT_TRUE(call.wait());
  });
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 3);
}

TEST_F(LoopingCallTest, DynamicFailureWithAMaximumWaitsForTheMaximumInsteadOfBusyLooping) {
  LogCapture log;
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&]() -> std::optional<Seconds> {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{};
      throw std::runtime_error("flaky");
    });
    call.start(0s, 7s, false);
    call.wait();
  });
  expect_times(starts, {0, 7, 14});
  EXPECT_EQ(log.at(weft::LogLevel::error).size(), 2u);
}

TEST_F(LoopingCallTest, DynamicFailureWithoutAMaximumCallsAgainAtOnce) {
  std::vector<double> starts;
  LogCapture log;
  run_virtual([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&]() -> std::optional<Seconds> {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{};
      throw std::runtime_error("flaky");
    });
    call.start(2s, std::nullopt, false);
    call.wait();
  });
  expect_times(starts, {2, 2, 2});  // oslo's 0
}

// --- back-off
// -------------------------------------------------------------------------------------

namespace {

// The sleeps between the calls of a BackOffLoopingCall whose function returns
// `results` in turn (then throws LoopingCallDone, or keeps failing if
// `fail_for_ever`), and how it ended.
struct BackOffRun {
  std::vector<double> sleeps;
  std::string timed_out;  // LoopingCallTimeOut's what(), if it ended so
};

BackOffRun back_off(BackOffOptions options, std::vector<bool> results, bool fail_for_ever) {
  BackOffRun outcome;
  run_virtual([&] {
    std::vector<double> starts;
    const auto origin = weft::now();
    BackOffLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() <= results.size()) return static_cast<bool>(results[starts.size() - 1]);
      if (fail_for_ever) return false;
      throw LoopingCallDone{};
    });
    call.start(std::move(options));
    try {
      call.wait();
    } catch (const weft::LoopingCallTimeOut& e) {
      outcome.timed_out = e.what();
    }
    for (std::size_t i = 1; i < starts.size(); ++i)
      outcome.sleeps.push_back(starts[i] - starts[i - 1]);
  });
  return outcome;
}

}  // namespace

TEST_F(LoopingCallTest, BackOffSleepsOslosExponentialSequenceThenTimesOut) {
  // oslo's test_exponential_backoff: gauss ≡ 0.8, the defaults, always failing.
  const auto run = back_off({.gauss = [](double, double) { return 0.8; }}, {}, true);
  expect_times(run.sleeps,
               {1.6, 2.4, 3.6, 5.4, 8.1, 12.15, 18.225, 27.3375, 41.00625, 61.509375, 92.2640625});
  // 273.59 s slept, and the next 138.40 s would pass the 300 s timeout.
  EXPECT_EQ(run.timed_out, "Looping call timed out after 411.99 seconds");
}

TEST_F(LoopingCallTest, BackOffFoldsNegativeGaussSamples) {
  const auto run = back_off({.gauss = [](double, double) { return -0.8; }}, {}, true);
  expect_times(run.sleeps,
               {1.6, 2.4, 3.6, 5.4, 8.1, 12.15, 18.225, 27.3375, 41.00625, 61.509375, 92.2640625});
}

TEST_F(LoopingCallTest, BackOffSleepsAreCappedByMaxInterval) {
  // oslo's test_max_interval.
  const auto run =
      back_off({.max_interval = 60s, .gauss = [](double, double) { return 0.8; }}, {}, true);
  expect_times(run.sleeps, {1.6, 2.4, 3.6, 5.4, 8.1, 12.15, 18.225, 27.3375, 41.00625, 60, 60, 60});
  EXPECT_FALSE(run.timed_out.empty());
}

TEST_F(LoopingCallTest, BackOffSuccessesSleepStartingIntervalTimesTheSample) {
  // oslo's test_no_backoff: gauss ≡ 1, three successes, then Done("return value").
  std::string result;
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    BackOffLoopingCall<std::string> call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 4) throw LoopingCallDone{std::string("return value")};
      return true;
    });
    call.start({.gauss = [](double, double) { return 1.0; }});
    result = call.wait();
  });
  expect_times(starts, {0, 1, 2, 3});
  EXPECT_EQ(result, "return value");
}

TEST_F(LoopingCallTest, BackOffSuccessResetsTheInterval) {
  const auto run = back_off({.gauss = [](double, double) { return 0.8; }},
                            {false, false, true, false, true}, false);
  expect_times(run.sleeps, {1.6, 2.4, 0.8, 1.6, 0.8});
}

TEST_F(LoopingCallTest, BackOffDoneOnTheFirstCallMeansNoSleep) {
  // oslo's test_no_sleep.
  double ended = -1;
  run_virtual([&] {
    const auto origin = weft::now();
    BackOffLoopingCall call([]() -> bool { throw LoopingCallDone{}; });
    call.start({.gauss = [](double, double) { return 0.8; }});
    EXPECT_TRUE(call.wait());
    ended = since(origin);
  });
  EXPECT_NEAR(ended, 0, exact);
}

TEST_F(LoopingCallTest, BackOffInitialDelayAndMinInterval) {
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    BackOffLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{};
      return false;
    });
    call.start({.initial_delay = 2s,
                .starting_interval = 0s,
                .min_interval = 0.25s,
                .gauss = [](double, double) { return 0.8; }});
    call.wait();
  });
  expect_times(starts, {2, 2.25, 2.65});  // max(0·2·0.8, 0.25), then 0.25·2·0.8
}

TEST_F(LoopingCallTest, BackOffAlwaysStopsOnAnException) {
  int calls = 0;
  run_virtual([&] {
    BackOffLoopingCall call([&]() -> bool {
      ++calls;
      throw std::runtime_error("broken");
    });
    call.start();
    EXPECT_THROW(call.wait(), std::runtime_error);
  });
  EXPECT_EQ(calls, 1);
}

TEST_F(LoopingCallTest, BackOffStartsAfreshOnEveryStart) {
  std::vector<double> starts;
  run_virtual([&] {
    const auto origin = weft::now();
    BackOffLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 3 || starts.size() == 6) throw LoopingCallDone{};
      return false;
    });
    const BackOffOptions options{.gauss = [](double, double) { return 0.8; }};
    call.start(options);
    call.wait();
    call.start(options);
    call.wait();
  });
  expect_times(starts, {0, 1.6, 4, 4, 5.6, 8});
}

// --- real time
// ------------------------------------------------------------------------------------

TEST_F(LoopingCallTest, RealTimeA20msFixedIntervalCallIsNeverEarly) {
  std::vector<double> starts;
  weft::run([&] {
    const auto origin = weft::now();
    FixedIntervalLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 5) throw LoopingCallDone{};
    });
    call.start(20ms);
    EXPECT_TRUE(call.wait());
  });
  ASSERT_EQ(starts.size(), 5u);
  for (std::size_t k = 0; k < starts.size(); ++k)
    EXPECT_GE(starts[k], 0.020 * static_cast<double>(k)) << "call " << k;
}

TEST_F(LoopingCallTest, RealTimeInitialDelayAndDynamicDelaysAreNeverCutShort) {
  std::vector<double> starts;
  weft::run([&] {
    const auto origin = weft::now();
    DynamicLoopingCall call([&] {
      starts.push_back(since(origin));
      if (starts.size() == 3) throw LoopingCallDone{};
      return 15ms;
    });
    call.start(10ms);
    call.wait();
  });
  ASSERT_EQ(starts.size(), 3u);
  EXPECT_GE(starts[0], 0.010);
  EXPECT_GE(starts[1] - starts[0], 0.015);
  EXPECT_GE(starts[2] - starts[1], 0.015);
}

TEST_F(LoopingCallTest, RealTimeStopWakesAnHourLongIdleWait) {
  int calls = 0;
  weft::run([&] {
    FixedIntervalLoopingCall call([&] { ++calls; });
    call.start(1h);
    weft::sleep(20ms);
    call.stop();
    EXPECT_TRUE(call.wait());
  });
  EXPECT_EQ(calls, 1);
}

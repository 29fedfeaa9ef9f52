// ThreadStep: a step run on a thread of its own whose events the caller reads
// one tick at a time (spine-engine's thread executor, dagster's protocol).

#include <gtest/gtest.h>

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <weft/process/step.hpp>
#include <weft/weft.hpp>

#include "child_process_check.hpp"
#include "hang_watchdog.hpp"
#include "virtual_time.hpp"

using namespace std::chrono_literals;

namespace {

class ThreadStepTest : public weft_test::HubWorkerLeakCheck {};

using Step = weft::ThreadStep<std::string>;
using Event = weft::StepEvent<std::string>;

void sleep_until_set(const std::atomic<bool>& flag) {
  while (!flag.load())
    weft::sleep(1ms);
}

}  // namespace

TEST_F(ThreadStepTest, EventsComeInOrderStartValuesDone) {
  Step step([](weft::StepEmitter<std::string>& emit) {
    emit("aa");
    emit("bb");
  });
  const std::vector<Event> events = weft_test::read_all_events(step);
  ASSERT_EQ(events.size(), 4u);
  ASSERT_TRUE(std::holds_alternative<weft::StepStart>(events[0]));
  const pid_t tid = std::get<weft::StepStart>(events[0]).pid;
  EXPECT_NE(tid, ::gettid());
  EXPECT_NE(tid, 0);
  EXPECT_EQ(std::get<std::string>(events[1]), "aa");
  EXPECT_EQ(std::get<std::string>(events[2]), "bb");
  ASSERT_TRUE(std::holds_alternative<weft::StepDone>(events[3]));
  EXPECT_EQ(std::get<weft::StepDone>(events[3]).pid, tid);
  EXPECT_TRUE(step.finished());
}

TEST_F(ThreadStepTest, NextAfterTheEndIsALogicError) {
  Step step([](weft::StepEmitter<std::string>&) {});
  weft_test::read_all_events(step);
  EXPECT_THROW(step.next(), std::logic_error);
  EXPECT_THROW(step.try_next(), std::logic_error);
}

TEST_F(ThreadStepTest, AStdExceptionGivesAStepSystemErrorWithItsTypeAndMessage) {
  Step step([](weft::StepEmitter<std::string>& emit) {
    emit("before");
    throw std::invalid_argument("Oh noes!");
  });
  const std::vector<Event> events = weft_test::read_all_events(step);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(std::get<std::string>(events[1]), "before");
  ASSERT_TRUE(std::holds_alternative<weft::StepSystemError>(events[2]));
  const auto& error = std::get<weft::StepSystemError>(events[2]);
  EXPECT_EQ(error.type_name, "std::invalid_argument");
  EXPECT_EQ(error.message, "Oh noes!");
  EXPECT_EQ(error.output, "");
  EXPECT_EQ(error.pid, std::get<weft::StepStart>(events[0]).pid);
}

TEST_F(ThreadStepTest, AStepThatEndsWithoutATerminalEventGivesThreadCrashErrorAfterItsValues) {
  Step step([](weft::StepEmitter<std::string>& emit) {
    emit("last words");
    throw 42;  // not a std::exception
  });
  std::vector<Event> events;
  pid_t tid = 0;
  try {
    for (;;) {
      Event event = step.next();
      if (!std::holds_alternative<weft::StepIdle>(event)) events.push_back(std::move(event));
    }
  } catch (const weft::ThreadCrashError& crash) {
    tid = crash.tid();
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::get<std::string>(events[1]), "last words");
  EXPECT_EQ(tid, std::get<weft::StepStart>(events[0]).pid);
  EXPECT_TRUE(step.finished());
  EXPECT_THROW(step.next(), std::logic_error);
}

TEST_F(ThreadStepTest, AKilledStepFiberIsACrash) {
  Step step([](weft::StepEmitter<std::string>&) { throw weft::FiberExit{}; });
  EXPECT_THROW(weft_test::read_all_events(step), weft::ThreadCrashError);
}

TEST_F(ThreadStepTest, AnIdleTickIsNeverShorterThanTheTick) {
  std::atomic<bool> release{false};
  Step step([&](weft::StepEmitter<std::string>&) { sleep_until_set(release); },
            weft::ThreadStepOptions{.tick = 5ms});
  while (!std::holds_alternative<weft::StepStart>(step.next())) {
  }
  for (int i = 0; i < 3; ++i) {
    const auto before = std::chrono::steady_clock::now();
    const Event event = step.next();
    const auto waited = std::chrono::steady_clock::now() - before;
    ASSERT_TRUE(std::holds_alternative<weft::StepIdle>(event));
    EXPECT_GE(waited, 5ms);
  }
  release = true;
  EXPECT_EQ(weft_test::read_all_events(step).size(), 1u);  // StepDone
}

TEST_F(ThreadStepTest, AnIdleTickOnAFiberIsExactlyOneTickOfItsHubsClock) {
  std::atomic<bool> release{false};
  weft_test::run_virtual([&] {
    Step step([&](weft::StepEmitter<std::string>&) { sleep_until_set(release); },
              weft::ThreadStepOptions{.tick = 20ms});
    while (!std::holds_alternative<weft::StepStart>(step.next())) {
    }
    const auto before = weft::now();
    EXPECT_TRUE(std::holds_alternative<weft::StepIdle>(step.next()));
    EXPECT_NEAR(weft_test::since(before), 0.020, weft_test::exact);
    release = true;
    weft_test::read_all_events(step);
  });
}

TEST_F(ThreadStepTest, AnEventArrivesWithoutWaitingForTheTick) {
  HangWatchdog watchdog("an event before the tick");
  std::atomic<bool> release{false};
  Step step(
      [&](weft::StepEmitter<std::string>& emit) {
        sleep_until_set(release);
        emit("now");
      },
      weft::ThreadStepOptions{.tick = std::chrono::hours(1)});
  ASSERT_TRUE(std::holds_alternative<weft::StepStart>(step.next()));
  release = true;
  // With an hour's tick, only the event itself can end this wait.
  EXPECT_EQ(std::get<std::string>(step.next()), "now");
  EXPECT_TRUE(std::holds_alternative<weft::StepDone>(step.next()));
}

TEST_F(ThreadStepTest, OneFiberMultiplexesManySteps) {
  HangWatchdog watchdog("many steps on one fiber");
  constexpr int steps = 30;
  weft::run([] {
    std::vector<std::unique_ptr<Step>> running;
    for (int k = 0; k < steps; ++k) {
      running.push_back(std::make_unique<Step>(
          [k](weft::StepEmitter<std::string>& emit) {
            for (int i = 0; i < k; ++i) {
              emit(std::to_string(k) + ":" + std::to_string(i));
              weft::yield();
            }
          },
          weft::ThreadStepOptions{.tick = 1ms}));
    }
    std::vector<std::vector<Event>> seen(steps);
    for (bool any_running = true; any_running;) {
      any_running = false;
      for (int k = 0; k < steps; ++k) {
        if (running[k]->finished()) continue;
        any_running = true;
        Event event = running[k]->next();
        if (!std::holds_alternative<weft::StepIdle>(event)) seen[k].push_back(std::move(event));
      }
    }
    for (int k = 0; k < steps; ++k) {
      ASSERT_EQ(seen[k].size(), static_cast<std::size_t>(k) + 2) << "step " << k;
      EXPECT_TRUE(std::holds_alternative<weft::StepStart>(seen[k].front()));
      for (int i = 0; i < k; ++i)
        EXPECT_EQ(std::get<std::string>(seen[k][i + 1]),
                  std::to_string(k) + ":" + std::to_string(i));
      EXPECT_TRUE(std::holds_alternative<weft::StepDone>(seen[k].back()));
    }
  });
}

TEST_F(ThreadStepTest, NextOnAFiberSuspendsOnlyThatFiber) {
  HangWatchdog watchdog("next on a fiber");
  std::atomic<bool> other_fiber_ran{false};
  weft::run([&] {
    Step step(
        [&](weft::StepEmitter<std::string>& emit) {
          sleep_until_set(other_fiber_ran);
          emit("after");
        },
        weft::ThreadStepOptions{.tick = std::chrono::hours(1)});
    weft::spawn([&] { other_fiber_ran = true; });
    EXPECT_TRUE(std::holds_alternative<weft::StepStart>(step.next()));
    EXPECT_EQ(std::get<std::string>(step.next()), "after");
    EXPECT_TRUE(std::holds_alternative<weft::StepDone>(step.next()));
  });
}

TEST_F(ThreadStepTest, DestroyingAStepBeforeItsEndInterruptsAndWaitsForIt) {
  HangWatchdog watchdog("destroying a running step");
  auto interrupted = std::make_shared<std::atomic<bool>>(false);
  {
    Step step([interrupted](weft::StepEmitter<std::string>& emit) {
      emit("running");
      try {
        weft::sleep(1h);
      } catch (const weft::ThreadDestroyedError&) {
        *interrupted = true;
        throw;
      }
    });
    while (!std::holds_alternative<weft::StepStart>(step.next())) {
    }
    while (std::holds_alternative<weft::StepIdle>(step.next())) {
    }
  }
  EXPECT_TRUE(interrupted->load());
}

TEST_F(ThreadStepTest, AnEmptyStepIsRejected) {
  EXPECT_THROW(Step(std::function<void(weft::StepEmitter<std::string>&)>{}), std::invalid_argument);
}

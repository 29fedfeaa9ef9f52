// StepExecutor: many named steps, at most max_concurrent at once, each
// step's events in order, retries, and a summary of what failed and why
// (spine-engine's MultithreadExecutor).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <weft/process/step.hpp>
#include <weft/weft.hpp>

#include "hang_watchdog.hpp"
#include "hub_worker_check.hpp"

using namespace std::chrono_literals;

namespace {

class StepExecutorTest : public weft_test::HubWorkerLeakCheck {};

using Executor = weft::StepExecutor<int>;
using Event = weft::StepEvent<int>;
using Emit = weft::StepEmitter<int>;

struct Seen {
  std::size_t attempt;
  Event event;
};

// Records every event per step, checking that the executor calls from one
// place at a time.
struct Recorder {
  std::map<std::string, std::vector<Seen>> events;
  void operator()(const std::string& step, std::size_t attempt, const Event& event) {
    EXPECT_FALSE(std::holds_alternative<weft::StepIdle>(event));
    events[step].push_back(Seen{attempt, event});
  }
};

}  // namespace

TEST_F(StepExecutorTest, RunsEveryStepAndDeliversEachStepsEventsInOrder) {
  HangWatchdog watchdog("an executor run");
  Executor executor;
  for (int k = 0; k < 20; ++k) {
    executor.add_thread_step("step" + std::to_string(k), [](Emit& emit) {
      for (int i = 0; i < 10; ++i) {
        emit(i);
        if (i % 3 == 0) weft::yield();
      }
    });
  }
  Recorder recorder;
  const weft::StepSummary summary = executor.run(std::ref(recorder));
  EXPECT_TRUE(summary.ok());
  EXPECT_EQ(summary.describe(), "");
  EXPECT_EQ(summary.succeeded.size(), 20u);
  ASSERT_EQ(recorder.events.size(), 20u);
  for (const auto& [name, seen] : recorder.events) {
    ASSERT_EQ(seen.size(), 12u) << name;
    EXPECT_TRUE(std::holds_alternative<weft::StepStart>(seen.front().event));
    for (int i = 0; i < 10; ++i)
      EXPECT_EQ(std::get<int>(seen[i + 1].event), i) << name;
    EXPECT_TRUE(std::holds_alternative<weft::StepDone>(seen.back().event));
    for (const Seen& s : seen)
      EXPECT_EQ(s.attempt, 1u);
  }
}

TEST_F(StepExecutorTest, NeverRunsMoreThanMaxConcurrentStepsAtOnce) {
  HangWatchdog watchdog("a bounded executor run");
  Executor executor(weft::StepExecutorOptions{.max_concurrent = 3});
  auto running = std::make_shared<std::atomic<int>>(0);
  auto most = std::make_shared<std::atomic<int>>(0);
  for (int k = 0; k < 12; ++k) {
    executor.add_thread_step("step" + std::to_string(k), [running, most](Emit&) {
      const int now = ++*running;
      int seen = most->load();
      while (now > seen && !most->compare_exchange_weak(seen, now)) {
      }
      weft::sleep(2ms);
      --*running;
    });
  }
  const weft::StepSummary summary = executor.run([](auto&&...) {});
  EXPECT_TRUE(summary.ok()) << summary.describe();
  EXPECT_EQ(summary.succeeded.size(), 12u);
  EXPECT_LE(most->load(), 3);
  EXPECT_GE(most->load(), 1);
}

TEST_F(StepExecutorTest, RetriesAFailedStepUntilItSucceeds) {
  Executor executor(weft::StepExecutorOptions{.retries = 2});
  auto attempts = std::make_shared<std::atomic<int>>(0);
  executor.add_thread_step("flaky", [attempts](Emit& emit) {
    const int attempt = ++*attempts;
    emit(attempt);
    if (attempt < 3) throw std::runtime_error("not yet");
  });
  Recorder recorder;
  const weft::StepSummary summary = executor.run(std::ref(recorder));
  EXPECT_TRUE(summary.ok()) << summary.describe();
  ASSERT_EQ(summary.succeeded, std::vector<std::string>{"flaky"});
  const auto& seen = recorder.events["flaky"];
  ASSERT_EQ(seen.size(), 9u);  // three attempts of Start, value, end
  for (std::size_t a = 0; a < 3; ++a) {
    EXPECT_EQ(seen[3 * a].attempt, a + 1);
    EXPECT_TRUE(std::holds_alternative<weft::StepStart>(seen[3 * a].event));
    EXPECT_EQ(std::get<int>(seen[3 * a + 1].event), static_cast<int>(a) + 1);
  }
  EXPECT_TRUE(std::holds_alternative<weft::StepSystemError>(seen[2].event));
  EXPECT_TRUE(std::holds_alternative<weft::StepSystemError>(seen[5].event));
  EXPECT_TRUE(std::holds_alternative<weft::StepDone>(seen[8].event));
}

TEST_F(StepExecutorTest, RetriesACrashedStep) {
  Executor executor(weft::StepExecutorOptions{.retries = 1});
  auto attempts = std::make_shared<std::atomic<int>>(0);
  executor.add_thread_step("crashes once", [attempts](Emit&) {
    if (++*attempts == 1) throw 7;
  });
  const weft::StepSummary summary = executor.run([](auto&&...) {});
  EXPECT_TRUE(summary.ok()) << summary.describe();
  EXPECT_EQ(attempts->load(), 2);
}

TEST_F(StepExecutorTest, TheSummaryNamesEveryFailedStepAndWhy) {
  Executor executor(weft::StepExecutorOptions{.retries = 1});
  executor.add_thread_step("a", [](Emit&) { throw std::runtime_error("boom"); });
  executor.add_thread_step("b", [](Emit&) { throw 1; });
  executor.add_thread_step("c", [](Emit& emit) { emit(3); });
  const weft::StepSummary summary = executor.run([](auto&&...) {});
  EXPECT_FALSE(summary.ok());
  EXPECT_EQ(summary.succeeded, std::vector<std::string>{"c"});
  ASSERT_EQ(summary.failed.size(), 2u);
  auto failure = [&](const std::string& name) {
    return *std::find_if(summary.failed.begin(), summary.failed.end(),
                         [&](const weft::StepFailure& f) { return f.step == name; });
  };
  const weft::StepFailure a = failure("a");
  EXPECT_EQ(a.attempts, 2u);
  EXPECT_EQ(a.type_name, "std::runtime_error");
  EXPECT_EQ(a.message, "boom");
  EXPECT_FALSE(a.crashed);
  const weft::StepFailure b = failure("b");
  EXPECT_EQ(b.attempts, 2u);
  EXPECT_EQ(b.type_name, "weft::ThreadCrashError");
  EXPECT_TRUE(b.crashed);
  const std::string text = summary.describe();
  EXPECT_NE(text.find("In step a (2 attempts): std::runtime_error: boom"), std::string::npos)
      << text;
  EXPECT_NE(text.find("In step b (2 attempts): crashed: weft::ThreadCrashError: Thread "),
            std::string::npos)
      << text;
}

TEST_F(StepExecutorTest, RunsFromAFiberAndSuspendsOnlyIt) {
  HangWatchdog watchdog("an executor run on a fiber");
  std::atomic<bool> other_fiber_ran{false};
  weft::run([&] {
    Executor executor;
    executor.add_thread_step("waits for the other fiber", [&](Emit& emit) {
      while (!other_fiber_ran)
        weft::sleep(1ms);
      emit(1);
    });
    weft::spawn([&] { other_fiber_ran = true; });
    Recorder recorder;
    EXPECT_TRUE(executor.run(std::ref(recorder)).ok());
    EXPECT_EQ(recorder.events["waits for the other fiber"].size(), 3u);
  });
}

// Adds steps "sleeper0".. that emit 0 and then sleep until destroyed, which
// they count in `interrupted`.
void add_sleepers(Executor& executor, int count, std::shared_ptr<std::atomic<int>> interrupted) {
  for (int k = 0; k < count; ++k) {
    executor.add_thread_step("sleeper" + std::to_string(k), [interrupted](Emit& emit) {
      emit(0);
      try {
        weft::sleep(1h);
      } catch (const weft::ThreadDestroyedError&) {
        ++*interrupted;
        throw;
      }
    });
  }
}

TEST_F(StepExecutorTest, AnExceptionFromTheCallbackDestroysTheRunningStepsAndPropagates) {
  HangWatchdog watchdog("a callback that throws");
  auto interrupted = std::make_shared<std::atomic<int>>(0);
  Executor executor;
  add_sleepers(executor, 3, interrupted);
  EXPECT_THROW(executor.run([](const std::string&, std::size_t, const Event& event) {
    if (std::holds_alternative<int>(event)) throw std::domain_error("stop");
  }),
               std::domain_error);
  // Each step either was interrupted in its sleep or had not reached it.
  EXPECT_LE(interrupted->load(), 3);
  EXPECT_GE(interrupted->load(), 1);
}

TEST_F(StepExecutorTest, StopInterruptsEveryRunningStepAndTheRunSaysSo) {
  HangWatchdog watchdog("an executor stopped from its callback");
  auto interrupted = std::make_shared<std::atomic<int>>(0);
  Executor executor({.max_concurrent = 2});
  add_sleepers(executor, 3, interrupted);
  int sleeping = 0;
  const weft::StepSummary summary =
      executor.run([&](const std::string&, std::size_t, const Event& event) {
        if (std::holds_alternative<int>(event) && ++sleeping == 2) executor.stop();
      });
  EXPECT_TRUE(summary.interrupted);
  EXPECT_FALSE(summary.ok());
  EXPECT_EQ(summary.unfinished, (std::vector<std::string>{"sleeper0", "sleeper1", "sleeper2"}));
  EXPECT_TRUE(summary.succeeded.empty());
  EXPECT_TRUE(summary.failed.empty());
  EXPECT_EQ(interrupted->load(), 2);  // the third never started
  EXPECT_EQ(summary.describe(),
            "Execution was interrupted; unfinished steps: sleeper0, sleeper1, sleeper2");
}

TEST_F(StepExecutorTest, AStopBeforeRunInterruptsTheNextRunOnly) {
  Executor executor;
  executor.add_thread_step("one", [](Emit& emit) { emit(1); });
  executor.stop();
  const weft::StepSummary stopped = executor.run([](const std::string&, std::size_t, const Event&) {});
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_EQ(stopped.unfinished, std::vector<std::string>{"one"});
  const weft::StepSummary again = executor.run([](const std::string&, std::size_t, const Event&) {});
  EXPECT_TRUE(again.ok());
  EXPECT_EQ(again.succeeded, std::vector<std::string>{"one"});
}

TEST_F(StepExecutorTest, BadInputIsRejected) {
  EXPECT_THROW(Executor(weft::StepExecutorOptions{.max_concurrent = 0}), std::invalid_argument);
  Executor executor;
  executor.add_thread_step("x", [](Emit&) {});
  EXPECT_THROW(executor.add_thread_step("x", [](Emit&) {}), std::invalid_argument);
  EXPECT_THROW(executor.add_thread_step("y", std::function<void(Emit&)>{}), std::invalid_argument);
}

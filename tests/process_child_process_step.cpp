// ChildProcessStep: a step run in a child process whose events the parent
// reads one tick at a time (dagster's child-process executor), for the fork
// and spawn start methods, and the step executor running child-process steps.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <weft/weft.hpp>

#include "child_process_check.hpp"
#include "hang_watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using Emit = weft::StepEmitter<std::string>;
using Step = weft::ChildProcessStep<std::string>;
using Event = weft::StepEvent<std::string>;

void doubled_aa(Emit& emit) {
  emit("aa" + std::string("aa"));
}
void raises(Emit&) {
  throw std::runtime_error("AnError: Oh noes!");
}
void exits_1(Emit& emit) {
  emit("before");
  std::fflush(nullptr);
  ::_exit(1);
}
void segfaults(Emit& emit) {
  emit("last words");
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);  // no core file from the test
  // The default action, whatever handler a sanitizer installed (ASan's
  // reports a SIGSEGV and exits with 1 instead of dying of it).
  ::signal(SIGSEGV, SIG_DFL);
  ::raise(SIGSEGV);
}
void prints_and_raises(Emit&) {
  std::printf("to stdout\n");
  std::fprintf(stderr, "to stderr\n");
  throw std::invalid_argument("bad");
}
void sleeps(Emit& emit) {
  emit("sleeping");
  for (;;)
    ::pause();
}
void counts(Emit& emit, int n) {
  for (int i = 0; i < n; ++i)
    emit(std::to_string(i));
}

inline const weft::ProcessEntry<void(Emit&)> doubled_aa_entry{"step.doubled_aa", doubled_aa};
inline const weft::ProcessEntry<void(Emit&)> raises_entry{"step.raises", raises};
inline const weft::ProcessEntry<void(Emit&)> exits_1_entry{"step.exits_1", exits_1};
inline const weft::ProcessEntry<void(Emit&)> segfaults_entry{"step.segfaults", segfaults};
inline const weft::ProcessEntry<void(Emit&)> prints_entry{"step.prints_and_raises",
                                                          prints_and_raises};
inline const weft::ProcessEntry<void(Emit&)> sleeps_entry{"step.sleeps", sleeps};
inline const weft::ProcessEntry<void(Emit&, int)> counts_entry{"step.counts", counts};

class ChildStep : public weft_test::ChildProcessLeakCheck,
                  public ::testing::WithParamInterface<weft::StartMethod> {
 protected:
  // A step of this test's start method: the function itself for fork, its
  // entry for spawn and forkserver.
  template <class Entry, class F>
  std::unique_ptr<Step> start(const Entry& entry, F function,
                              weft::ChildProcessStepOptions options = {}) {
    if (GetParam() == weft::StartMethod::fork)
      return std::make_unique<Step>(weft::StartMethod::fork, function, options);
    return std::make_unique<Step>(GetParam(), entry, options);
  }
};

INSTANTIATE_TEST_SUITE_P(StartMethods, ChildStep, weft_test::all_start_methods(),
                         weft_test::start_method_name);

}  // namespace

TEST_P(ChildStep, EventsComeInOrderWithTheChildsPid) {
  auto step = start(doubled_aa_entry, doubled_aa);
  const std::vector<Event> events = weft_test::read_all_events(*step);
  ASSERT_EQ(events.size(), 3u);
  ASSERT_TRUE(std::holds_alternative<weft::StepStart>(events[0]));
  EXPECT_EQ(std::get<weft::StepStart>(events[0]).pid, step->pid());
  EXPECT_NE(step->pid(), ::getpid());
  EXPECT_EQ(std::get<std::string>(events[1]), "aaaa");
  ASSERT_TRUE(std::holds_alternative<weft::StepDone>(events[2]));
  EXPECT_EQ(std::get<weft::StepDone>(events[2]).pid, step->pid());
  EXPECT_THROW(step->next(), std::logic_error);
}

TEST_P(ChildStep, AnExceptionGivesOneSystemError) {
  auto step = start(raises_entry, raises);
  const std::vector<Event> events = weft_test::read_all_events(*step);
  ASSERT_EQ(events.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<weft::StepSystemError>(events[1]));
  const auto& error = std::get<weft::StepSystemError>(events[1]);
  EXPECT_EQ(error.type_name, "std::runtime_error");
  EXPECT_NE(error.message.find("AnError"), std::string::npos);
}

TEST_P(ChildStep, TheSystemErrorCarriesTheTailOfTheChildsOutput) {
  auto step = start(prints_entry, prints_and_raises, {.output_capture_bytes = 1024});
  const std::vector<Event> events = weft_test::read_all_events(*step);
  ASSERT_EQ(events.size(), 2u);
  const auto& error = std::get<weft::StepSystemError>(events[1]);
  EXPECT_NE(error.output.find("to stdout"), std::string::npos) << error.output;
  EXPECT_NE(error.output.find("to stderr"), std::string::npos) << error.output;
}

TEST_P(ChildStep, AnExitWithoutATerminalEventIsACrashWithItsCode) {
  auto step = start(exits_1_entry, exits_1);
  std::vector<Event> events;
  try {
    for (;;) {
      Event event = step->next();
      if (!std::holds_alternative<weft::StepIdle>(event)) events.push_back(std::move(event));
    }
  } catch (const weft::ChildProcessCrashError& crash) {
    EXPECT_EQ(crash.exit_code(), 1);
    EXPECT_EQ(crash.pid(), step->pid());
    EXPECT_NE(std::string(crash.what()).find("crashed with exit code 1."), std::string::npos);
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::get<std::string>(events[1]), "before");
  EXPECT_TRUE(step->finished());
  EXPECT_THROW(step->next(), std::logic_error);
}

TEST_P(ChildStep, ASegfaultIsACrashWithExitCodeMinus11AfterTheValuesItWrote) {
  auto step = start(segfaults_entry, segfaults);
  std::vector<Event> events;
  int code = 0;
  try {
    for (;;) {
      Event event = step->next();
      if (!std::holds_alternative<weft::StepIdle>(event)) events.push_back(std::move(event));
    }
  } catch (const weft::ChildProcessCrashError& crash) {
    code = crash.exit_code();
  }
  EXPECT_EQ(code, -11);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::get<std::string>(events[1]), "last words");
}

TEST_P(ChildStep, DestroyingARunningStepEndsAndReapsItsChild) {
  HangWatchdog watchdog("destroying a running child step");
  pid_t pid;
  {
    auto step = start(sleeps_entry, sleeps, {.destroy_grace_period = 1s});
    pid = step->pid();
    while (!std::holds_alternative<std::string>(step->next())) {
    }
  }
  EXPECT_EQ(::kill(pid, 0), -1);
}

TEST_P(ChildStep, ManyStepsMultiplexedOnOneFiber) {
  HangWatchdog watchdog("child steps on one fiber");
  weft::run([&] {
    std::vector<std::unique_ptr<Step>> steps;
    for (int k = 0; k < 6; ++k) {
      if (GetParam() == weft::StartMethod::fork) {
        steps.push_back(std::make_unique<Step>(
            weft::StartMethod::fork, weft::ChildProcessStepOptions{.tick = 1ms}, counts, k));
      } else {
        steps.push_back(std::make_unique<Step>(
            GetParam(), weft::ChildProcessStepOptions{.tick = 1ms}, counts_entry, k));
      }
    }
    std::vector<std::vector<Event>> seen(steps.size());
    for (bool any = true; any;) {
      any = false;
      for (std::size_t k = 0; k < steps.size(); ++k) {
        if (steps[k]->finished()) continue;
        any = true;
        Event event = steps[k]->next();
        if (!std::holds_alternative<weft::StepIdle>(event)) seen[k].push_back(std::move(event));
      }
    }
    for (std::size_t k = 0; k < steps.size(); ++k) {
      ASSERT_EQ(seen[k].size(), k + 2);
      for (std::size_t i = 0; i < k; ++i)
        EXPECT_EQ(std::get<std::string>(seen[k][i + 1]), std::to_string(i));
    }
  });
}

TEST_P(ChildStep, TheExecutorRunsChildStepsRetriesAndSumsUp) {
  HangWatchdog watchdog("an executor of child steps");
  weft::StepExecutor<std::string> executor({.max_concurrent_processes = 2, .retries = 1});
  for (int k = 0; k < 4; ++k) {
    if (GetParam() == weft::StartMethod::fork) {
      executor.add_child_process_step("ok" + std::to_string(k), weft::StartMethod::fork,
                                      doubled_aa);
    } else {
      executor.add_child_process_step("ok" + std::to_string(k), GetParam(), doubled_aa_entry);
    }
  }
  if (GetParam() == weft::StartMethod::fork) {
    executor.add_child_process_step("crash", weft::StartMethod::fork, exits_1);
  } else {
    executor.add_child_process_step("crash", GetParam(), exits_1_entry);
  }
  std::map<std::string, std::vector<std::size_t>> attempts;
  const weft::StepSummary summary =
      executor.run([&](const std::string& name, std::size_t attempt, const Event& event) {
        if (std::holds_alternative<weft::StepStart>(event)) attempts[name].push_back(attempt);
      });
  EXPECT_EQ(summary.succeeded.size(), 4u);
  ASSERT_EQ(summary.failed.size(), 1u);
  EXPECT_EQ(summary.failed[0].step, "crash");
  EXPECT_TRUE(summary.failed[0].crashed);
  EXPECT_EQ(summary.failed[0].attempts, 2u);
  EXPECT_NE(summary.failed[0].message.find("exit code 1"), std::string::npos);
  EXPECT_EQ(attempts["crash"], (std::vector<std::size_t>{1, 2}));
}

TEST_P(ChildStep, TheExecutorPassesAStepItsArguments) {
  HangWatchdog watchdog("an executor of child steps with arguments");
  weft::StepExecutor<std::string> executor;
  for (int k = 0; k < 3; ++k) {
    if (GetParam() == weft::StartMethod::fork) {
      executor.add_child_process_step("count" + std::to_string(k), GetParam(), {}, counts, k);
    } else {
      executor.add_child_process_step("count" + std::to_string(k), GetParam(), {}, counts_entry,
                                      k);
    }
  }
  std::map<std::string, std::vector<std::string>> values;
  const weft::StepSummary summary =
      executor.run([&](const std::string& step, std::size_t, const Event& event) {
        if (const auto* value = std::get_if<std::string>(&event)) values[step].push_back(*value);
      });
  EXPECT_TRUE(summary.ok()) << summary.describe();
  EXPECT_EQ(values["count0"], std::vector<std::string>{});
  EXPECT_EQ(values["count2"], (std::vector<std::string>{"0", "1"}));
}

// Three steps that sleep for ever once they have said so, at most two at once;
// `interrupt` is called once both running ones sleep.
template <class Interrupt>
void run_until_interrupted(weft::StartMethod method, Interrupt interrupt) {
  weft::StepExecutor<std::string> executor({.max_concurrent_processes = 2});
  for (int k = 0; k < 3; ++k) {
    if (method == weft::StartMethod::fork) {
      executor.add_child_process_step("sleep" + std::to_string(k), method, sleeps);
    } else {
      executor.add_child_process_step("sleep" + std::to_string(k), method, sleeps_entry);
    }
  }
  std::vector<pid_t> pids;
  int sleeping = 0;
  const weft::StepSummary summary =
      executor.run([&](const std::string&, std::size_t, const Event& event) {
        if (const auto* start = std::get_if<weft::StepStart>(&event)) pids.push_back(start->pid);
        if (std::holds_alternative<std::string>(event) && ++sleeping == 2) interrupt(executor);
      });
  EXPECT_TRUE(summary.interrupted);
  EXPECT_EQ(summary.unfinished, (std::vector<std::string>{"sleep0", "sleep1", "sleep2"}));
  EXPECT_TRUE(summary.succeeded.empty());
  EXPECT_TRUE(summary.failed.empty());
  ASSERT_EQ(pids.size(), 2u);
  for (const pid_t pid : pids)
    EXPECT_EQ(::kill(pid, 0), -1) << "child " << pid << " is still there";
}

TEST_P(ChildStep, StopEndsEveryChildAndTheRunIsInterrupted) {
  HangWatchdog watchdog("an executor stopped from its callback");
  run_until_interrupted(GetParam(), [](auto& executor) { executor.stop(); });
}

TEST_P(ChildStep, ASigintInterruptsTheRunAndTheDefaultActionIsBackAfter) {
  HangWatchdog watchdog("an executor interrupted by SIGINT");
  run_until_interrupted(GetParam(), [](auto&) { ::raise(SIGINT); });
  struct sigaction after {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, SIG_DFL);
}

TEST(ChildStepBadInput, SpawnAndForkserverNeedAProcessEntry) {
  EXPECT_THROW(Step(weft::StartMethod::spawn, doubled_aa), std::invalid_argument);
  EXPECT_THROW(Step(weft::StartMethod::forkserver, doubled_aa), std::invalid_argument);
}

int main(int argc, char** argv) {
  weft::process_main(argc, argv);
  weft_test::start_the_forkserver();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

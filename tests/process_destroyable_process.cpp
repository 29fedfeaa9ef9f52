// DestroyableProcess: caikit's destroyable work in a child process, for the
// fork, spawn and forkserver start methods: the state matrix, SIGTERM then SIGKILL on
// destroy (never reported as out of memory), a SIGKILL weft did not send
// reported as out of memory, the child's exception with its type and nested
// cause, results of any size, and no fd or zombie left behind.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "child_process_check.hpp"
#include "hang_watchdog.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

// The entries a spawned child can run (registered before main).
inline const weft::ProcessEntry<std::string()> any_result{
    "test.any_result", [] { return std::string("test-any-result"); }};
inline const weft::ProcessEntry<int(int, std::string)> add_length{
    "test.add_length", [](int n, std::string s) { return n + static_cast<int>(s.size()); }};
inline const weft::ProcessEntry<void()> loop_forever{"test.loop_forever", [] {
                                                       for (;;)
                                                         ::pause();
                                                     }};
inline const weft::ProcessEntry<void()> ignore_sigterm{"test.ignore_sigterm", [] {
                                                         ::signal(SIGTERM, SIG_IGN);
                                                         for (;;)
                                                           ::pause();
                                                       }};
inline const weft::ProcessEntry<int()> throw_invalid{
    "test.throw_invalid", []() -> int { throw std::invalid_argument("bad value"); }};
inline const weft::ProcessEntry<void()> throw_nested{
    "test.throw_nested", [] {
      try {
        throw std::out_of_range("the cause");
      } catch (...) {
        std::throw_with_nested(std::runtime_error("the effect"));
      }
    }};
inline const weft::ProcessEntry<void()> throw_int{"test.throw_int", [] { throw 7; }};
inline const weft::ProcessEntry<pid_t()> parent_pid{"test.parent_pid", [] { return ::getppid(); }};
// A child that runs a hub of its own, with a fiber, a sleep and a cached thread.
inline const weft::ProcessEntry<int(int)> uses_weft{"test.uses_weft", [](int x) {
  return weft::run([x] {
    auto doubled = weft::spawn([x] {
      weft::sleep(1ms);
      return 2 * x;
    });
    return doubled.wait() + weft::to_thread::run_sync([] { return 1; });
  });
}};
// The same with its hub alone (no thread): a child forked while the parent's
// threads run may not start threads under TSan.
inline const weft::ProcessEntry<int(int)> uses_a_hub{"test.uses_a_hub", [](int x) {
  return weft::run([x] {
    auto doubled = weft::spawn([x] {
      weft::sleep(1ms);
      return 2 * x;
    });
    return doubled.wait() + 1;
  });
}};
inline const weft::ProcessEntry<void()> do_nothing{"test.do_nothing", [] {}};
inline const weft::ProcessEntry<void()> exit_3{"test.exit_3", [] { ::_exit(3); }};
inline const weft::ProcessEntry<void()> exit_137{"test.exit_137", [] { ::_exit(137); }};
inline const weft::ProcessEntry<void()> kill_self{"test.kill_self",
                                                  [] { ::kill(::getpid(), SIGKILL); }};
inline const weft::ProcessEntry<std::string(std::size_t)> big_result{
    "test.big_result", [](std::size_t bytes) { return std::string(bytes, 'x'); }};

class ProcessTest : public weft_test::ChildProcessLeakCheck,
                    public ::testing::WithParamInterface<weft::StartMethod> {
 protected:
  weft::StartMethod method() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(StartMethods, ProcessTest, weft_test::all_start_methods(),
                         weft_test::start_method_name);

}  // namespace

TEST_P(ProcessTest, ReturnsTheResultAndEveryStateSaysSo) {
  weft::DestroyableProcess work(method(), any_result);
  work.start();
  EXPECT_GT(work.pid(), 0);
  EXPECT_NE(work.pid(), ::getpid());
  EXPECT_EQ(work.get_or_throw(), "test-any-result");
  EXPECT_EQ(work.get_or_throw(), "test-any-result");
  EXPECT_TRUE(work.done());
  EXPECT_FALSE(work.destroyed());
  EXPECT_FALSE(work.canceled());
  EXPECT_TRUE(work.ran());
  EXPECT_FALSE(work.threw());
  EXPECT_EQ(work.error(), nullptr);
}

TEST_P(ProcessTest, PassesArgumentsThroughTheCodec) {
  weft::DestroyableProcess work(method(), add_length, 40, std::string("ab"));
  work.start();
  EXPECT_EQ(work.get_or_throw(), 42);
}

TEST_P(ProcessTest, AVoidResultSendsNothing) {
  weft::DestroyableProcess work(method(), do_nothing);
  work.start();
  EXPECT_NO_THROW(work.get_or_throw());
}

TEST_P(ProcessTest, ADestroyAfterSuccessDoesNotCancelIt) {
  weft::DestroyableProcess work(method(), any_result);
  work.start();
  ASSERT_TRUE(work.join());
  work.destroy();
  EXPECT_TRUE(work.destroyed());
  EXPECT_FALSE(work.canceled());
  EXPECT_EQ(work.get_or_throw(), "test-any-result");
}

TEST_P(ProcessTest, DestroyEndsALoopingChildWithSigtermAndCancelsIt) {
  HangWatchdog watchdog("destroying a looping child");
  weft::DestroyableProcess work(method(), loop_forever);
  work.start();
  work.destroy();
  EXPECT_TRUE(work.done());
  EXPECT_TRUE(work.join(60s));
  EXPECT_TRUE(work.destroyed());
  EXPECT_TRUE(work.canceled());
  EXPECT_TRUE(work.ran());
  EXPECT_FALSE(work.threw());
  EXPECT_EQ(work.error(), nullptr);
  EXPECT_THROW(work.get_or_throw(), std::runtime_error);
}

TEST_P(ProcessTest, TheEscalationToSigkillIsNotReportedAsOutOfMemory) {
  HangWatchdog watchdog("escalating to SIGKILL");
  weft::DestroyableProcess work(weft::DestroyableOptions{.destroy_grace_period = 50ms}, method(),
                                ignore_sigterm);
  work.start();
  std::this_thread::sleep_for(20ms);  // let it install its SIG_IGN (the test holds either way)
  work.destroy();
  EXPECT_TRUE(work.canceled());
  EXPECT_EQ(work.error(), nullptr);
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const weft::ChildOutOfMemoryError&) {
    FAIL() << "weft's own SIGKILL reported as out of memory";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "process was destroyed");
  }
}

TEST_P(ProcessTest, ASigkillWeftDidNotSendIsOutOfMemory) {
  weft::DestroyableProcess work(method(), kill_self);
  work.start();
  ASSERT_TRUE(work.join());
  EXPECT_FALSE(work.threw());
  EXPECT_FALSE(work.canceled());
  EXPECT_THROW(work.get_or_throw(), weft::ChildOutOfMemoryError);
  try {
    work.get_or_throw();
  } catch (const weft::ChildOutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("died with OOM error"), std::string::npos) << e.what();
  }
}

TEST_P(ProcessTest, ExitCode137IsOutOfMemory) {
  weft::DestroyableProcess work(method(), exit_137);
  work.start();
  EXPECT_THROW(work.get_or_throw(), weft::ChildOutOfMemoryError);
}

TEST_P(ProcessTest, AnotherExitCodeIsAnErrorNamingIt) {
  weft::DestroyableProcess work(method(), exit_3);
  work.start();
  ASSERT_TRUE(work.join());
  EXPECT_FALSE(work.threw());
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("exit code 3"), std::string::npos) << e.what();
  }
}

TEST_P(ProcessTest, TheChildsExceptionArrivesWithItsTypeAndWhat) {
  weft::DestroyableProcess work(method(), throw_invalid);
  work.start();
  ASSERT_TRUE(work.join());
  EXPECT_TRUE(work.threw());
  EXPECT_FALSE(work.canceled());
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const weft::ChildError& e) {
    EXPECT_EQ(e.type_name(), "std::invalid_argument");
    EXPECT_STREQ(e.what(), "bad value");
  }
}

TEST_P(ProcessTest, ANestedExceptionArrivesNested) {
  weft::DestroyableProcess work(method(), throw_nested);
  work.start();
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const weft::ChildError& effect) {
    EXPECT_EQ(effect.type_name(), "std::runtime_error");
    EXPECT_STREQ(effect.what(), "the effect");
    try {
      std::rethrow_if_nested(effect);
      FAIL() << "no cause";
    } catch (const weft::ChildError& cause) {
      EXPECT_EQ(cause.type_name(), "std::out_of_range");
      EXPECT_STREQ(cause.what(), "the cause");
    }
  }
}

TEST_P(ProcessTest, ANonStandardExceptionArrivesWithItsTypeName) {
  weft::DestroyableProcess work(method(), throw_int);
  work.start();
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const weft::ChildError& e) {
    EXPECT_EQ(e.type_name(), "int");
    EXPECT_STREQ(e.what(), "unknown exception");
  }
}

TEST_P(ProcessTest, ADestroyBeforeStartForksNothingAndCompletes) {
  weft::Event<> completed;
  weft::DestroyableProcess work(weft::DestroyableOptions{.completion_event = &completed}, method(),
                                any_result);
  work.destroy();
  EXPECT_TRUE(completed.ready());
  work.start();
  EXPECT_TRUE(work.join());
  EXPECT_EQ(work.pid(), -1);
  EXPECT_TRUE(work.destroyed());
  EXPECT_TRUE(work.canceled());
  EXPECT_FALSE(work.ran());
  EXPECT_FALSE(work.threw());
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "Not starting work on pre-canceled process");
  }
}

TEST_P(ProcessTest, TheCompletionEventIsSentOnSuccessAndOnError) {
  for (bool fail : {false, true}) {
    weft::Event<> completed;
    weft::DestroyableOptions options{.completion_event = &completed};
    if (fail) {
      weft::DestroyableProcess work(options, method(), throw_invalid);
      work.start();
      ASSERT_TRUE(work.join());
    } else {
      weft::DestroyableProcess work(options, method(), any_result);
      work.start();
      ASSERT_TRUE(work.join());
    }
    EXPECT_TRUE(completed.ready()) << (fail ? "error" : "success");
  }
}

TEST_P(ProcessTest, AResultLargerThanAPipeArrivesWhole) {
  HangWatchdog watchdog("a 1 MiB result");
  weft::DestroyableProcess work(method(), big_result, std::size_t{1} << 20);
  work.start();
  const std::string result = work.get_or_throw();
  EXPECT_EQ(result.size(), std::size_t{1} << 20);
  EXPECT_EQ(result.find_first_not_of('x'), std::string::npos);
}

TEST_P(ProcessTest, JoinFromAFiberSuspendsOnlyThatFiber) {
  HangWatchdog watchdog("a join from a fiber");
  weft::run([&] {
    weft::DestroyableProcess work(method(), loop_forever);
    work.start();
    std::atomic<bool> ran{false};
    auto other = weft::spawn([&] { ran = true; });
    EXPECT_FALSE(work.join(50ms));
    EXPECT_TRUE(ran.load());
    work.destroy();
    EXPECT_TRUE(work.canceled());
  });
}

TEST_P(ProcessTest, KillingAFiberWaitingForTheChildLeavesTheChildToItsOwner) {
  HangWatchdog watchdog("a killed waiter");
  pid_t pid = -1;
  weft::run([&] {
    weft::DestroyableProcess work(method(), loop_forever);
    work.start();
    pid = work.pid();
    auto waiter = weft::spawn([&] { work.get_or_throw(); });
    weft::sleep(1ms);  // it waits
    waiter.kill();
    EXPECT_THROW(waiter.wait(), weft::FiberExit);
    EXPECT_FALSE(work.done());  // the kill ended the wait, not the child
    EXPECT_EQ(::kill(pid, 0), 0);
  });  // the owner's destructor destroys and reaps it
  EXPECT_EQ(::kill(pid, 0), -1);
}

TEST_P(ProcessTest, TheDestructorEndsARunningChild) {
  HangWatchdog watchdog("destroying a running child");
  pid_t pid;
  {
    weft::DestroyableProcess work(method(), loop_forever);
    work.start();
    pid = work.pid();
  }
  EXPECT_EQ(::kill(pid, 0), -1);  // gone, and reaped
}

TEST_P(ProcessTest, AChildCanUseWeftItself) {
  weft::DestroyableProcess work(method(), uses_weft, 20);
  work.start();
  EXPECT_EQ(work.get_or_throw(), 41);
}

TEST_P(ProcessTest, StartsFromAProcessWhoseHubRunsAndWhoseWorkersAreBusy) {
  HangWatchdog watchdog("a child started beside a busy hub and worker");
  weft::run([&] {
    std::atomic<bool> release{false};
    auto busy = weft::spawn([&] {
      weft::to_thread::run_sync([&] {
        while (!release)
          std::this_thread::sleep_for(1ms);
      });
    });
    weft::sleep(1ms);  // the worker is taken
    weft::DestroyableProcess work(method(), uses_a_hub, 20);
    work.start();
    EXPECT_EQ(work.get_or_throw(), 41);
    release = true;
    busy.wait();
  });
}

class Forkserver : public weft_test::ChildProcessLeakCheck {};

// The server's state in /proc: "" once it is gone (or a zombie: it has exited).
bool has_exited(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  return line.substr(line.rfind(')') + 2, 1) == "Z";
}

TEST_F(Forkserver, ItsChildrenAreItsOwnNotThisProcesss) {
  const auto servers = weft_test::forkservers_of(::getpid());
  ASSERT_EQ(servers.size(), 1u);
  weft::DestroyableProcess work(weft::StartMethod::forkserver, parent_pid);
  work.start();
  EXPECT_EQ(work.get_or_throw(), servers[0]);
}

// The parent of the test below: a fresh exec of this test program (a fork of
// it could not start threads under TSan), which has no forkserver until it
// uses one. Prints the fds that cost it and the server's pid.
constexpr const char* forkserver_parent_flag = "--forkserver-parent";

int run_as_forkserver_parent() {
  // A first child makes the hub worker (and its hub's fds) that the next reuses.
  weft::DestroyableProcess first(weft::StartMethod::fork, do_nothing);
  first.start();
  first.join();
  const std::size_t before = weft_test::open_fds();
  weft_test::start_the_forkserver();
  const long cost = static_cast<long>(weft_test::open_fds()) - static_cast<long>(before);
  const auto servers = weft_test::forkservers_of(::getpid());
  std::printf("%ld %ld\n", cost, servers.size() == 1 ? static_cast<long>(servers[0]) : -1L);
  return 0;
}

TEST_F(Forkserver, CostsItsParentOneFdAndExitsWithIt) {
  HangWatchdog watchdog("a forkserver outliving its parent");
  int output[2];
  ASSERT_EQ(::pipe2(output, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, output[1], STDOUT_FILENO);
  std::string program = "/proc/self/exe", flag = forkserver_parent_flag;
  char* argv[] = {program.data(), flag.data(), nullptr};
  pid_t parent = -1;
  ASSERT_EQ(::posix_spawn(&parent, program.c_str(), &actions, nullptr, argv, environ), 0);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(output[1]);
  std::string said;
  char buffer[256];
  for (ssize_t got; (got = ::read(output[0], buffer, sizeof buffer)) > 0;)
    said.append(buffer, static_cast<std::size_t>(got));
  ::close(output[0]);
  int status;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  long cost = -1, server = -1;
  std::istringstream(said) >> cost >> server;
  EXPECT_EQ(cost, 1) << "fds the forkserver cost its parent";
  ASSERT_GT(server, 0) << "no forkserver found";
  while (!has_exited(static_cast<pid_t>(server)))
    std::this_thread::sleep_for(1ms);
}

TEST_F(Forkserver, AKilledServerIsReapedAndReplaced) {
  const auto servers = weft_test::forkservers_of(::getpid());
  ASSERT_EQ(servers.size(), 1u);
  ASSERT_EQ(::kill(servers[0], SIGKILL), 0);
  while (!has_exited(servers[0]))
    std::this_thread::sleep_for(1ms);
  weft::DestroyableProcess work(weft::StartMethod::forkserver, add_length, 1, std::string("ab"));
  work.start();
  EXPECT_EQ(work.get_or_throw(), 3);
  EXPECT_EQ(weft_test::forkservers_of(::getpid()).size(), 1u);
}

TEST(ProcessBadInput, SpawnAndForkserverNeedAProcessEntry) {
  EXPECT_THROW(weft::DestroyableProcess(weft::StartMethod::spawn, [] { return 1; }),
               std::invalid_argument);
  EXPECT_THROW(weft::DestroyableProcess(weft::StartMethod::forkserver, [] { return 1; }),
               std::invalid_argument);
}

TEST(ProcessBadInput, ForkRunsAnyCallable) {
  int captured = 20;
  weft::DestroyableProcess work(
      weft::StartMethod::fork, [captured](int more) { return captured + more; }, 22);
  work.start();
  EXPECT_EQ(work.get_or_throw(), 42);
}

TEST(ProcessBadInput, AnUnknownEntryNameFailsClearlyInTheChild) {
  const weft::ProcessEntry<int()> unregistered_twice_a{"test.clash", [] { return 1; }};
  const weft::ProcessEntry<int()> unregistered_twice_b{"test.clash", [] { return 2; }};
  // In the spawned child the name is registered twice only if these ran before main there; they do
  // not (they are locals), so the child finds no entry of that name.
  for (const auto method : {weft::StartMethod::spawn, weft::StartMethod::forkserver}) {
    weft::DestroyableProcess work(method, unregistered_twice_a);
    work.start();
    try {
      work.get_or_throw();
      ADD_FAILURE() << "no exception";
    } catch (const weft::ChildError& e) {
      EXPECT_EQ(e.type_name(), "std::invalid_argument");
      EXPECT_NE(std::string(e.what()).find("no ProcessEntry named 'test.clash'"),
                std::string::npos)
          << e.what();
    }
  }
}

int main(int argc, char** argv) {
  weft::process_main(argc, argv);
  if (argc > 1 && std::string(argv[1]) == forkserver_parent_flag) return run_as_forkserver_parent();
  weft_test::start_the_forkserver();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

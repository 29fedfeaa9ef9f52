// Managed processes (continuous_threading's safe_multiprocessing), for the
// fork, spawn and forkserver start methods: the loop of each kind in a child,
// init and cleanup around it on every path, the child's exception in
// error(), pause and resume without a late iteration, the periodic schedule,
// items in FIFO order, commands on an object kept in the child, a child that
// stops by itself once its parent has died, and no fd, thread or zombie left
// behind.
//
// The children report through files in a directory made for this run (its
// path in an environment variable set before the forkserver starts, so that
// every child finds it): one byte or one line per call. No timing threshold:
// "not after" is checked as "nothing more came", and the bounded waits are
// only hang guards.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
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
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* directory_variable = "WEFT_MANAGED_PROCESS_TEST_DIR";
constexpr auto upper_bound = 60s;
constexpr auto hang_bound = 120s;

std::filesystem::path test_file(const std::string& name) {
  const char* directory = std::getenv(directory_variable);
  if (directory == nullptr) throw std::logic_error("no test directory");
  return std::filesystem::path(directory) / name;
}

// From a child: one write, so lines of concurrent writers never mix.
void append(const std::string& name, const std::string& text) {
  const int fd = ::open(test_file(name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot open " + name);
  const ssize_t wrote = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (wrote != static_cast<ssize_t>(text.size())) throw std::runtime_error("short write");
}

std::string read_file(const std::string& name) {
  std::ifstream in(test_file(name));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::size_t file_size(const std::string& name) {
  std::error_code error;
  const auto size = std::filesystem::file_size(test_file(name), error);
  return error ? 0 : static_cast<std::size_t>(size);
}

std::vector<std::string> lines_of(const std::string& name) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(name));
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// A pid that no longer names a process (reaped, by us or by the forkserver).
bool gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

// --- What the children run (registered before main) ---

inline const weft::ProcessEntry<void()> count{"test.mp.count", [] { append("count", "t"); }};
inline const weft::ProcessEntry<void()> log_init{"test.mp.init", [] { append("log", "i"); }};
inline const weft::ProcessEntry<void()> log_cleanup{"test.mp.cleanup", [] { append("log", "c"); }};
inline const weft::ProcessEntry<void()> log_target{"test.mp.target", [] {
                                                     append("log", "t");
                                                     std::this_thread::sleep_for(1ms);
                                                   }};
inline const weft::ProcessEntry<void()> throwing_target{
    "test.mp.throwing_target", [] {
      append("log", "t");
      throw std::invalid_argument("the target failed");
    }};
inline const weft::ProcessEntry<void()> stamp{
    "test.mp.stamp", [] { append("stamps", std::to_string(now_ns()) + "\n"); }};
inline const weft::ProcessEntry<void()> stuck{"test.mp.stuck", [] {
                                                append("count", "t");
                                                for (;;)
                                                  ::pause();
                                              }};
inline const weft::ProcessEntry<void(int)> record{
    "test.mp.record", [](int item) { append("items", std::to_string(item) + ","); }};

// --- The object of the command tests ---

struct Point {
  int x = 0;
  int y = 0;

  void set_x(int value) { x = value; }
  void set_y(int value) { y = value; }
  // Appends "x,y" as a line to the test file `name`.
  void write_state(const std::string& name) const {
    append(name, std::to_string(x) + "," + std::to_string(y) + "\n");
  }
  // Sends what weft logs in this child to the test file `name`.
  void log_to(const std::string& name) {
    weft::set_log_handler([name](weft::LogLevel level, std::string_view text) {
      append(name, std::string(weft::to_string(level)) + ": " + std::string(text) + "\n");
    });
  }
  void fail() { throw std::runtime_error("the command failed"); }
};

}  // namespace

template <>
struct weft::Codec<Point> {
  static void encode(const Point& point, std::string& out) {
    weft::Codec<int>::encode(point.x, out);
    weft::Codec<int>::encode(point.y, out);
  }
  static Point decode(std::string_view& in) {
    Point point;
    point.x = weft::Codec<int>::decode(in);
    point.y = weft::Codec<int>::decode(in);
    return point;
  }
};

namespace {

inline const weft::Command<&Point::set_x> set_x{"set_x"};
inline const weft::Command<&Point::set_y> set_y{"set_y"};
inline const weft::Command<&Point::write_state> write_state{"write_state"};
inline const weft::Command<&Point::log_to> log_to{"log_to"};
inline const weft::Command<&Point::fail> fail{"fail"};

// A type no Command is registered for.
struct Unregistered {
  void touch() {}
};

class ManagedProcessTest : public weft_test::ChildProcessLeakCheck,
                           public ::testing::WithParamInterface<weft::StartMethod> {
 protected:
  void SetUp() override {
    clear_directory();
    weft_test::ChildProcessLeakCheck::SetUp();
  }
  void TearDown() override {
    weft_test::ChildProcessLeakCheck::TearDown();
    clear_directory();
  }
  weft::StartMethod method() const { return GetParam(); }

 private:
  static void clear_directory() {
    for (const auto& entry : std::filesystem::directory_iterator(std::getenv(directory_variable))) {
      std::filesystem::remove_all(entry.path());
    }
  }
};

INSTANTIATE_TEST_SUITE_P(StartMethods, ManagedProcessTest, weft_test::all_start_methods(),
                         weft_test::start_method_name);

}  // namespace

// --- ContinuousProcess ---

TEST_P(ManagedProcessTest, ContinuousLoopRunsInAChildUntilJoinedAndNotAfter) {
  HangWatchdog watchdog("continuous loop", hang_bound);
  weft::ContinuousProcess process(method(), count);
  EXPECT_EQ(process.pid(), -1);
  EXPECT_FALSE(process.is_alive());
  process.start();
  EXPECT_TRUE(process.is_alive());
  EXPECT_GT(process.pid(), 0);
  EXPECT_NE(process.pid(), ::getpid());
  ASSERT_TRUE(eventually([] { return file_size("count") >= 3; }));
  EXPECT_TRUE(process.join());
  EXPECT_FALSE(process.is_alive());
  EXPECT_EQ(process.error(), nullptr);
  EXPECT_TRUE(gone(process.pid()));
  const std::size_t after_join = file_size("count");
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(file_size("count"), after_join) << "an iteration after join";
}

TEST_P(ManagedProcessTest, StartIsIdempotentWhileTheChildRuns) {
  HangWatchdog watchdog("idempotent start", hang_bound);
  weft::ContinuousProcess process(method(), count);
  process.start();
  const pid_t first = process.pid();
  process.start();
  EXPECT_EQ(process.pid(), first);
  EXPECT_TRUE(process.join());
}

TEST_P(ManagedProcessTest, InitAndCleanupRunOnceEachAroundTheLoop) {
  HangWatchdog watchdog("init and cleanup", hang_bound);
  weft::ContinuousProcess process(method(), log_target, {.init = log_init, .cleanup = log_cleanup});
  process.start();
  ASSERT_TRUE(eventually([] {
    const std::string log = read_file("log");
    return std::count(log.begin(), log.end(), 't') >= 2;
  }));
  EXPECT_TRUE(process.join());
  const std::string log = read_file("log");
  ASSERT_GE(log.size(), 4u);
  EXPECT_EQ(log.front(), 'i') << log;
  EXPECT_EQ(log.back(), 'c') << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), 'i'), 1) << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), 'c'), 1) << log;
}

TEST_P(ManagedProcessTest, StartAfterJoinRunsANewChildAndInitAgain) {
  HangWatchdog watchdog("restart", hang_bound);
  weft::ContinuousProcess process(method(), log_target, {.init = log_init, .cleanup = log_cleanup});
  process.start();
  const pid_t first = process.pid();
  EXPECT_TRUE(process.join());
  process.start();
  EXPECT_NE(process.pid(), first);
  EXPECT_TRUE(process.is_alive());
  EXPECT_TRUE(process.join());
  const std::string log = read_file("log");
  EXPECT_EQ(std::count(log.begin(), log.end(), 'i'), 2) << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), 'c'), 2) << log;
}

TEST_P(ManagedProcessTest, TheTargetsExceptionEndsTheLoopRunsCleanupAndComesBackAsChildError) {
  HangWatchdog watchdog("throwing target", hang_bound);
  weft::ContinuousProcess process(method(), throwing_target,
                                  {.init = log_init, .cleanup = log_cleanup});
  process.start();
  // It ends by itself (a join now would end it before the first iteration).
  ASSERT_TRUE(eventually([&] { return !process.is_alive(); }));
  EXPECT_TRUE(process.join());
  EXPECT_EQ(read_file("log"), "itc");
  EXPECT_FALSE(process.is_alive());
  ASSERT_NE(process.error(), nullptr);
  try {
    std::rethrow_exception(process.error());
  } catch (const weft::ChildError& e) {
    EXPECT_EQ(e.type_name(), "std::invalid_argument");
    EXPECT_STREQ(e.what(), "the target failed");
  } catch (...) {
    ADD_FAILURE() << "not a ChildError";
  }
  // A restart clears it.
  weft::ContinuousProcess again(method(), count);
  again.start();
  EXPECT_TRUE(again.join());
  EXPECT_EQ(again.error(), nullptr);
}

TEST_P(ManagedProcessTest, JoinWithATimeoutReturnsFalseWhileTheTargetBlocks) {
  HangWatchdog watchdog("join timeout", hang_bound);
  weft::ContinuousProcess process(method(), stuck, {.destroy_grace_period = 0.05s});
  process.start();
  ASSERT_TRUE(eventually([] { return file_size("count") >= 1; }));
  EXPECT_FALSE(process.join(10ms));
  EXPECT_FALSE(process.is_alive());
  // The destructor ends it (SIGTERM after the grace period) and reaps it.
}

TEST_P(ManagedProcessTest, TheDestructorEndsALoopingChildAndReapsIt) {
  HangWatchdog watchdog("destructor", hang_bound);
  pid_t pid = -1;
  {
    weft::ContinuousProcess process(method(), log_target,
                                    {.init = log_init, .cleanup = log_cleanup});
    process.start();
    pid = process.pid();
    ASSERT_TRUE(eventually([] { return file_size("log") >= 2; }));
  }
  EXPECT_TRUE(gone(pid));
  EXPECT_EQ(read_file("log").back(), 'c') << "the destructor joins: cleanup ran";
}

TEST_P(ManagedProcessTest, TheDestructorKillsAChildStuckInItsTarget) {
  HangWatchdog watchdog("destructor of a stuck child", hang_bound);
  pid_t pid = -1;
  {
    weft::ContinuousProcess process(method(), stuck, {.destroy_grace_period = 0.05s});
    process.start();
    pid = process.pid();
    ASSERT_TRUE(eventually([] { return file_size("count") >= 1; }));
  }
  EXPECT_TRUE(gone(pid));
}

// --- PausableProcess ---

TEST_P(ManagedProcessTest, PausableStopFreezesTheCounterAndStartResumesIt) {
  HangWatchdog watchdog("pausable", hang_bound);
  weft::PausableProcess process(method(), count, {.init = log_init, .cleanup = log_cleanup});
  process.start();
  ASSERT_TRUE(eventually([] { return file_size("count") >= 2; }));
  process.stop();  // returns once the child is parked
  EXPECT_FALSE(process.is_alive());
  const std::size_t frozen = file_size("count");
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(file_size("count"), frozen) << "an iteration after stop() returned";
  process.start();
  EXPECT_TRUE(process.is_alive());
  ASSERT_TRUE(eventually([&] { return file_size("count") > frozen; }));
  process.stop();
  const std::size_t frozen_again = file_size("count");
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(file_size("count"), frozen_again);
  EXPECT_TRUE(process.join());  // ends the paused child
  EXPECT_EQ(read_file("log"), "ic") << "init once, not again on resume; cleanup once";
}

// --- PeriodicProcess ---

TEST_P(ManagedProcessTest, PeriodicFirstCallIsAtOnceAndStopEndsALongWait) {
  HangWatchdog watchdog("periodic first call", hang_bound);
  weft::PeriodicProcess process(method(), 1h, stamp);
  process.start();
  ASSERT_TRUE(eventually([] { return file_size("stamps") > 0; }));
  EXPECT_TRUE(process.join());
  EXPECT_EQ(lines_of("stamps").size(), 1u);
}

TEST_P(ManagedProcessTest, PeriodicCallsAreNeverEarlierThanStartPlusKIntervals) {
  HangWatchdog watchdog("periodic schedule", hang_bound);
  constexpr auto interval = 10ms;
  weft::PeriodicProcess process(method(), interval, stamp);
  const std::int64_t before_start = now_ns();
  process.start();
  ASSERT_TRUE(eventually([] { return lines_of("stamps").size() >= 6; }));
  EXPECT_TRUE(process.join());
  const std::vector<std::string> stamps = lines_of("stamps");
  const std::int64_t step = std::chrono::nanoseconds(interval).count();
  for (std::size_t k = 0; k < stamps.size(); ++k) {
    EXPECT_GE(std::stoll(stamps[k]), before_start + static_cast<std::int64_t>(k) * step)
        << "call " << k << " came early";
  }
}

// --- OperationProcess ---

TEST_P(ManagedProcessTest, OperationProcessAddDataStartsItAndRunsItemsInFifoOrder) {
  HangWatchdog watchdog("operation FIFO", hang_bound);
  weft::OperationProcess<int> process(method(), record);
  process.add_data(1);
  EXPECT_TRUE(process.is_alive());
  ASSERT_TRUE(eventually([] { return read_file("items") == "1,"; }));
  process.add_data(2);
  process.add_data(3);
  process.add_data(4);
  EXPECT_TRUE(process.join());
  EXPECT_EQ(read_file("items"), "1,2,3,4,");
  EXPECT_EQ(process.queue_size(), 0u);
}

TEST_P(ManagedProcessTest, OperationJoinFirstRunsEveryItemAddedBeforeIt) {
  HangWatchdog watchdog("operation join", hang_bound);
  weft::OperationProcess<int> process(method(), record);
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    process.add_data(i);
    expected += std::to_string(i) + ",";
  }
  EXPECT_TRUE(process.join());
  EXPECT_EQ(read_file("items"), expected);
  EXPECT_EQ(process.queue_size(), 0u);
}

TEST_P(ManagedProcessTest, OperationStopEndsTheChildOnceWhatItHoldsHasRun) {
  HangWatchdog watchdog("operation stop", hang_bound);
  weft::OperationProcess<int> process(method(), record);
  process.add_data(1);
  process.add_data(2);
  process.stop();
  EXPECT_FALSE(process.is_alive());
  EXPECT_TRUE(process.join());
  // Whatever reached the child ran; whatever did not is still queued.
  const std::string ran = read_file("items");
  EXPECT_TRUE(ran == "" || ran == "1," || ran == "1,2,") << ran;
  EXPECT_EQ(process.queue_size(), ran == "" ? 2u : ran == "1," ? 1u : 0u);
  // A later start runs the rest, in order.
  process.start();
  EXPECT_TRUE(process.join());
  EXPECT_EQ(read_file("items"), "1,2,");
  EXPECT_EQ(process.queue_size(), 0u);
}

// --- CommandProcess ---

TEST_P(ManagedProcessTest, CommandProcessRunsCommandsInOrderOnItsObjectAndLogsFailures) {
  HangWatchdog watchdog("commands", hang_bound);
  weft::CommandProcess<Point> process(method());
  process.send_cmd(log_to, "log");
  process.send_cmd("set_x", 1);  // by name, arguments as given
  process.send_cmd(set_y, 2);    // through the Command: converted to its parameters
  process.send_cmd(write_state, "state");
  process.send_cmd("no_such_command", "a literal goes as a std::string");
  process.send_cmd(fail);
  process.send_cmd("set_x", std::string("not an int"));
  process.send_cmd(set_x, 3);
  process.send_cmd(set_y, 5);
  process.send_cmd(write_state, "state");
  EXPECT_TRUE(process.join());
  EXPECT_EQ(process.error(), nullptr);
  EXPECT_EQ(read_file("state"), "1,2\n3,5\n");
  const std::string log = read_file("log");
  EXPECT_NE(log.find("error: weft::CommandProcess: no command 'no_such_command' of "),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("Point failed: the command failed"), std::string::npos) << log;
  EXPECT_NE(log.find("command 'set_x' of (anonymous namespace)::Point failed: weft::Codec"),
            std::string::npos)
      << log;
}

TEST_P(ManagedProcessTest, CommandProcessStartsFromTheObjectItWasGiven) {
  HangWatchdog watchdog("command object", hang_bound);
  weft::CommandProcess<Point> process(method(), Point{7, 8});
  process.send_cmd(write_state, "state");
  process.send_cmd(set_x, 9);
  process.send_cmd(write_state, "state");
  EXPECT_TRUE(process.join());
  // A new child starts from the object again.
  process.send_cmd(write_state, "state");
  EXPECT_TRUE(process.join());
  EXPECT_EQ(read_file("state"), "7,8\n9,8\n7,8\n");
}

// --- A child whose parent has died ---

// The intermediate parent of the test below, a fresh exec of this test
// program (a fork of it could not start threads under TSan): starts a
// looping child, says who it and its forkserver are on fd 10, and exits
// without a join when fd 11 closes.
constexpr const char* orphan_parent_flag = "--orphan-parent";
constexpr int orphan_report_fd = 10;
constexpr int orphan_go_fd = 11;

[[noreturn]] void run_as_orphan_parent(weft::StartMethod method) {
  try {
    auto* process =
        new weft::ContinuousProcess(method, log_target, {.init = log_init, .cleanup = log_cleanup});
    process->start();
    std::vector<pid_t> report{process->pid()};
    for (pid_t server : weft_test::forkservers_of(::getpid()))
      report.push_back(server);
    const auto give_up = Clock::now() + upper_bound;
    while (file_size("log") < 2 && Clock::now() < give_up)
      std::this_thread::sleep_for(1ms);
    (void)!::write(orphan_report_fd, report.data(), report.size() * sizeof(pid_t));
    char byte;
    (void)!::read(orphan_go_fd, &byte, 1);
  } catch (...) {
  }
  ::_exit(0);
}

TEST_P(ManagedProcessTest, AChildWhoseParentDiedStopsByItself) {
  HangWatchdog watchdog("orphaned child", hang_bound);
  // Orphans of the intermediate process come to this one, which reaps them.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  int pids[2], go[2];
  ASSERT_EQ(::pipe2(pids, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, pids[1], orphan_report_fd);
  ::posix_spawn_file_actions_adddup2(&actions, go[0], orphan_go_fd);
  std::string program = "/proc/self/exe", flag = orphan_parent_flag;
  std::string method_number = std::to_string(static_cast<int>(method()));
  char* argv[] = {program.data(), flag.data(), method_number.data(), nullptr};
  pid_t parent = -1;
  ASSERT_EQ(::posix_spawn(&parent, program.c_str(), &actions, nullptr, argv, environ), 0);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(pids[1]);
  ::close(go[0]);
  std::vector<pid_t> orphans(8);
  const ssize_t got = ::read(pids[0], orphans.data(), orphans.size() * sizeof(pid_t));
  ::close(pids[0]);
  orphans.resize(got > 0 ? static_cast<std::size_t>(got) / sizeof(pid_t) : 0);
  // The grandchild loops until its parent dies: its pidfd is taken first.
  const int grandchild =
      orphans.empty() ? -1 : static_cast<int>(::syscall(SYS_pidfd_open, orphans[0], 0));
  ::close(go[1]);  // the intermediate parent exits
  int status = 0;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  ASSERT_FALSE(orphans.empty()) << "the intermediate parent reported nothing";
  ASSERT_GE(grandchild, 0);
  pollfd exited{.fd = grandchild, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&exited, 1, -1), 1);
  ::close(grandchild);
  // Reaped: its forkserver (which came to this process) and then the
  // grandchild, unless that server reaped it first.
  for (std::size_t i = orphans.size(); i-- > 0;) {
    const pid_t reaped = ::waitpid(orphans[i], &status, 0);
    if (i == 0 && method() == weft::StartMethod::forkserver && reaped < 0) continue;
    ASSERT_EQ(reaped, orphans[i]);
    if (i == 0) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
  }
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
  EXPECT_EQ(read_file("log").back(), 'c') << "cleanup ran in the orphaned child";
}

// --- Any callable with fork ---

TEST(ManagedProcessFork, RunsAnyCallableAndSharesMemoryMappedShared) {
  HangWatchdog watchdog("fork callables", hang_bound);
  void* shared = ::mmap(nullptr, sizeof(std::atomic<int>) * 3, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  auto* counters = new (shared) std::atomic<int>[3] {};
  {
    weft::PausableProcess process(weft::StartMethod::fork, [counters] { ++counters[1]; },
                                  {.name = "weft-mp-test",
                                   .init = [counters] { ++counters[0]; },
                                   .cleanup = [counters] { ++counters[2]; }});
    process.start();
    ASSERT_TRUE(eventually([&] { return counters[1].load() >= 3; }));
    process.stop();
    const int frozen = counters[1].load();
    std::this_thread::sleep_for(10ms);
    EXPECT_EQ(counters[1].load(), frozen);
    std::ifstream comm("/proc/" + std::to_string(process.pid()) + "/comm");
    std::string name;
    std::getline(comm, name);
    EXPECT_EQ(name, "weft-mp-test");
    EXPECT_TRUE(process.join());
  }
  EXPECT_EQ(counters[0].load(), 1);
  EXPECT_EQ(counters[2].load(), 1);
  ::munmap(shared, sizeof(std::atomic<int>) * 3);
}

// --- Bad input ---

TEST(ManagedProcessBadInput, PlainCallablesNeedForkAndTargetsMustNotBeEmpty) {
  for (const auto method : {weft::StartMethod::spawn, weft::StartMethod::forkserver}) {
    EXPECT_THROW(weft::ContinuousProcess(method, [] {}), std::invalid_argument);
    EXPECT_THROW(weft::PausableProcess(method, count, {.init = [] {}}), std::invalid_argument);
    EXPECT_THROW(weft::PeriodicProcess(method, 1s, count, {.cleanup = [] {}}),
                 std::invalid_argument);
    EXPECT_THROW(weft::OperationProcess<int>(method, [](int) {}), std::invalid_argument);
    EXPECT_THROW(weft::CommandProcess<Unregistered>{method}, std::invalid_argument);
  }
  EXPECT_THROW(weft::ContinuousProcess(weft::StartMethod::fork, std::function<void()>()),
               std::invalid_argument);
  EXPECT_THROW(weft::ContinuousProcess(weft::StartMethod::fork, weft::ProcessFunction<void()>()),
               std::invalid_argument);
  EXPECT_THROW(weft::OperationProcess<int>(weft::StartMethod::fork, std::function<void(int)>()),
               std::invalid_argument);
  EXPECT_THROW(weft::PeriodicProcess(weft::StartMethod::fork, -1s, [] {}), std::invalid_argument);
  EXPECT_THROW(weft::PeriodicProcess(weft::StartMethod::fork,
                                     std::chrono::duration<double>(std::nan("")), [] {}),
               std::invalid_argument);
  EXPECT_THROW(weft::ContinuousProcess(
                   weft::StartMethod::fork, [] {},
                   {.destroy_grace_period = std::chrono::duration<double>(std::nan(""))}),
               std::invalid_argument);
  // Without a Codec, the object of a CommandProcess crosses only by fork.
  struct NoCodec {
    int value = 0;
    void touch() {}
  };
  EXPECT_NO_THROW(weft::CommandProcess<NoCodec>(weft::StartMethod::fork, NoCodec{}));
}


int main(int argc, char** argv) {
  weft::process_main(argc, argv);
  if (argc > 2 && std::string(argv[1]) == orphan_parent_flag)
    run_as_orphan_parent(static_cast<weft::StartMethod>(std::atoi(argv[2])));
  // Before the forkserver starts, so that its children see it too.
  std::string directory = (std::filesystem::temp_directory_path() / "weft-managed-XXXXXX").string();
  if (::mkdtemp(directory.data()) == nullptr) return 1;
  ::setenv(directory_variable, directory.c_str(), 1);
  weft_test::start_the_forkserver();
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  std::filesystem::remove_all(directory);
  return result;
}

// Managed threads: continuous_threading's checklist, the bugs of the
// originals (an exception skipped cleanup and left the thread alive; a racy
// pause; an uninterruptible wall-clock sleep; join discarded queued items),
// waits from fibers, shutdown, fork and the exit of a program whose threads
// still loop. Every test checks that no thread or fd is left; waits are
// bounds against hangs, never expectations, and the only checks on real time
// are "not early".

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"
#include "hang_watchdog.hpp"
#include "log_capture.hpp"
#include "thread_state.hpp"

using namespace std::chrono_literals;
using weft::ContinuousThread;
using weft::ManagedThreadOptions;
using weft::OperationThread;
using weft::PausableThread;
using weft::PeriodicThread;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto upper_bound = 60s;

// A gate that threads wait at until it is opened (or the hang bound passes).
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mutex_);
    return opened_.wait_for(lock, upper_bound, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

std::string what(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::vector<std::string> thread_names() {
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.push_back(name);
  }
  return names;
}

// Fails a test that leaves a thread or an fd behind. A joined thread may
// still be leaving /proc for a moment, hence `eventually`.
class ManagedThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A sanitizer starts a helper thread of its own with the process's first
    // thread: let that happen before counting, and let this thread leave
    // /proc (which it does a moment after join returns) before counting.
    pid_t helper = 0;
    std::thread([&] { helper = weft_test::this_thread_tid(); }).join();
    const std::string helper_task = "/proc/self/task/" + std::to_string(helper);
    ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(helper_task); }));
    threads_before_ = weft_test::live_threads();
    fds_before_ = weft_test::open_fds();
  }
  void TearDown() override {
    EXPECT_TRUE(eventually([&] { return weft_test::live_threads() == threads_before_; }))
        << "a thread was left running; threads now: " << testing::PrintToString(thread_names());
    EXPECT_EQ(weft_test::open_fds(), fds_before_) << "an fd leaked";
  }

 private:
  std::size_t threads_before_ = 0;
  std::size_t fds_before_ = 0;
};

}  // namespace

// --- The common calls --------------------------------------------------------

TEST_F(ManagedThreadTest, StartRunsTheTargetOnAnotherThreadAndSetsIsAlive) {
  HangWatchdog watchdog("start");
  std::atomic<bool> ran{false};
  std::thread::id target_thread;
  ContinuousThread thread([&] {
    target_thread = std::this_thread::get_id();
    ran = true;
    std::this_thread::sleep_for(1ms);
  });
  EXPECT_FALSE(thread.is_alive());
  thread.start();
  EXPECT_TRUE(thread.is_alive());
  ASSERT_TRUE(eventually([&] { return ran.load(); }));
  EXPECT_TRUE(thread.join());
  EXPECT_FALSE(thread.is_alive());
  EXPECT_NE(target_thread, std::this_thread::get_id());
  EXPECT_EQ(thread.error(), nullptr);
}

TEST_F(ManagedThreadTest, ContinuousThreadCountsUntilJoinedAndNotAfter) {
  HangWatchdog watchdog("continuous");
  std::atomic<int> counter{0};
  ContinuousThread thread([&] { ++counter; });
  thread.start();
  ASSERT_TRUE(eventually([&] { return counter.load() >= 100; }));
  EXPECT_TRUE(thread.join());
  const int after_join = counter.load();
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(counter.load(), after_join);
}

TEST_F(ManagedThreadTest, StopEndsAContinuousThreadAfterTheCurrentIteration) {
  HangWatchdog watchdog("stop");
  Gate inside, release;
  std::atomic<int> iterations{0};
  ContinuousThread thread([&] {
    if (++iterations == 1) {
      inside.open();
      release.wait();
    }
  });
  thread.start();
  ASSERT_TRUE(inside.wait());
  thread.stop();  // does not wait for the iteration
  EXPECT_FALSE(thread.is_alive());
  release.open();
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(iterations.load(), 1);
}

TEST_F(ManagedThreadTest, StopFromTheTargetEndsAContinuousThreadAfterThisIteration) {
  HangWatchdog watchdog("stop from the target");
  std::atomic<int> iterations{0};
  Gate ended;
  ContinuousThread* self = nullptr;
  ManagedThreadOptions options;
  options.cleanup = [&] { ended.open(); };
  ContinuousThread thread(
      [&] {
        if (++iterations == 5) self->stop();
      },
      options);
  self = &thread;
  thread.start();
  ASSERT_TRUE(ended.wait());
  EXPECT_FALSE(thread.is_alive());
  EXPECT_EQ(iterations.load(), 5);
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, InitRunsOnceBeforeTheFirstIterationAndCleanupOnceAfterTheLast) {
  HangWatchdog watchdog("init and cleanup");
  std::mutex mutex;
  std::vector<std::string> events;
  auto record = [&](std::string what) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(what));
  };
  std::atomic<int> iterations{0};
  ManagedThreadOptions options;
  options.init = [&] { record("init"); };
  options.cleanup = [&] { record("cleanup"); };
  ContinuousThread thread(
      [&] {
        record("target");
        ++iterations;
      },
      options);
  thread.start();
  ASSERT_TRUE(eventually([&] { return iterations.load() >= 3; }));
  thread.start();  // idempotent: no second init
  ASSERT_TRUE(thread.join());
  std::lock_guard lock(mutex);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events.front(), "init");
  EXPECT_EQ(events.back(), "cleanup");
  EXPECT_EQ(std::count(events.begin(), events.end(), "init"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "cleanup"), 1);
}

TEST_F(ManagedThreadTest, StartIsIdempotentWhileTheThreadRuns) {
  HangWatchdog watchdog("idempotent start");
  const std::size_t threads_before = weft_test::live_threads();
  std::atomic<int> inits{0};
  ManagedThreadOptions options;
  options.init = [&] { ++inits; };
  ContinuousThread thread([] { std::this_thread::sleep_for(100us); }, options);
  thread.start();
  thread.start();
  thread.start();
  EXPECT_EQ(weft_test::live_threads(), threads_before + 1);
  ASSERT_TRUE(thread.join());
  EXPECT_EQ(inits.load(), 1);
}

TEST_F(ManagedThreadTest, StartAfterJoinRunsANewThreadAndInitAgain) {
  HangWatchdog watchdog("restart");
  std::atomic<int> inits{0}, cleanups{0}, iterations{0};
  ManagedThreadOptions options;
  options.init = [&] { ++inits; };
  options.cleanup = [&] { ++cleanups; };
  ContinuousThread thread([&] { ++iterations; }, options);
  for (int run = 1; run <= 3; ++run) {
    const int before = iterations.load();
    thread.start();
    ASSERT_TRUE(eventually([&] { return iterations.load() > before; }));
    ASSERT_TRUE(thread.join());
    EXPECT_EQ(inits.load(), run);
    EXPECT_EQ(cleanups.load(), run);
  }
}

TEST_F(ManagedThreadTest, StartRightAfterStopKeepsTheThreadRunning) {
  // Whether the loop already saw the stop or not, the thread runs on: the same
  // run resumes, or a new run (init again) starts on the same thread.
  HangWatchdog watchdog("stop then start");
  std::atomic<int> iterations{0};
  ContinuousThread thread([&] { ++iterations; });
  thread.start();
  for (int i = 0; i < 200; ++i) {
    thread.stop();
    thread.start();
    EXPECT_TRUE(thread.is_alive());
  }
  const int seen = iterations.load();
  ASSERT_TRUE(eventually([&] { return iterations.load() > seen + 10; }));
  EXPECT_TRUE(thread.is_alive());
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, JoinWithATimeoutReturnsFalseWhileTheTargetBlocksThenTrue) {
  HangWatchdog watchdog("join timeout");
  Gate inside, release;
  ContinuousThread thread([&] {
    inside.open();
    release.wait();
  });
  thread.start();
  ASSERT_TRUE(inside.wait());
  EXPECT_FALSE(thread.join(10ms));
  EXPECT_FALSE(thread.is_alive());  // asked to stop
  EXPECT_FALSE(thread.join(0s));
  release.open();
  EXPECT_TRUE(thread.join(std::chrono::duration<double>(upper_bound)));
  EXPECT_TRUE(thread.join());  // again: still true
}

TEST_F(ManagedThreadTest, JoinFromTheThreadsOwnTargetThrowsLogicError) {
  HangWatchdog watchdog("self join");
  std::atomic<bool> threw{false};
  ContinuousThread* self = nullptr;
  Gate constructed, tried;
  ContinuousThread thread([&] {
    constructed.wait();
    try {
      self->join();
    } catch (const std::logic_error&) {
      threw = true;
    }
    self->stop();
    tried.open();
  });
  self = &thread;
  constructed.open();
  thread.start();
  ASSERT_TRUE(tried.wait());  // a join before the first iteration would skip it
  EXPECT_TRUE(thread.join());
  EXPECT_TRUE(threw.load());
}

TEST_F(ManagedThreadTest, JoinFromInitOrCleanupAlsoThrowsLogicError) {
  HangWatchdog watchdog("join from init");
  std::atomic<int> threw{0};
  ContinuousThread* self = nullptr;
  ManagedThreadOptions options;
  auto try_join = [&] {
    try {
      self->join(1s);
    } catch (const std::logic_error&) {
      ++threw;
    }
  };
  options.init = try_join;
  options.cleanup = try_join;
  ContinuousThread thread([&] { self->stop(); }, options);
  self = &thread;
  thread.start();
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(threw.load(), 2);
}

TEST_F(ManagedThreadTest, ANullOrEmptyTargetOrANaNDurationIsRejected) {
  void (*null_function)() = nullptr;
  void (*null_operation)(int) = nullptr;
  EXPECT_THROW(ContinuousThread{null_function}, std::invalid_argument);
  EXPECT_THROW(PausableThread{std::function<void()>()}, std::invalid_argument);
  EXPECT_THROW(PeriodicThread(1s, std::function<void()>()), std::invalid_argument);
  EXPECT_THROW(OperationThread<int>{null_operation}, std::invalid_argument);
  EXPECT_THROW(OperationThread<int>{std::function<void(int)>()}, std::invalid_argument);
  EXPECT_THROW(PeriodicThread(std::chrono::duration<double>(std::nan("")), [] {}),
               std::invalid_argument);
  EXPECT_THROW(PeriodicThread(-1s, [] {}), std::invalid_argument);
  ContinuousThread thread([] {});
  EXPECT_THROW(thread.join(std::chrono::duration<double>(std::nan(""))), std::invalid_argument);
  EXPECT_THROW(weft::shutdown_managed_threads(std::chrono::duration<double>(std::nan(""))),
               std::invalid_argument);
}

TEST_F(ManagedThreadTest, TargetsMayBeMoveOnly) {
  HangWatchdog watchdog("move-only");
  auto counter = std::make_unique<std::atomic<int>>(0);
  std::atomic<int>* seen = counter.get();
  ContinuousThread thread([owned = std::move(counter)] { ++*owned; });
  thread.start();
  ASSERT_TRUE(eventually([&] { return seen->load() > 0; }));
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, TheNameIsVisibleInProcCommTruncatedTo15Bytes) {
  HangWatchdog watchdog("name");
  ManagedThreadOptions options;
  options.name = "managed-name-that-is-long";
  ContinuousThread thread([] { std::this_thread::sleep_for(1ms); }, options);
  thread.start();
  const auto names = thread_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "managed-name-th"), names.end());
  ASSERT_TRUE(thread.join());

  ContinuousThread unnamed([] { std::this_thread::sleep_for(1ms); });
  unnamed.start();
  const auto default_names = thread_names();
  EXPECT_NE(std::find(default_names.begin(), default_names.end(), "weft-managed"),
            default_names.end());
}

TEST_F(ManagedThreadTest, TheDestructorJoins) {
  HangWatchdog watchdog("destructor");
  std::atomic<bool> cleaned{false};
  std::atomic<int> iterations{0};
  {
    ManagedThreadOptions options;
    options.cleanup = [&] { cleaned = true; };
    ContinuousThread thread([&] { ++iterations; }, options);
    thread.start();
    ASSERT_TRUE(eventually([&] { return iterations.load() > 0; }));
  }
  EXPECT_TRUE(cleaned.load());
}

// --- Exceptions (the originals left alive set and skipped cleanup) -----------

TEST_F(ManagedThreadTest, AnExceptionInTheTargetEndsTheLoopRunsCleanupAndIsKept) {
  HangWatchdog watchdog("exception");
  weft_test::LogCapture log;  // the exception is logged at info
  std::atomic<int> iterations{0}, cleanups{0};
  ManagedThreadOptions options;
  options.cleanup = [&] { ++cleanups; };
  ContinuousThread thread(
      [&] {
        if (++iterations == 3) throw std::runtime_error("boom");
      },
      options);
  thread.start();
  // is_alive clears once the loop has ended, cleanup included.
  ASSERT_TRUE(eventually([&] { return !thread.is_alive(); }));
  EXPECT_EQ(cleanups.load(), 1);
  EXPECT_EQ(iterations.load(), 3);
  ASSERT_NE(thread.error(), nullptr);
  EXPECT_EQ(what(thread.error()), "boom");
  EXPECT_TRUE(thread.join());  // never rethrows
  EXPECT_EQ(what(thread.error()), "boom");
}

TEST_F(ManagedThreadTest, AThrowingInitSkipsTheTargetButCleanupStillRuns) {
  HangWatchdog watchdog("throwing init");
  weft_test::LogCapture log;
  std::atomic<int> iterations{0}, cleanups{0};
  ManagedThreadOptions options;
  options.init = [] { throw std::runtime_error("init failed"); };
  options.cleanup = [&] { ++cleanups; };
  PeriodicThread thread(
      1ms, [&] { ++iterations; }, options);
  thread.start();
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(iterations.load(), 0);
  EXPECT_EQ(cleanups.load(), 1);
  EXPECT_FALSE(thread.is_alive());
  EXPECT_EQ(what(thread.error()), "init failed");
}

TEST_F(ManagedThreadTest, AThrowingCleanupIsKeptAsTheError) {
  HangWatchdog watchdog("throwing cleanup");
  weft_test::LogCapture log;
  ManagedThreadOptions options;
  options.cleanup = [] { throw std::runtime_error("cleanup failed"); };
  PausableThread thread([] { std::this_thread::sleep_for(100us); }, options);
  thread.start();
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(what(thread.error()), "cleanup failed");
}

TEST_F(ManagedThreadTest, ARestartAfterAnExceptionClearsTheErrorAndRunsInitAgain) {
  HangWatchdog watchdog("restart after exception");
  weft_test::LogCapture log;
  std::atomic<int> inits{0}, iterations{0};
  std::atomic<bool> fail{true};
  ManagedThreadOptions options;
  options.init = [&] { ++inits; };
  ContinuousThread thread(
      [&] {
        ++iterations;
        if (fail.exchange(false)) throw std::runtime_error("once");
      },
      options);
  thread.start();
  ASSERT_TRUE(eventually([&] { return !thread.is_alive(); }));
  ASSERT_NE(thread.error(), nullptr);
  thread.start();
  EXPECT_EQ(thread.error(), nullptr);
  EXPECT_TRUE(thread.is_alive());
  ASSERT_TRUE(eventually([&] { return iterations.load() > 3; }));
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(inits.load(), 2);
  EXPECT_EQ(thread.error(), nullptr);
}

// --- PausableThread (the original's pause was racy) ---------------------------

TEST_F(ManagedThreadTest, PausableStopFreezesTheCounterAndStartResumesIt) {
  HangWatchdog watchdog("pause");
  std::atomic<int> counter{0}, inits{0};
  ManagedThreadOptions options;
  options.init = [&] { ++inits; };
  PausableThread thread([&] { ++counter; }, options);
  thread.start();
  for (int round = 0; round < 20; ++round) {
    const int before = counter.load();
    ASSERT_TRUE(eventually([&] { return counter.load() > before + 10; }));
    thread.stop();  // returns once parked
    EXPECT_FALSE(thread.is_alive());
    const int frozen = counter.load();
    std::this_thread::sleep_for(1ms);  // let the other thread run if it could
    std::this_thread::yield();
    EXPECT_EQ(counter.load(), frozen);
    thread.start();
    EXPECT_TRUE(thread.is_alive());
  }
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(inits.load(), 1);
}

TEST_F(ManagedThreadTest, PausableStopFromTheTargetPausesAfterThisIterationWithoutWaiting) {
  HangWatchdog watchdog("pause from target");
  std::atomic<int> counter{0};
  PausableThread* self = nullptr;
  Gate constructed;
  PausableThread thread([&] {
    constructed.wait();
    if (++counter == 3) self->stop();  // would deadlock if it waited for the park
  });
  self = &thread;
  constructed.open();
  thread.start();
  ASSERT_TRUE(eventually([&] { return !thread.is_alive(); }));
  thread.stop();  // waits until parked
  EXPECT_EQ(counter.load(), 3);
  thread.start();
  ASSERT_TRUE(eventually([&] { return counter.load() > 3; }));
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, JoinEndsAPausedThread) {
  HangWatchdog watchdog("join paused");
  std::atomic<int> cleanups{0};
  ManagedThreadOptions options;
  options.cleanup = [&] { ++cleanups; };
  PausableThread thread([] { std::this_thread::sleep_for(100us); }, options);
  thread.start();
  thread.stop();
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(cleanups.load(), 1);
}

// --- OperationThread (the original discarded queued items on join) ------------

TEST_F(ManagedThreadTest, OperationThreadRunsItemsInFifoOrder) {
  HangWatchdog watchdog("fifo");
  std::vector<int> seen;  // the loop thread only, until join
  OperationThread<int> thread([&](int item) { seen.push_back(item); });
  for (int item : {1, 2, 3, 4})
    thread.add_data(item);
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(thread.queue_size(), 0u);
}

TEST_F(ManagedThreadTest, AddDataStartsTheThread) {
  HangWatchdog watchdog("auto start");
  Gate ran;
  OperationThread<std::string> thread([&](const std::string& item) {
    if (item == "go") ran.open();
  });
  EXPECT_FALSE(thread.is_alive());
  thread.add_data("go");
  EXPECT_TRUE(thread.is_alive());
  EXPECT_TRUE(ran.wait());
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, JoinFirstRunsEveryItemAddedBeforeIt) {
  HangWatchdog watchdog("drain");
  constexpr int items = 20000;
  std::atomic<int> done{0};
  OperationThread<std::unique_ptr<int>> thread([&](std::unique_ptr<int> item) {
    done += *item;  // move-only items
  });
  for (int i = 0; i < items; ++i)
    thread.add_data(std::make_unique<int>(1));
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(done.load(), items);
  EXPECT_EQ(thread.queue_size(), 0u);
}

TEST_F(ManagedThreadTest, StopKeepsTheRestQueuedForALaterStart) {
  HangWatchdog watchdog("stop keeps items");
  Gate inside, release;
  Gate ended;
  std::mutex mutex;
  std::vector<int> seen;
  std::atomic<int> inits{0};
  ManagedThreadOptions options;
  options.init = [&] { ++inits; };
  options.cleanup = [&] { ended.open(); };
  OperationThread<int> thread(
      [&](int item) {
        if (item == 0) {
          inside.open();
          release.wait();
        }
        std::lock_guard lock(mutex);
        seen.push_back(item);
      },
      options);
  thread.add_data(0);
  ASSERT_TRUE(inside.wait());
  for (int item = 1; item <= 5; ++item)
    thread.add_data(item);
  thread.stop();
  EXPECT_FALSE(thread.is_alive());
  release.open();
  ASSERT_TRUE(ended.wait());  // the loop ended after item 0
  EXPECT_EQ(thread.queue_size(), 5u);
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(seen, std::vector<int>{0});
  }
  thread.start();
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(inits.load(), 2);
}

TEST_F(ManagedThreadTest, ItemsAddedFromTheTargetRunToo) {
  HangWatchdog watchdog("add from target");
  std::vector<int> seen;  // the loop thread only, until join
  OperationThread<int>* self = nullptr;
  Gate last;
  OperationThread<int> thread([&](int item) {
    seen.push_back(item);
    if (item < 5) self->add_data(item + 1);  // the thread runs: no start, no wait
    if (item == 5) last.open();
  });
  self = &thread;
  thread.add_data(1);
  ASSERT_TRUE(last.wait());
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5}));
}

// --- PeriodicThread (the original slept on the wall clock, uninterruptibly) ---

TEST_F(ManagedThreadTest, PeriodicCallsAreNeverEarlierThanStartPlusKIntervals) {
  HangWatchdog watchdog("periodic schedule");
  constexpr auto interval = 5ms;
  constexpr int calls = 10;
  std::mutex mutex;
  std::vector<Clock::time_point> times;
  Gate enough;
  PeriodicThread thread(interval, [&] {
    std::lock_guard lock(mutex);
    times.push_back(Clock::now());
    if (times.size() == calls) enough.open();
  });
  const auto before_start = Clock::now();
  thread.start();
  ASSERT_TRUE(enough.wait());
  EXPECT_TRUE(thread.join());
  std::lock_guard lock(mutex);
  for (std::size_t k = 0; k < times.size(); ++k) {
    EXPECT_GE(times[k], before_start + static_cast<int>(k) * interval)
        << "call " << k << " came early";
  }
}

TEST_F(ManagedThreadTest, PeriodicFirstCallIsAtOnceAndStopEndsALongWait) {
  HangWatchdog watchdog("an hour's interval");
  Gate first;
  std::atomic<int> calls{0};
  PeriodicThread thread(1h, [&] {
    ++calls;
    first.open();
  });
  thread.start();
  ASSERT_TRUE(first.wait());  // an hour away otherwise: the watchdog would fire
  EXPECT_TRUE(thread.join());
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(ManagedThreadTest, PeriodicStopAloneEndsTheWait) {
  HangWatchdog watchdog("stop an hour's wait");
  Gate first, ended;
  ManagedThreadOptions options;
  options.cleanup = [&] { ended.open(); };
  PeriodicThread thread(
      1h, [&] { first.open(); }, options);
  thread.start();
  ASSERT_TRUE(first.wait());
  thread.stop();
  EXPECT_TRUE(ended.wait());
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, AnOverrunningCallIsFollowedAtOnceWithoutACatchUpBurst) {
  HangWatchdog watchdog("overrun");
  constexpr auto interval = 10ms;
  std::mutex mutex;
  std::vector<Clock::time_point> starts;
  Clock::time_point first_end;
  Gate done;
  PeriodicThread thread(interval, [&] {
    const auto now = Clock::now();
    std::size_t index;
    {
      std::lock_guard lock(mutex);
      starts.push_back(now);
      index = starts.size() - 1;
    }
    if (index == 0) {
      // Overrun three and a half slots.
      std::this_thread::sleep_until(now + 3 * interval + interval / 2);
      std::lock_guard lock(mutex);
      first_end = Clock::now();
    }
    if (index == 2) done.open();
  });
  const auto before_start = Clock::now();
  thread.start();
  ASSERT_TRUE(done.wait());
  EXPECT_TRUE(thread.join());
  std::lock_guard lock(mutex);
  ASSERT_GE(starts.size(), 3u);
  EXPECT_GE(starts[1], first_end);
  // The schedule began between before_start and starts[0]; the first slot
  // after first_end is at least before_start + j·interval. A burst would have
  // called again at once instead.
  const auto overrun = first_end - starts[0];
  const auto j = overrun / interval + 1;
  EXPECT_GE(j, 4);
  EXPECT_GE(starts[2], before_start + j * interval) << "a catch-up call came early";
}

TEST_F(ManagedThreadTest, AZeroIntervalCallsAgainAtOnce) {
  HangWatchdog watchdog("zero interval");
  std::atomic<int> calls{0};
  PeriodicThread thread(0s, [&] { ++calls; });
  thread.start();
  ASSERT_TRUE(eventually([&] { return calls.load() > 100; }));
  EXPECT_TRUE(thread.join());
}

// --- Waits from fibers --------------------------------------------------------

TEST_F(ManagedThreadTest, JoinFromAFiberSuspendsOnlyThatFiber) {
  HangWatchdog watchdog("join from a fiber");
  Gate inside;
  std::atomic<bool> joining{false}, other_fiber_ran{false};
  ContinuousThread thread([&] {
    inside.open();
    // Ends only once another fiber of the joining hub has run during the join.
    while (!other_fiber_ran.load())
      std::this_thread::sleep_for(100us);
  });
  thread.start();
  ASSERT_TRUE(inside.wait());
  bool joined = false;
  weft::run([&] {
    weft::spawn_n([&] {
      while (!joining.load())
        weft::yield();
      weft::sleep(1ms);  // a timer of this hub, too
      other_fiber_ran = true;
    });
    joining = true;
    joined = thread.join();
  });
  EXPECT_TRUE(joined);
}

TEST_F(ManagedThreadTest, PausableStopFromAFiberSuspendsOnlyThatFiber) {
  HangWatchdog watchdog("pause from a fiber");
  Gate inside;
  std::atomic<bool> stopping{false}, other_fiber_ran{false};
  std::atomic<int> counter{0};
  PausableThread thread([&] {
    if (++counter == 1) {
      inside.open();
      // The iteration that stop() waits for ends only once another fiber of
      // the stopping hub has run.
      while (!other_fiber_ran.load())
        std::this_thread::sleep_for(100us);
    }
  });
  thread.start();
  ASSERT_TRUE(inside.wait());
  int frozen = -1;
  weft::run([&] {
    weft::spawn_n([&] {
      while (!stopping.load())
        weft::yield();
      weft::sleep(1ms);
      other_fiber_ran = true;
    });
    stopping = true;
    thread.stop();
    frozen = counter.load();
  });
  EXPECT_GE(frozen, 1);
  std::this_thread::sleep_for(1ms);
  EXPECT_EQ(counter.load(), frozen);
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, JoinWithATimeoutFromAFiberReturnsFalseOnTime) {
  HangWatchdog watchdog("fiber join timeout");
  Gate inside, release;
  ContinuousThread thread([&] {
    inside.open();
    release.wait();
  });
  thread.start();
  ASSERT_TRUE(inside.wait());
  bool first = true;
  weft::run([&] { first = thread.join(5ms); });
  EXPECT_FALSE(first);
  release.open();
  EXPECT_TRUE(thread.join());
}

// --- shutdown_managed_threads -------------------------------------------------

TEST_F(ManagedThreadTest, ShutdownStopsAndJoinsOneThreadOfEachKind) {
  HangWatchdog watchdog("shutdown");
  std::atomic<int> continuous{0}, pausable{0}, periodic{0}, operation{0};
  ContinuousThread c([&] { ++continuous; });
  PausableThread p([&] { ++pausable; });
  PeriodicThread t(1ms, [&] { ++periodic; });
  OperationThread<int> o([&](int) {
    ++operation;
    std::this_thread::sleep_for(100us);
  });
  c.start();
  p.start();
  t.start();
  for (int i = 0; i < 1000; ++i)
    o.add_data(i);
  ASSERT_TRUE(eventually([&] {
    return continuous.load() > 0 && pausable.load() > 0 && periodic.load() > 0 &&
           operation.load() > 0;
  }));
  weft::shutdown_managed_threads(std::nullopt);
  for (weft::ManagedThread* thread : std::initializer_list<weft::ManagedThread*>{&c, &p, &t, &o})
    EXPECT_FALSE(thread->is_alive());
  // Nothing is left running: the OS threads are gone (the fixture checks the
  // count once more after the objects, which join again, are destroyed).
  const int after = continuous.load() + pausable.load() + periodic.load() + operation.load();
  std::this_thread::sleep_for(2ms);
  EXPECT_EQ(continuous.load() + pausable.load() + periodic.load() + operation.load(), after);
}

TEST_F(ManagedThreadTest, ShutdownSkipsDaemonThreads) {
  HangWatchdog watchdog("daemon");
  std::atomic<int> daemon_calls{0};
  ManagedThreadOptions options;
  options.daemon = true;
  ContinuousThread daemon([&] { ++daemon_calls; }, options);
  ContinuousThread ordinary([] { std::this_thread::sleep_for(100us); });
  daemon.start();
  ordinary.start();
  weft::shutdown_managed_threads();
  EXPECT_TRUE(daemon.is_alive());
  EXPECT_FALSE(ordinary.is_alive());
  const int seen = daemon_calls.load();
  ASSERT_TRUE(eventually([&] { return daemon_calls.load() > seen; }));
  EXPECT_TRUE(daemon.join());
}

TEST_F(ManagedThreadTest, ShutdownLeavesBehindAndLogsAThreadThatDoesNotEndInTime) {
  HangWatchdog watchdog("shutdown timeout");
  weft_test::LogCapture log;
  Gate inside, release;
  ManagedThreadOptions options;
  options.name = "stuck";
  ContinuousThread thread(
      [&] {
        inside.open();
        release.wait();
      },
      options);
  thread.start();
  ASSERT_TRUE(inside.wait());
  weft::shutdown_managed_threads(5ms);
  const auto warnings = log.at(weft::LogLevel::warning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].text.find("stuck"), std::string::npos);
  release.open();
  EXPECT_TRUE(thread.join());
}

TEST_F(ManagedThreadTest, ShutdownFromATargetDoesNotWaitForItsOwnThread) {
  HangWatchdog watchdog("shutdown from a target");
  Gate called;
  ContinuousThread thread([&] {
    weft::shutdown_managed_threads();
    called.open();
  });
  thread.start();
  ASSERT_TRUE(called.wait());
  EXPECT_TRUE(thread.join());
}

// --- fork and exit ------------------------------------------------------------

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr bool under_tsan = true;
#elif defined(__has_feature)
constexpr bool under_tsan = __has_feature(thread_sanitizer);
#else
constexpr bool under_tsan = false;
#endif

}  // namespace

TEST_F(ManagedThreadTest, AForkedChildHasNoManagedThreads) {
  HangWatchdog watchdog("fork");
  std::atomic<int> counter{0};
  ContinuousThread inherited([&] { ++counter; });
  inherited.start();
  ASSERT_TRUE(eventually([&] { return counter.load() > 0; }));
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (inherited.is_alive()) ::_exit(2);
    if (!inherited.join(0s)) ::_exit(3);
    try {
      inherited.start();
      ::_exit(4);
    } catch (const std::logic_error&) {
    }
    weft::shutdown_managed_threads(0s);  // nothing to wait for
    // TSan kills a child of a multi-threaded parent that starts a thread.
    if (under_tsan) ::_exit(0);
    std::atomic<int> fresh_calls{0};
    ContinuousThread fresh([&] { ++fresh_calls; });
    fresh.start();
    while (fresh_calls.load() == 0)
      std::this_thread::sleep_for(1ms);
    ::_exit(fresh.join() ? 0 : 5);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "2: alive in the child; 3: join waited; 4: restarted; 5: a new thread failed";
  EXPECT_TRUE(inherited.is_alive());
  EXPECT_TRUE(inherited.join());
}

namespace {

constexpr const char* exit_child_variable = "WEFT_MANAGED_THREAD_EXIT_CHILD";

// The exit child's threads, in globals constructed before its first
// ManagedThread: they are destroyed after the at-exit shutdown, and the one
// it leaves behind must be detached, not waited for.
std::unique_ptr<ContinuousThread> exit_child_continuous;
std::unique_ptr<PausableThread> exit_child_pausable;
std::unique_ptr<PeriodicThread> exit_child_periodic;
std::unique_ptr<OperationThread<int>> exit_child_operation;
std::unique_ptr<ContinuousThread> exit_child_stuck;
std::unique_ptr<PeriodicThread> exit_child_daemon;

// The child's main: threads of each kind, one whose target never returns
// and a daemon that never returns either, then std::exit(7) with all of them
// looping.
[[noreturn]] void exit_child_main() {
  static std::atomic<int> calls{0};
  static std::atomic<bool> stuck{false};
  static std::atomic<bool> stuck_daemon{false};
  auto busy = [] {
    ++calls;
    std::this_thread::sleep_for(1ms);
  };
  exit_child_continuous = std::make_unique<ContinuousThread>(busy);
  exit_child_pausable = std::make_unique<PausableThread>(busy);
  exit_child_periodic = std::make_unique<PeriodicThread>(10ms, busy);
  exit_child_operation = std::make_unique<OperationThread<int>>([](int) {
    ++calls;
    std::this_thread::sleep_for(1ms);
  });
  ManagedThreadOptions stuck_options;
  stuck_options.name = "never-ends";
  exit_child_stuck = std::make_unique<ContinuousThread>(
      [] {
        stuck = true;
        for (;;)
          std::this_thread::sleep_for(10ms);
      },
      stuck_options);
  // A daemon, which the shutdown skips, whose target never returns either.
  ManagedThreadOptions daemon_options;
  daemon_options.daemon = true;
  exit_child_daemon = std::make_unique<PeriodicThread>(
      1ms,
      [] {
        stuck_daemon = true;
        for (;;)
          std::this_thread::sleep_for(10ms);
      },
      daemon_options);
  exit_child_daemon->start();
  // And one on the heap only, never destroyed.
  static auto* const leaked = new ContinuousThread(busy);
  exit_child_continuous->start();
  exit_child_pausable->start();
  exit_child_periodic->start();
  for (int i = 0; i < 100000; ++i)
    exit_child_operation->add_data(i);
  exit_child_stuck->start();
  leaked->start();
  // A thread asked to end before its first iteration never runs its target.
  while (calls.load() < 10 || !stuck.load() || !stuck_daemon.load())
    std::this_thread::sleep_for(1ms);
  std::exit(7);
}

}  // namespace

// Run only by ProgramExitsWithItsOwnStatusWhileManagedThreadsLoop, in a child.
TEST(ManagedThreadExitChild, DISABLED_ExitsWithStatus7) {
  if (std::getenv(exit_child_variable) == nullptr) GTEST_SKIP() << "only as the exit child";
  exit_child_main();
}

TEST_F(ManagedThreadTest, ProgramExitsWithItsOwnStatusWhileManagedThreadsLoop) {
  // The child execs this binary again so that its main starts from a fresh
  // process (TSan kills a forked child of a multi-threaded parent that starts
  // threads, and a fresh process orders its globals as a program would).
  HangWatchdog watchdog("exit", 120s);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setenv(exit_child_variable, "1", 1);
    ::execl("/proc/self/exe", "process_managed_thread",
            "--gtest_filter=ManagedThreadExitChild.DISABLED_ExitsWithStatus7",
            "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

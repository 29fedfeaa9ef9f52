// DestroyableThread: caikit's destroyable work on a thread, with destroy()
// delivered at the work's suspension points, every state of the matrix, and
// the completion event on every path.

#include <gtest/gtest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>

#include <weft/process/destroyable.hpp>
#include <weft/weft.hpp>

#include "hang_watchdog.hpp"
#include "hub_worker_check.hpp"

using namespace std::chrono_literals;

// Under ThreadSanitizer: the fork test's child starts a thread, which TSan
// forbids by default after a fork of a process with threads (weft's own
// forks, and a user's, happen in such processes).
extern "C" const char* __tsan_default_options() {
  return "die_after_fork=0";
}

namespace {

class Destroyable : public weft_test::HubWorkerLeakCheck {};

// Sleeps on the work's hub until `flag` is set (a suspension point each time).
void sleep_until_set(const std::atomic<bool>& flag) {
  while (!flag.load())
    weft::sleep(1ms);
}

// Waits, on a plain thread, until `flag` is set.
void spin_until_set(const std::atomic<bool>& flag) {
  while (!flag.load())
    std::this_thread::sleep_for(100us);
}

}  // namespace

TEST_F(Destroyable, ReturnsTheResultAndEveryStateSaysSo) {
  weft::DestroyableThread work([] { return std::string("test-any-result"); });
  work.start();
  EXPECT_EQ(work.get_or_throw(), "test-any-result");
  EXPECT_EQ(work.get_or_throw(), "test-any-result");  // again: a copy each time
  EXPECT_TRUE(work.done());
  EXPECT_FALSE(work.destroyed());
  EXPECT_FALSE(work.canceled());
  EXPECT_TRUE(work.ran());
  EXPECT_FALSE(work.threw());
  EXPECT_EQ(work.error(), nullptr);
}

TEST_F(Destroyable, PassesItsArgumentsToTheFunction) {
  weft::DestroyableThread work([](int n, const std::string& s) { return s + std::to_string(n); }, 7,
                               std::string("x"));
  work.start();
  EXPECT_EQ(work.get_or_throw(), "x7");
}

TEST_F(Destroyable, RunsAsTheFirstFiberOfAHubOnAnotherThread) {
  const pid_t caller = ::gettid();
  weft::DestroyableThread work(
      [] { return std::make_pair(::gettid(), weft::Hub::current().live_fibers()); });
  work.start();
  const auto [tid, fibers] = work.get_or_throw();
  EXPECT_NE(tid, caller);
  EXPECT_EQ(fibers, 1u);
}

TEST_F(Destroyable, ADestroyAfterSuccessDoesNotCancelIt) {
  weft::DestroyableThread work([] { return 42; });
  work.start();
  ASSERT_TRUE(work.join());
  work.destroy();
  EXPECT_TRUE(work.destroyed());
  EXPECT_FALSE(work.canceled());
  EXPECT_TRUE(work.ran());
  EXPECT_EQ(work.get_or_throw(), 42);
}

TEST_F(Destroyable, AnExceptionOfTheWorkIsRethrownAsTheSameObject) {
  weft::DestroyableThread work([]() -> int { throw std::invalid_argument("bad value"); });
  work.start();
  const std::invalid_argument* first = nullptr;
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    first = &e;
    EXPECT_STREQ(e.what(), "bad value");
  }
  try {
    work.get_or_throw();
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(&e, first);
  }
  EXPECT_TRUE(work.threw());
  EXPECT_FALSE(work.canceled());
  EXPECT_FALSE(work.destroyed());
  EXPECT_TRUE(work.ran());
}

TEST_F(Destroyable, DestroyInterruptsASleepingWork) {
  HangWatchdog watchdog("destroying a sleeping work");
  std::atomic<bool> sleeping{false};
  weft::DestroyableThread work([&] {
    sleeping = true;
    weft::sleep(1h);
  });
  work.start();
  spin_until_set(sleeping);
  work.destroy();
  EXPECT_TRUE(work.join());
  EXPECT_TRUE(work.destroyed());
  EXPECT_TRUE(work.canceled());
  EXPECT_TRUE(work.ran());
  EXPECT_FALSE(work.threw());
  EXPECT_THROW(work.get_or_throw(), weft::ThreadDestroyedError);
}

TEST_F(Destroyable, DestroyInterruptsABusyLoopAtItsNextYield) {
  HangWatchdog watchdog("destroying a busy loop");
  std::atomic<bool> looping{false};
  weft::DestroyableThread work([&] {
    for (;;) {
      looping = true;
      weft::yield();
    }
  });
  work.start();
  spin_until_set(looping);
  work.destroy();
  EXPECT_TRUE(work.join());
  EXPECT_TRUE(work.canceled());
  EXPECT_THROW(work.get_or_throw(), weft::ThreadDestroyedError);
}

TEST_F(Destroyable, DestroyInterruptsAWaitForAnEvent) {
  HangWatchdog watchdog("destroying a wait");
  weft::Event<> never;
  std::atomic<bool> waiting{false};
  weft::DestroyableThread work([&] {
    waiting = true;
    never.wait();
  });
  work.start();
  spin_until_set(waiting);
  work.destroy();
  EXPECT_TRUE(work.join());
  EXPECT_TRUE(work.canceled());
}

TEST_F(Destroyable, AUserCatchOfStdExceptionSeesTheDestroy) {
  std::atomic<bool> sleeping{false};
  std::string seen;
  weft::DestroyableThread work([&] {
    try {
      sleeping = true;
      weft::sleep(1h);
    } catch (const std::exception& e) {
      seen = e.what();
      EXPECT_EQ(typeid(e), typeid(weft::ThreadDestroyedError));
      throw;
    }
  });
  work.start();
  spin_until_set(sleeping);
  work.destroy();
  ASSERT_TRUE(work.join());
  EXPECT_EQ(seen,
            "Work thread intentionally destroyed by its lifecycle manager. This exception was not "
            "raised by the code running in this thread.");
  EXPECT_TRUE(work.canceled());
  EXPECT_FALSE(work.threw());
}

TEST_F(Destroyable, TheDestroyComesAgainAtEveryLaterSuspensionPointOfAWorkThatCatchesIt) {
  HangWatchdog watchdog("a work that catches the destroy");
  std::atomic<bool> sleeping{false};
  weft::DestroyableThread work([&] {
    int caught = 0;
    while (caught < 3) {
      try {
        sleeping = true;
        weft::sleep(1h);
      } catch (const weft::ThreadDestroyedError&) {
        ++caught;
      }
    }
    return caught;
  });
  work.start();
  spin_until_set(sleeping);
  work.destroy();
  // It caught three destroys and then returned: its result stands, as after a
  // destroy that came once it had finished.
  EXPECT_EQ(work.get_or_throw(), 3);
  EXPECT_TRUE(work.destroyed());
  EXPECT_FALSE(work.canceled());
}

TEST_F(Destroyable, AWorkThatThrowsSomethingElseOnceDestroyedIsCanceled) {
  std::atomic<bool> sleeping{false};
  weft::DestroyableThread work([&] {
    try {
      sleeping = true;
      weft::sleep(1h);
    } catch (const weft::ThreadDestroyedError&) {
      throw std::runtime_error("cleaning up failed");
    }
  });
  work.start();
  spin_until_set(sleeping);
  work.destroy();
  ASSERT_TRUE(work.join());
  EXPECT_TRUE(work.canceled());
  EXPECT_FALSE(work.threw());
  EXPECT_THROW(work.get_or_throw(), weft::ThreadDestroyedError);
}

TEST_F(Destroyable, ADestroyBeforeStartNeverRunsTheWorkAndCompletesIt) {
  std::atomic<bool> ran{false};
  weft::Event<> completed;
  weft::DestroyableThread work(weft::DestroyableOptions{.completion_event = &completed},
                               [&] { ran = true; });
  work.destroy();
  EXPECT_TRUE(work.done());
  EXPECT_TRUE(completed.ready());
  work.start();  // does nothing
  EXPECT_TRUE(work.join());
  EXPECT_FALSE(ran.load());
  EXPECT_TRUE(work.destroyed());
  EXPECT_TRUE(work.canceled());
  EXPECT_FALSE(work.ran());
  EXPECT_FALSE(work.threw());
  EXPECT_THROW(work.get_or_throw(), weft::ThreadDestroyedError);
}

TEST_F(Destroyable, WorkNeverStartedJoinsFalseAtOnceAndHasNoResult) {
  weft::DestroyableThread work([] { return 1; });
  EXPECT_FALSE(work.join());
  EXPECT_FALSE(work.join(1h));
  EXPECT_FALSE(work.done());
  EXPECT_THROW(work.get_or_throw(), std::logic_error);
}

TEST_F(Destroyable, TheCompletionEventIsSentOnEveryPath) {
  {
    weft::Event<> completed;
    weft::DestroyableThread work(weft::DestroyableOptions{.completion_event = &completed},
                                 [] { return 1; });
    work.start();
    ASSERT_TRUE(work.join());
    EXPECT_TRUE(completed.ready()) << "success";
  }
  {
    weft::Event<> completed;
    weft::DestroyableThread work(weft::DestroyableOptions{.completion_event = &completed},
                                 [] { throw std::runtime_error("x"); });
    work.start();
    ASSERT_TRUE(work.join());
    EXPECT_TRUE(completed.ready()) << "an exception";
  }
  {
    weft::Event<> completed;
    std::atomic<bool> sleeping{false};
    weft::DestroyableThread work(weft::DestroyableOptions{.completion_event = &completed}, [&] {
      sleeping = true;
      weft::sleep(1h);
    });
    work.start();
    spin_until_set(sleeping);
    work.destroy();
    ASSERT_TRUE(work.join());
    EXPECT_TRUE(completed.ready()) << "a destroy while it ran";
  }
}

TEST_F(Destroyable, TheCompletionEventIsSentBeforeDoneTurnsTrue) {
  for (int i = 0; i < 50; ++i) {
    weft::Event<> completed;
    weft::DestroyableThread work(weft::DestroyableOptions{.completion_event = &completed},
                                 [i] { return i; });
    work.start();
    while (!work.done()) {
    }
    EXPECT_TRUE(completed.ready());
  }
}

TEST_F(Destroyable, JoinGivesUpAfterItsTimeoutAndSucceedsLater) {
  std::atomic<bool> release{false};
  weft::DestroyableThread work([&] { sleep_until_set(release); });
  work.start();
  EXPECT_FALSE(work.join(5ms));
  release = true;
  EXPECT_TRUE(work.join());
}

TEST_F(Destroyable, JoinFromTheWorkItselfThrowsLogicError) {
  std::function<bool()> join_self;
  weft::DestroyableThread work([&] {
    try {
      join_self();
    } catch (const std::logic_error&) {
      return true;
    }
    return false;
  });
  join_self = [&] { return work.join(); };
  work.start();
  EXPECT_TRUE(work.get_or_throw());
}

TEST_F(Destroyable, AJoinFromAFiberSuspendsOnlyThatFiber) {
  HangWatchdog watchdog("a join from a fiber");
  std::atomic<bool> other_fiber_ran{false};
  weft::run([&] {
    weft::DestroyableThread work([&] { sleep_until_set(other_fiber_ran); });
    work.start();
    weft::spawn([&] { other_fiber_ran = true; });
    // The work ends only once the other fiber of this hub has run: a join that
    // blocked the hub's thread would never return.
    EXPECT_TRUE(work.join());
    EXPECT_NO_THROW(work.get_or_throw());
  });
}

TEST_F(Destroyable, AFiberJoinIsASuspensionPointThatATimeoutReaches) {
  weft::run([] {
    std::atomic<bool> release{false};
    weft::DestroyableThread work([&] { sleep_until_set(release); });
    work.start();
    EXPECT_THROW(
        {
          weft::Timeout timeout(5ms);
          work.join();
        },
        weft::TimeoutError);
    release = true;
    EXPECT_TRUE(work.join());
  });
}

TEST_F(Destroyable, WorkersAndTheirHubsAreReused) {
  auto where = [] { return std::make_pair(::gettid(), &weft::Hub::current()); };
  weft::DestroyableThread first(where);
  first.start();
  const auto first_place = first.get_or_throw();
  // The worker goes idle just after the work is done.
  while (weft::detail::hub_worker_cache().idle_workers() == 0)
    std::this_thread::yield();
  weft::DestroyableThread second(where);
  second.start();
  EXPECT_EQ(second.get_or_throw(), first_place);
}

TEST_F(Destroyable, FibersTheWorkLeftBehindAreKilledWhenItEnds) {
  auto unwound = std::make_shared<std::atomic<bool>>(false);
  weft::DestroyableThread work([unwound] {
    weft::spawn([unwound] {
      struct SetOnUnwind {
        std::shared_ptr<std::atomic<bool>> flag;
        ~SetOnUnwind() { *flag = true; }
      } guard{unwound};
      weft::sleep(1h);
    });
    weft::yield();  // let it start
  });
  work.start();
  ASSERT_TRUE(work.join());
  EXPECT_TRUE(unwound->load());
}

TEST_F(Destroyable, ToThreadJobsFindNoHubOnTheirThread) {
  weft::DestroyableThread work([] { return 0; });
  work.start();
  work.get_or_throw();
  weft::run([] {
    const bool found_no_hub = weft::to_thread::run_sync([] {
      try {
        weft::Hub::current();
        return false;
      } catch (const weft::NoHubError&) {
        return true;
      }
    });
    EXPECT_TRUE(found_no_hub);
  });
}

TEST_F(Destroyable, TheDestructorDestroysRunningWorkAndWaitsForIt) {
  auto unwound = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> sleeping{false};
  {
    weft::DestroyableThread work([unwound, &sleeping] {
      try {
        sleeping = true;
        weft::sleep(1h);
      } catch (const weft::ThreadDestroyedError&) {
        *unwound = true;
        throw;
      }
    });
    work.start();
    spin_until_set(sleeping);
  }
  EXPECT_TRUE(unwound->load());
}

TEST_F(Destroyable, ADestroyRacingTheWorksEndHasOneOutcome) {
  for (int i = 0; i < 200; ++i) {
    weft::DestroyableThread work([i] { return i; });
    work.start();
    if (i % 2 == 1) std::this_thread::yield();
    work.destroy();
    ASSERT_TRUE(work.join());
    EXPECT_TRUE(work.destroyed());
    EXPECT_FALSE(work.threw());
    if (work.canceled()) {
      EXPECT_THROW(work.get_or_throw(), weft::ThreadDestroyedError);
    } else {
      EXPECT_TRUE(work.ran());
      EXPECT_EQ(work.get_or_throw(), i);
    }
  }
}

TEST_F(Destroyable, AnEmptyFunctionIsRejected) {
  EXPECT_THROW(weft::DestroyableThread<int>(static_cast<int (*)()>(nullptr)),
               std::invalid_argument);
  EXPECT_THROW(weft::DestroyableThread<void>(std::function<void()>{}), std::invalid_argument);
}

TEST_F(Destroyable, ADestroyFromAnotherFiberReachesTheWork) {
  HangWatchdog watchdog("a destroy from a fiber");
  weft::run([] {
    std::atomic<bool> sleeping{false};
    weft::DestroyableThread work([&] {
      sleeping = true;
      weft::sleep(1h);
    });
    work.start();
    while (!sleeping)
      weft::sleep(1ms);
    work.destroy();
    EXPECT_TRUE(work.join());
    EXPECT_TRUE(work.canceled());
  });
}

TEST_F(Destroyable, AForkedChildStartsWithNoHubWorkersAndMakesItsOwn) {
  // An idle hub worker in the parent: the child must not hand work to it (it
  // does not exist there).
  weft::DestroyableThread warm([] { return 1; });
  warm.start();
  ASSERT_EQ(warm.get_or_throw(), 1);
  while (weft::detail::hub_worker_cache().idle_workers() == 0)
    std::this_thread::yield();

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 1;
    try {
      if (weft::detail::hub_worker_cache().total_workers() == 0) {
        weft::DestroyableThread work([] { return 2; });
        work.start();
        code = work.get_or_throw() == 2 ? 0 : 2;
      }
    } catch (...) {
      code = 3;
    }
    std::_Exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

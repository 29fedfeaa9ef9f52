// GreenPool: bounded concurrency, blocking and inline spawns, waitall, resize,
// and how jobs and spawners that fail, are killed or time out give back their
// slots. Mirrors eventlet's tests/greenpool_test.py where weft's contract agrees.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

// Armed first thing in every test's main fiber: if a pool bug leaves a fiber
// waiting forever, the test fails with a TimeoutError instead of hanging. The
// tests themselves take milliseconds.
constexpr auto kWatchdog = 5s;

// Suspends the calling fiber until `flag` is set (checked every millisecond).
void wait_until(const bool& flag) {
  while (!flag)
    weft::sleep(1ms);
}

// Like wait_until, but yields instead of sleeping, so the fiber stays in the
// ready queue and the scheduling order around it is exact.
void spin_until(const bool& flag) {
  while (!flag)
    weft::yield();
}

// Routes exceptions that escape spawn_n fibers into `reported` (their what()).
void capture_reported_errors(Log& reported) {
  weft::Hub::current().set_error_handler([&reported](std::string_view, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      reported.push_back(e.what());
    } catch (...) {
      reported.push_back("non-std exception");
    }
  });
}

std::vector<int> iota_vector(int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

// --- results, waitall, counts ------------------------------------------------

TEST(GreenPool, SpawnedResultsComeBackInOrderWithAtMostSizeJobsRunning) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(4);
    int active = 0;
    int peak = 0;
    std::vector<weft::GreenThread<int>> jobs;
    for (int i = 0; i < 10; ++i) {
      jobs.push_back(pool.spawn(
          [&](int x) {
            peak = std::max(peak, ++active);
            weft::yield();
            --active;
            return x;
          },
          i));
      EXPECT_LE(pool.running(), 4u);
    }
    std::vector<int> results;
    for (auto& job : jobs)
      results.push_back(job.wait());
    EXPECT_EQ(results, iota_vector(10));
    EXPECT_EQ(peak, 4);
  });
}

TEST(GreenPool, WaitallReturnsOnceEveryJobHasEnded) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool;
    std::vector<int> results;
    for (int i = 0; i < 10; ++i) {
      pool.spawn(
          [&](int x) {
            weft::sleep(1ms);
            results.push_back(x);
          },
          i);
    }
    EXPECT_TRUE(results.empty());  // spawn never runs the job inside the call
    EXPECT_EQ(pool.running(), 10u);
    pool.waitall();
    EXPECT_EQ(results, iota_vector(10));
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_EQ(pool.free(), 1000);
  });
}

TEST(GreenPool, WaitallAlsoWaitsForAJobThatTookAFreedSlotBeforeWaitallResumed) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { wait_until(release); });
    auto spawner = weft::spawn([&] {
      pool.spawn([&] {
        weft::sleep(1ms);
        log.push_back("late job done");
      });
    });
    weft::yield();  // the spawner now waits for the slot
    ASSERT_EQ(pool.waiting(), 1u);
    release = true;
    // The first job's end wakes the spawner, then this fiber (running() is 0
    // for a moment); the spawner runs first and takes the slot again.
    pool.waitall();
    log.push_back("waitall returned");
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_EQ(log, (Log{"late job done", "waitall returned"}));
    EXPECT_TRUE(spawner.dead());
  });
}

TEST(GreenPool, WaitallOnAnEmptyPoolReturnsWithoutSuspending) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(3);
    Log log;
    auto other = weft::spawn([&] { log.push_back("other fiber ran"); });
    pool.waitall();
    log.push_back("waitall returned");
    other.wait();
    EXPECT_EQ(log, (Log{"waitall returned", "other fiber ran"}));
  });
}

TEST(GreenPool, WaitallFromOneOfThePoolsJobsThrowsLogicError) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    Log log;
    auto job = pool.spawn([&] {
      pool.waitall();
      log.push_back("waitall returned");
    });
    EXPECT_THROW(job.wait(), std::logic_error);
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(pool.free(), 2);
    EXPECT_EQ(pool.running(), 0u);
  });
}

TEST(GreenPool, WaitingCountsSpawnersBlockedOnAFullPoolOfOne) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    bool done = false;
    auto consume = [&] { wait_until(done); };
    auto waiter = [&] { pool.spawn(consume).wait(); };
    std::vector<weft::GreenThread<void>> waiters;
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_EQ(pool.waiting(), 0u);

    waiters.push_back(weft::spawn(waiter));
    weft::yield();
    EXPECT_EQ(pool.waiting(), 0u);
    EXPECT_EQ(pool.running(), 1u);

    waiters.push_back(weft::spawn(waiter));
    weft::yield();
    EXPECT_EQ(pool.waiting(), 1u);
    EXPECT_EQ(pool.running(), 1u);

    waiters.push_back(weft::spawn(waiter));
    weft::yield();
    EXPECT_EQ(pool.waiting(), 2u);
    EXPECT_EQ(pool.running(), 1u);

    done = true;
    for (auto& w : waiters)
      w.wait();
    EXPECT_EQ(pool.waiting(), 0u);
    EXPECT_EQ(pool.running(), 0u);
  });
}

TEST(GreenPool, ProducerAndConsumerJobsInterleaveInSpawnOrder) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    Log log;
    bool sent = false;
    auto done = pool.spawn([&] {
      log.push_back("cons1");
      spin_until(sent);
      log.push_back("cons2");
    });
    pool.spawn_n([&] {
      log.push_back("prod");
      sent = true;
    });
    done.wait();
    EXPECT_EQ(log, (Log{"cons1", "prod", "cons2"}));
  });
}

TEST(GreenPool, SpawnNIntoAnExhaustedPoolWaitsUntilAJobEnds) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    std::vector<int> r;
    auto append = [&](int x) { r.push_back(x); };
    EXPECT_EQ(pool.free(), 2);
    auto first = pool.spawn(append, 1);
    EXPECT_EQ(pool.free(), 1);
    first.wait();
    EXPECT_EQ(r, (std::vector<int>{1}));
    EXPECT_EQ(pool.free(), 2);

    pool.spawn_n(append, 2);
    EXPECT_EQ(pool.free(), 1);
    EXPECT_EQ(r, (std::vector<int>{1}));
    pool.spawn_n(append, 3);
    EXPECT_EQ(pool.free(), 0);
    EXPECT_EQ(r, (std::vector<int>{1}));
    // Full: this one waits for a slot, so the two pending jobs run first.
    pool.spawn_n(append, 4);
    EXPECT_EQ(r, (std::vector<int>{1, 2, 3}));
    weft::yield();
    EXPECT_EQ(r, (std::vector<int>{1, 2, 3, 4}));
  });
}

TEST(GreenPool, WaitingSpawnersGetSlotsInTheOrderTheyAsked) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { wait_until(release); });
    auto spawner = [&](std::string name) {
      pool.spawn([&log, name] { log.push_back(name + " job"); });
      log.push_back(name + " got slot");
    };
    auto a = weft::spawn(spawner, std::string("a"));
    auto b = weft::spawn(spawner, std::string("b"));
    auto c = weft::spawn(spawner, std::string("c"));
    weft::yield();
    EXPECT_EQ(pool.waiting(), 3u);
    release = true;
    a.wait();
    b.wait();
    c.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"a got slot", "a job", "b got slot", "b job", "c got slot", "c job"}));
  });
}

TEST(GreenPool, FreedSlotGoesToTheWaitingSpawnerNotToANewcomer) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { spin_until(release); });
    auto a = weft::spawn([&] {
      pool.spawn([&] { log.push_back("a job"); });
      log.push_back("a got slot");
    });
    weft::yield();  // the job spins, a blocks for a slot
    ASSERT_EQ(pool.waiting(), 1u);
    release = true;
    weft::yield();  // the job ends and wakes a; this fiber runs again before a does
    ASSERT_FALSE(a.dead());
    // A newcomer: a asked first, so the slot is a's and this spawn must wait.
    pool.spawn([&] { log.push_back("newcomer job"); });
    log.push_back("newcomer got slot");
    a.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"a got slot", "a job", "newcomer got slot", "newcomer job"}));
  });
}

TEST(GreenPool, NewcomerQueuesBehindSpawnersThatAreStillWaiting) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { spin_until(release); });
    auto spawner = [&](std::string name) {
      pool.spawn([&log, name] { log.push_back(name + " job"); });
      log.push_back(name + " got slot");
    };
    auto a = weft::spawn(spawner, std::string("a"));
    auto b = weft::spawn(spawner, std::string("b"));
    weft::yield();  // the job spins, a and b block for a slot
    ASSERT_EQ(pool.waiting(), 2u);
    release = true;
    // The job ends and wakes a; this fiber runs again before a does.
    weft::yield();
    ASSERT_EQ(pool.waiting(), 1u);  // b
    // A slot is free, but b still waits for one: the newcomer goes behind b.
    pool.spawn([&] { log.push_back("newcomer job"); });
    log.push_back("newcomer got slot");
    a.wait();
    b.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"a got slot", "a job", "b got slot", "b job", "newcomer got slot",
                        "newcomer job"}));
  });
}

// --- spawn from inside the pool ------------------------------------------------

TEST(GreenPool, SpawnFromAJobIntoItsFullPoolRunsInlineAndReturnsAFinishedHandle) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    auto outer = pool.spawn([&]() -> std::string {
      auto inner = pool.spawn([&] {
        log.push_back("inner ran");
        EXPECT_EQ(pool.running(), 1u);  // the inline job takes no slot of its own
        return std::string("reenter");
      });
      log.push_back("spawn returned");
      EXPECT_TRUE(inner.dead());
      return inner.wait();
    });
    EXPECT_EQ(outer.wait(), "reenter");
    EXPECT_EQ(log, (Log{"inner ran", "spawn returned"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

TEST(GreenPool, SpawnNFromAJobIntoItsFullPoolRunsInline) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    auto outer = pool.spawn([&] {
      pool.spawn_n([&] { log.push_back("inner ran"); });
      log.push_back("spawn_n returned");
    });
    outer.wait();
    EXPECT_EQ(log, (Log{"inner ran", "spawn_n returned"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

TEST(GreenPool, SpawnFromAJobIntoItsPoolWithRoomStartsASeparateJob) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    Log log;
    weft::GreenThread<int> inner;
    auto outer = pool.spawn([&] {
      inner = pool.spawn([&] {
        log.push_back("inner ran");
        return 5;
      });
      log.push_back("spawn returned");
      EXPECT_FALSE(inner.dead());
      EXPECT_EQ(pool.running(), 2u);
    });
    outer.wait();
    EXPECT_EQ(inner.wait(), 5);
    EXPECT_EQ(log, (Log{"spawn returned", "inner ran"}));
  });
}

TEST(GreenPool, InlineSpawnKeepsTheJobsExceptionInTheHandleInsteadOfThrowingIt) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    auto outer = pool.spawn([&] {
      weft::GreenThread<int> inner;
      EXPECT_NO_THROW(inner =
                          pool.spawn([]() -> int { throw std::runtime_error("inner failed"); }));
      log.push_back("spawn returned");
      EXPECT_TRUE(inner.dead());
      try {
        inner.wait();
        log.push_back("wait returned");
      } catch (const std::runtime_error& e) {
        log.push_back(std::string("wait threw: ") + e.what());
      }
    });
    EXPECT_NO_THROW(outer.wait());
    EXPECT_EQ(log, (Log{"spawn returned", "wait threw: inner failed"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

TEST(GreenPool, InlineSpawnNReportsTheJobsExceptionAndTheCallerGoesOn) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    Log reported;
    capture_reported_errors(reported);
    weft::GreenPool pool(1);
    Log log;
    auto outer = pool.spawn([&] {
      pool.spawn_n([] { throw std::runtime_error("inner failed"); });
      log.push_back("spawn_n returned");
    });
    EXPECT_NO_THROW(outer.wait());
    EXPECT_EQ(log, (Log{"spawn_n returned"}));
    EXPECT_EQ(reported, (Log{"inner failed"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

TEST(GreenPool, KillingAJobWhileItRunsAnInlineSpawnEndsThatJob) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool never = false;
    auto outer = pool.spawn([&] {
      auto inner = pool.spawn([&] {
        log.push_back("inner started");
        wait_until(never);
        log.push_back("inner finished");
      });
      log.push_back("outer went on after the kill");
    });
    weft::yield();  // outer starts and runs inner inline, which suspends
    ASSERT_EQ(log, (Log{"inner started"}));
    outer.kill();
    EXPECT_TRUE(outer.dead());
    EXPECT_THROW(outer.wait(), weft::FiberExit);
    EXPECT_EQ(log, (Log{"inner started"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

TEST(GreenPool, KillingAJobWhileItRunsAnInlineSpawnNEndsThatJob) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool never = false;
    auto outer = pool.spawn([&] {
      pool.spawn_n([&] {
        log.push_back("inner started");
        wait_until(never);
        log.push_back("inner finished");
      });
      log.push_back("outer went on after the kill");
    });
    weft::yield();
    ASSERT_EQ(log, (Log{"inner started"}));
    outer.kill();
    EXPECT_TRUE(outer.dead());
    EXPECT_THROW(outer.wait(), weft::FiberExit);
    EXPECT_EQ(log, (Log{"inner started"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

// --- resize --------------------------------------------------------------------

TEST(GreenPool, ResizeWhileFullChangesFreeButLeavesRunningJobsAlone) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    bool release = false;
    int finished = 0;
    for (int i = 0; i < 2; ++i) {
      pool.spawn([&] {
        wait_until(release);
        ++finished;
      });
    }
    weft::yield();
    EXPECT_EQ(pool.free(), 0);
    pool.resize(1);
    EXPECT_EQ(pool.size(), 1u);
    EXPECT_EQ(pool.free(), -1);
    EXPECT_EQ(pool.running(), 2u);
    release = true;
    pool.waitall();
    EXPECT_EQ(finished, 2);
    EXPECT_EQ(pool.free(), 1);
    EXPECT_EQ(pool.running(), 0u);
    pool.resize(2);
    EXPECT_EQ(pool.free(), 2);
  });
}

TEST(GreenPool, AfterShrinkingASpawnWaitsUntilRunningDropsBelowTheNewSize) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    Log log;
    bool release_a = false;
    bool release_b = false;
    auto a = pool.spawn([&] { wait_until(release_a); });
    auto b = pool.spawn([&] { wait_until(release_b); });
    weft::yield();
    pool.resize(1);
    auto c = weft::spawn([&] {
      pool.spawn([&] { log.push_back("c job"); });
      log.push_back("c got slot");
    });
    weft::yield();
    EXPECT_EQ(pool.waiting(), 1u);

    release_a = true;
    a.wait();
    weft::yield();
    EXPECT_EQ(pool.running(), 1u);
    EXPECT_EQ(pool.waiting(), 1u);  // one job still runs in a pool of one
    EXPECT_TRUE(log.empty());

    release_b = true;
    b.wait();
    c.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"c got slot", "c job"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

TEST(GreenPool, GrowingAFullPoolLetsAsManyWaitingSpawnersInAsThereIsRoom) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { wait_until(release); });
    auto spawner = [&](std::string name) {
      pool.spawn([&release] { wait_until(release); });
      log.push_back(name + " got slot");
    };
    auto a = weft::spawn(spawner, std::string("a"));
    auto b = weft::spawn(spawner, std::string("b"));
    auto c = weft::spawn(spawner, std::string("c"));
    weft::yield();
    ASSERT_EQ(pool.waiting(), 3u);

    pool.resize(3);
    a.wait();
    b.wait();
    weft::yield();
    EXPECT_EQ(log, (Log{"a got slot", "b got slot"}));
    EXPECT_EQ(pool.running(), 3u);
    EXPECT_EQ(pool.waiting(), 1u);
    EXPECT_FALSE(c.dead());

    release = true;
    c.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"a got slot", "b got slot", "c got slot"}));
    EXPECT_EQ(pool.free(), 3);
  });
}

TEST(GreenPool, PoolResizedToZeroBlocksSpawnsUntilResizedUp) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    pool.resize(0);
    Log log;
    EXPECT_EQ(pool.free(), 0);
    auto spawner = weft::spawn([&] {
      pool.spawn([&] { log.push_back("job ran"); });
      log.push_back("spawn returned");
    });
    weft::sleep(2ms);
    EXPECT_EQ(pool.waiting(), 1u);
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_TRUE(log.empty());

    pool.resize(1);
    spawner.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"spawn returned", "job ran"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

// --- jobs that fail or are killed ------------------------------------------------

TEST(GreenPool, ExceptionEscapingASpawnedJobFreesItsSlotAndIsRethrownByWait) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    auto job = pool.spawn([] { throw std::runtime_error("boom"); });
    EXPECT_EQ(pool.free(), 1);
    pool.waitall();
    EXPECT_EQ(pool.free(), 2);
    EXPECT_THROW(job.wait(), std::runtime_error);
  });
}

TEST(GreenPool, ExceptionEscapingASpawnNJobFreesItsSlotAndGoesToTheErrorHandler) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    Log reported;
    capture_reported_errors(reported);
    weft::GreenPool pool(2);
    pool.spawn_n([] { throw std::runtime_error("boom"); });
    EXPECT_EQ(pool.free(), 1);
    pool.waitall();
    EXPECT_EQ(pool.free(), 2);
    EXPECT_EQ(reported, (Log{"boom"}));
  });
}

TEST(GreenPool, FiberExitEscapingAJobFreesItsSlotAndIsNotReportedAsAnError) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    Log reported;
    capture_reported_errors(reported);
    weft::GreenPool pool(2);
    auto job = pool.spawn([] { throw weft::FiberExit{}; });
    EXPECT_EQ(pool.free(), 1);
    pool.waitall();
    EXPECT_EQ(pool.free(), 2);
    EXPECT_THROW(job.wait(), weft::FiberExit);

    pool.spawn_n([] { throw weft::FiberExit{}; });
    EXPECT_EQ(pool.free(), 1);
    pool.waitall();
    EXPECT_EQ(pool.free(), 2);
    EXPECT_TRUE(reported.empty());
  });
}

TEST(GreenPool, KillingARunningJobFreesItsSlot) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool never = false;
    auto job = pool.spawn([&] {
      log.push_back("started");
      wait_until(never);
      log.push_back("finished");
    });
    weft::yield();
    ASSERT_EQ(pool.free(), 0);
    job.kill();
    EXPECT_TRUE(job.dead());
    EXPECT_EQ(pool.free(), 1);
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_THROW(job.wait(), weft::FiberExit);
    EXPECT_EQ(log, (Log{"started"}));
    // The slot is really usable again: this spawn does not wait.
    auto next = pool.spawn([] { return 3; });
    EXPECT_EQ(pool.waiting(), 0u);
    EXPECT_EQ(next.wait(), 3);
  });
}

TEST(GreenPool, JobKilledBeforeItStartsFreesItsSlotAndNeverRuns) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    auto job = pool.spawn([&] { log.push_back("job ran"); });
    EXPECT_FALSE(job.started());
    EXPECT_EQ(pool.free(), 0);
    job.kill();
    EXPECT_TRUE(job.dead());
    EXPECT_EQ(pool.free(), 1);
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_THROW(job.wait(), weft::FiberExit);
    weft::sleep(1ms);
    pool.waitall();
    EXPECT_TRUE(log.empty());
  });
}

TEST(GreenPool, CancellingAnUnstartedJobHandsItsSlotToTheNextWaitingSpawner) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { spin_until(release); });
    weft::yield();  // the first job is running
    auto s = weft::spawn([&] {
      release = true;  // lets the first job end, after this fiber queued behind main
      pool.spawn([&] { log.push_back("s job"); });
      log.push_back("s got slot");
    });
    // main asks first, gets the slot once the first job ends, and its job has
    // not started when spawn returns.
    auto unstarted = pool.spawn([&] { log.push_back("cancelled job ran"); });
    EXPECT_FALSE(unstarted.started());
    EXPECT_EQ(pool.waiting(), 1u);  // s
    unstarted.cancel();
    EXPECT_TRUE(unstarted.dead());
    EXPECT_THROW(unstarted.wait(), weft::FiberExit);
    EXPECT_EQ(pool.running(), 0u);
    s.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"s got slot", "s job"}));
    EXPECT_EQ(pool.free(), 1);
  });
}

// --- spawners that give up --------------------------------------------------------

TEST(GreenPool, SpawnerKilledWhileWaitingForASlotTakesNoSlot) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { wait_until(release); });
    auto spawner = [&](std::string name) {
      pool.spawn([&log, name] { log.push_back(name + " job"); });
      log.push_back(name + " got slot");
    };
    auto killed = weft::spawn(spawner, std::string("killed"));
    auto patient = weft::spawn(spawner, std::string("patient"));
    weft::yield();
    ASSERT_EQ(pool.waiting(), 2u);

    killed.kill();
    EXPECT_TRUE(killed.dead());
    EXPECT_THROW(killed.wait(), weft::FiberExit);
    EXPECT_EQ(pool.waiting(), 1u);
    EXPECT_EQ(pool.running(), 1u);
    EXPECT_EQ(pool.free(), 0);

    release = true;
    patient.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"patient got slot", "patient job"}));
    EXPECT_EQ(pool.free(), 1);
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_EQ(pool.waiting(), 0u);
  });
}

TEST(GreenPool, SpawnerTimingOutWhileWaitingForASlotTakesNoSlot) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] { wait_until(release); });
    auto impatient = weft::spawn([&] {
      try {
        weft::Timeout timeout(2ms);
        pool.spawn([&] { log.push_back("impatient job"); });
        log.push_back("impatient got slot");
      } catch (const weft::TimeoutError&) {
        log.push_back("impatient timed out");
      }
    });
    auto patient = weft::spawn([&] {
      pool.spawn([&] { log.push_back("patient job"); });
      log.push_back("patient got slot");
    });
    impatient.wait();
    EXPECT_EQ(log, (Log{"impatient timed out"}));
    EXPECT_EQ(pool.waiting(), 1u);
    EXPECT_EQ(pool.running(), 1u);
    EXPECT_EQ(pool.free(), 0);

    release = true;
    patient.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"impatient timed out", "patient got slot", "patient job"}));
    EXPECT_EQ(pool.free(), 1);
    EXPECT_EQ(pool.waiting(), 0u);
  });
}

TEST(GreenPool, SpawnerKilledJustAfterBeingHandedASlotPassesItToTheNextSpawner) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    bool release = false;
    pool.spawn([&] {
      spin_until(release);
      log.push_back("first job done");
    });
    auto spawner = [&](std::string name) {
      pool.spawn([&log, name] { log.push_back(name + " job"); });
      log.push_back(name + " got slot");
    };
    auto a = weft::spawn(spawner, std::string("a"));
    auto b = weft::spawn(spawner, std::string("b"));
    weft::yield();  // the first job spins; a and b block for a slot
    ASSERT_EQ(pool.waiting(), 2u);

    release = true;
    weft::yield();  // the first job ends and wakes a; this fiber runs before a
    ASSERT_EQ(log, (Log{"first job done"}));
    ASSERT_FALSE(a.dead());
    EXPECT_EQ(pool.running(), 0u);

    a.kill();  // a was woken for the slot but never took it
    EXPECT_TRUE(a.dead());
    EXPECT_THROW(a.wait(), weft::FiberExit);
    EXPECT_EQ(pool.running(), 0u);

    b.wait();
    pool.waitall();
    EXPECT_EQ(log, (Log{"first job done", "b got slot", "b job"}));
    EXPECT_EQ(pool.free(), 1);
    EXPECT_EQ(pool.waiting(), 0u);
  });
}

TEST(GreenPool, JobTimingOutOnAnotherFullPoolLeavesBothPoolsConsistent) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool_a(1);
    weft::GreenPool pool_b(1);
    Log log;
    bool release_b = false;
    pool_b.spawn([&] { wait_until(release_b); });
    auto a_job = pool_a.spawn([&] {
      try {
        weft::Timeout timeout(2ms);
        pool_b.spawn([&] { log.push_back("b job from a"); });  // a member of a, not of b
        log.push_back("a job got a slot in b");
      } catch (const weft::TimeoutError&) {
        log.push_back("a job timed out");
      }
    });
    a_job.wait();
    EXPECT_EQ(log, (Log{"a job timed out"}));
    EXPECT_EQ(pool_a.free(), 1);
    EXPECT_EQ(pool_a.running(), 0u);
    EXPECT_EQ(pool_b.free(), 0);
    EXPECT_EQ(pool_b.waiting(), 0u);

    release_b = true;
    pool_b.waitall();
    EXPECT_EQ(pool_b.free(), 1);
    // Both pools still work.
    EXPECT_EQ(pool_a.spawn([] { return 1; }).wait(), 1);
    EXPECT_EQ(pool_b.spawn([] { return 2; }).wait(), 2);
    EXPECT_EQ(log, (Log{"a job timed out"}));
  });
}

// --- lifetime -----------------------------------------------------------------------

TEST(GreenPool, TimeoutArmedInAJobThatEndedNeverFiresInALaterJob) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    Log log;
    auto first = pool.spawn([&] {
      weft::Timeout timeout(2ms);
      log.push_back("first job");
    });
    first.wait();
    auto second = pool.spawn([&] {
      weft::sleep(10ms);
      log.push_back("second job slept");
    });
    EXPECT_NO_THROW(second.wait());
    EXPECT_EQ(log, (Log{"first job", "second job slept"}));
  });
}

TEST(GreenPool, RunningJobsOutliveThePoolObject) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    std::optional<weft::GreenPool> pool(std::in_place, 1);
    auto job = pool->spawn([] {
      weft::sleep(1ms);
      return 7;
    });
    pool.reset();
    EXPECT_EQ(job.wait(), 7);
  });
}

// Before: accepted, then every spawn waited for ever. (resize(0) pauses a
// pool that has run, as in eventlet: see above.)
TEST(GreenPool, ConstructingAPoolOfSizeZeroIsRejected) {
  EXPECT_THROW(weft::GreenPool(0), std::invalid_argument);
}

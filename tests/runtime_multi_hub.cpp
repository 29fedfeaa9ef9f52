// weft::Runtime: several hubs on their own threads. run/spawn/spawn_on from
// any thread, GreenThread waits, kills and links across hubs, and stop() /
// the destructor with fibers still alive on every hub.

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

std::string thread_name() {
  char name[16] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return name;
}

// Sets a flag when destroyed: shows a killed fiber unwound its stack.
struct Unwound {
  std::atomic<int>& count;
  ~Unwound() { ++count; }
};

class RuntimeHubs : public ::testing::TestWithParam<std::size_t> {};

}  // namespace

TEST_P(RuntimeHubs, RunReturnsMainsValueFromHubZero) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = GetParam()});
  EXPECT_EQ(runtime.hub_count(), GetParam());
  std::string where;
  const int answer = runtime.run(
      [&](int x) {
        where = thread_name();
        return x * 2;
      },
      21);
  EXPECT_EQ(answer, 42);
  EXPECT_EQ(where, "weft-hub-0");
  // Hubs stay up: run again.
  EXPECT_EQ(runtime.run([] { return std::string("again"); }), "again");
}

TEST_P(RuntimeHubs, RunRethrowsMainsException) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = GetParam()});
  EXPECT_THROW(runtime.run([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
  EXPECT_EQ(runtime.run([] { return 1; }), 1);
}

TEST_P(RuntimeHubs, SpawnRoundRobinLandsOnDistinctHubThreads) {
  const std::size_t hubs = GetParam();
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = hubs});
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::set<std::string> names;
  runtime.run([&] {
    std::vector<weft::GreenThread<void>> fibers;
    for (std::size_t i = 0; i < hubs; ++i) {
      fibers.push_back(runtime.spawn([&] {
        std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
        names.insert(thread_name());
      }));
    }
    for (auto& fiber : fibers)
      fiber.wait();
  });
  EXPECT_EQ(threads.size(), hubs);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(names.size(), hubs);
}

TEST_P(RuntimeHubs, SpawnOnRunsOnThatHub) {
  const std::size_t hubs = GetParam();
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = hubs});
  runtime.run([&] {
    std::vector<std::thread::id> ids;
    for (std::size_t i = 0; i < hubs; ++i) {
      auto name = runtime.spawn_on(i, [] { return thread_name(); }).wait();
      EXPECT_EQ(name, "weft-hub-" + std::to_string(i));
      ids.push_back(runtime.spawn_on(i, [] { return std::this_thread::get_id(); }).wait());
      // The same hub every time.
      EXPECT_EQ(runtime.spawn_on(i, [] { return std::this_thread::get_id(); }).wait(), ids.back());
    }
    EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), hubs);
  });
}

TEST_P(RuntimeHubs, SpawnOnOutOfRangeThrows) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = GetParam()});
  EXPECT_THROW(runtime.spawn_on(GetParam(), [] {}), std::out_of_range);
  runtime.run([&] { EXPECT_THROW(runtime.spawn_on(GetParam() + 7, [] {}), std::out_of_range); });
}

TEST_P(RuntimeHubs, StopWithFibersSleepingOnEveryHubKillsThem) {
  const std::size_t hubs = GetParam();
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = hubs});
  std::atomic<int> unwound{0};
  std::latch asleep(static_cast<std::ptrdiff_t>(hubs * 3));
  std::vector<weft::GreenThread<void>> sleepers;
  for (std::size_t i = 0; i < hubs * 3; ++i) {
    sleepers.push_back(runtime.spawn_on(i % hubs, [&] {
      Unwound guard{unwound};
      asleep.count_down();
      weft::sleep(1h);
    }));
  }
  asleep.wait();
  runtime.stop();
  EXPECT_EQ(unwound.load(), static_cast<int>(hubs * 3));
  for (auto& sleeper : sleepers) {
    EXPECT_TRUE(sleeper.dead());
    EXPECT_THROW(sleeper.wait(), weft::FiberExit);  // ended: no hub needed
  }
  runtime.stop();  // idempotent
  // After stop, a spawned fiber never runs.
  std::atomic<bool> ran{false};
  auto late = runtime.spawn([&] { ran = true; });
  EXPECT_TRUE(late.dead());
  EXPECT_THROW(late.wait(), weft::FiberExit);
  EXPECT_FALSE(ran.load());
}

TEST_P(RuntimeHubs, DestructorWithoutStopKillsSleepers) {
  const std::size_t hubs = GetParam();
  std::atomic<int> unwound{0};
  std::vector<weft::GreenThread<void>> sleepers;
  {
    weft::Runtime runtime(weft::RuntimeOptions{.hubs = hubs});
    std::latch asleep(static_cast<std::ptrdiff_t>(hubs));
    for (std::size_t i = 0; i < hubs; ++i) {
      sleepers.push_back(runtime.spawn([&] {
        Unwound guard{unwound};
        asleep.count_down();
        weft::sleep(1h);
      }));
    }
    asleep.wait();
  }
  EXPECT_EQ(unwound.load(), static_cast<int>(hubs));
  for (auto& sleeper : sleepers)
    EXPECT_TRUE(sleeper.dead());
}

TEST_P(RuntimeHubs, IdleRuntimeIsDestroyedPromptly) {
  const auto t0 = std::chrono::steady_clock::now();
  { weft::Runtime runtime(weft::RuntimeOptions{.hubs = GetParam()}); }
  {
    weft::Runtime runtime(weft::RuntimeOptions{.hubs = GetParam()});
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_P(RuntimeHubs, SpawnFromPlainThread) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = GetParam()});
  std::vector<weft::GreenThread<int>> fibers;
  std::thread spawner([&] {
    for (int i = 0; i < 100; ++i)
      fibers.push_back(runtime.spawn([](int x) { return x; }, i));
    for (int i = 0; i < 10; ++i) {
      fibers.push_back(runtime.spawn_on(
          static_cast<std::size_t>(i) % runtime.hub_count(), [](int x) { return x; }, 100 + i));
    }
  });
  spawner.join();
  const int sum = runtime.run([&] {
    int total = 0;
    for (auto& fiber : fibers)
      total += fiber.wait();
    return total;
  });
  EXPECT_EQ(sum, 109 * 110 / 2);
}

INSTANTIATE_TEST_SUITE_P(Hubs, RuntimeHubs, ::testing::Values(1, 2, 4),
                         [](const auto& info) { return std::to_string(info.param) + "hubs"; });

TEST(RuntimeMultiHub, HubCountDefaultsToCores) {
  weft::Runtime runtime;
  EXPECT_EQ(runtime.hub_count(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(RuntimeMultiHub, FiberWaitsOnGreenThreadOfAnotherHubBothWays) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    // Hub 0 waits for hub 1: it suspends until hub 1's fiber ends.
    auto far = runtime.spawn_on(1, [] {
      weft::sleep(5ms);
      return thread_name();
    });
    EXPECT_FALSE(far.dead());
    EXPECT_EQ(far.wait(), "weft-hub-1");
    EXPECT_TRUE(far.dead());
    // Hub 1 waits for hub 0.
    auto near = runtime.spawn_on(0, [] {
      weft::sleep(5ms);
      return 7;
    });
    EXPECT_EQ(runtime.spawn_on(1, [near] { return near.wait() + 1; }).wait(), 8);
  });
}

TEST(RuntimeMultiHub, WaitingOnAnotherHubSuspendsOnlyTheWaiter) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    std::atomic<bool> release{false};
    auto far = runtime.spawn_on(1, [&] {
      while (!release.load())
        weft::sleep(1ms);
    });
    int ticks = 0;
    auto ticker = weft::spawn([&] {
      while (ticks < 5) {
        ++ticks;
        weft::yield();
      }
      release = true;
    });
    far.wait();  // hub 0 keeps running the ticker meanwhile
    EXPECT_EQ(ticks, 5);
    ticker.wait();
  });
}

TEST(RuntimeMultiHub, TenThousandCrossHubSpawnWaitsLoseNoWakeup) {
  constexpr int rounds = 10000;
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    // Both directions at once: hub 0 -> 1 here, hub 1 -> 0 in `other`.
    auto other = runtime.spawn_on(1, [&] {
      long sum = 0;
      for (int i = 0; i < rounds; ++i)
        sum += runtime.spawn_on(0, [i] { return i; }).wait();
      return sum;
    });
    long sum = 0;
    for (int i = 0; i < rounds; ++i) {
      auto far = runtime.spawn_on(1, [i] {
        if (i % 3 == 0) weft::yield();  // sometimes ends before, sometimes after the wait
        return i;
      });
      if (i % 5 == 0) weft::yield();
      sum += far.wait();
    }
    const long expected = long{rounds} * (rounds - 1) / 2;
    EXPECT_EQ(sum, expected);
    EXPECT_EQ(other.wait(), expected);
  });
}

TEST(RuntimeMultiHub, ManyWaitersOnSeveralHubsAllWake) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 4});
  runtime.run([&] {
    weft::Event<> go;
    auto target = runtime.spawn_on(3, [&] {
      go.wait();
      return 5;
    });
    std::vector<weft::GreenThread<int>> waiters;
    for (int i = 0; i < 40; ++i)
      waiters.push_back(runtime.spawn_on(i % 3, [target] { return target.wait(); }));
    weft::sleep(5ms);
    go.send();
    int sum = 0;
    for (auto& w : waiters)
      sum += w.wait();
    EXPECT_EQ(sum, 200);
  });
}

TEST(RuntimeMultiHub, KillAcrossHubsUnwindsTargetAndItsWaiterSeesFiberExit) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 3});
  std::atomic<int> unwound{0};
  std::atomic<bool> started{false};
  runtime.run([&] {
    auto target = runtime.spawn_on(1, [&] {
      Unwound guard{unwound};
      started = true;
      weft::sleep(1h);
    });
    auto waiter = runtime.spawn_on(2, [target] {
      try {
        target.wait();
      } catch (const weft::FiberExit&) {
        return true;
      }
      return false;
    });
    while (!started)
      weft::sleep(1ms);
    target.kill();  // from hub 0: delivered by hub 1
    EXPECT_THROW(target.wait(), weft::FiberExit);
    EXPECT_TRUE(waiter.wait());
    EXPECT_EQ(unwound.load(), 1);
    EXPECT_TRUE(target.dead());
  });
}

TEST(RuntimeMultiHub, KillWithAnExceptionAcrossHubs) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    auto target = runtime.spawn_on(1, [] { weft::sleep(1h); });
    weft::sleep(2ms);
    target.kill(std::make_exception_ptr(std::runtime_error("stop it")));
    EXPECT_THROW(target.wait(), std::runtime_error);
  });
}

TEST(RuntimeMultiHub, KillOrCancelJustAfterSpawnOnAnotherHub) {
  // The kill races with the start on hub 1: either the fiber never runs and
  // its wait() throws FiberExit, or it had started (and, having no
  // suspension point, ran to its end).
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  std::atomic<int> ran{0};
  int completed = 0;
  runtime.run([&] {
    for (int i = 0; i < 200; ++i) {
      auto target = runtime.spawn_on(1, [&] { ++ran; });
      if (i % 2) {
        target.kill();
      } else {
        target.cancel();
      }
      try {
        target.wait();
        EXPECT_TRUE(target.started());
        ++completed;
      } catch (const weft::FiberExit&) {
        EXPECT_FALSE(target.started());
      }
    }
  });
  EXPECT_EQ(ran.load(), completed);
}

TEST(RuntimeMultiHub, KillOnTheTargetsHubBeforeItsStartArrives) {
  // A fiber of hub 1 kills a fiber spawned onto hub 1 from hub 0 while the
  // start is still in hub 1's remote queue (hub 1 is busy spinning in the
  // killer, so it takes no posts): the kill goes in behind the start.
  constexpr int rounds = 100;
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  std::atomic<int> ran{0};
  runtime.run([&] {
    weft::GreenThread<void> slot;
    std::atomic<int> handed{0};
    std::atomic<int> killed{0};
    auto killer = runtime.spawn_on(1, [&] {
      for (int r = 1; r <= rounds; ++r) {
        while (handed.load(std::memory_order_acquire) < r) {
        }
        slot.kill();
        killed.store(r, std::memory_order_release);
        weft::sleep(0s);
      }
    });
    for (int r = 1; r <= rounds; ++r) {
      auto target = runtime.spawn_on(1, [&] { ++ran; });
      slot = target;
      handed.store(r, std::memory_order_release);
      while (killed.load(std::memory_order_acquire) < r)
        weft::yield();
      EXPECT_THROW(target.wait(), weft::FiberExit);
      EXPECT_FALSE(target.started());
    }
    killer.wait();
  });
  EXPECT_EQ(ran.load(), 0);
}

TEST(RuntimeMultiHub, KillFromPlainThread) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  std::atomic<int> unwound{0};
  std::latch started(1);
  auto target = runtime.spawn_on(1, [&] {
    Unwound guard{unwound};
    started.count_down();
    weft::sleep(1h);
  });
  started.wait();
  std::thread killer([&] { target.kill(); });
  killer.join();
  EXPECT_THROW(runtime.run([&] { target.wait(); }), weft::FiberExit);
  EXPECT_EQ(unwound.load(), 1);
}

TEST(RuntimeMultiHub, WaitFromPlainThreadNeedsAHubUnlessEnded) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 1});
  std::latch started(1);
  weft::Event<> go;
  auto target = runtime.spawn([&] {
    started.count_down();
    go.wait();
    return 3;
  });
  started.wait();
  EXPECT_THROW(target.wait(), weft::NoHubError);
  go.send();
  EXPECT_EQ(runtime.run([&] { return target.wait(); }), 3);
  EXPECT_EQ(target.wait(), 3);  // ended: fine from a plain thread
}

TEST(RuntimeMultiHub, LinkCallbacksOfCrossHubFiberRun) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  std::mutex mutex;
  std::vector<std::string> calls;
  runtime.run([&] {
    weft::Event<> go;
    auto far = runtime.spawn_on(1, [&] {
      go.wait();
      return 11;
    });
    far.link([&](weft::GreenThread<int>& self) {
      std::lock_guard lock(mutex);
      calls.push_back("first " + std::to_string(self.wait()) + " on " + thread_name());
    });
    const auto id = far.link([&] {
      std::lock_guard lock(mutex);
      calls.push_back("unlinked");
    });
    far.link([&] {
      std::lock_guard lock(mutex);
      calls.push_back("third on " + thread_name());
    });
    EXPECT_TRUE(far.unlink(id));
    weft::spawn([&] { go.send(); });  // runs once this fiber is parked in wait()
    EXPECT_EQ(far.wait(), 11);
    {
      // A parked waiter resumes after every callback has run.
      std::lock_guard lock(mutex);
      EXPECT_EQ(calls.size(), 2u);
    }
    // Linked after the end: runs now, here.
    far.link([&] {
      std::lock_guard lock(mutex);
      calls.push_back("late on " + thread_name());
    });
  });
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0], "first 11 on weft-hub-1");
  EXPECT_EQ(calls[1], "third on weft-hub-1");
  EXPECT_EQ(calls[2], "late on weft-hub-0");
}

TEST(RuntimeMultiHub, LinkFromPlainThread) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  std::atomic<int> linked{0};
  weft::Event<> go;
  auto far = runtime.spawn_on(1, [&] { go.wait(); });
  std::thread([&] { far.link([&] { ++linked; }); }).join();
  go.send();
  runtime.run([&] { far.wait(); });
  EXPECT_EQ(linked.load(), 1);
}

TEST(RuntimeMultiHub, TimeoutWhileWaitingOnAnotherHub) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    weft::Event<> go;
    auto far = runtime.spawn_on(1, [&] {
      go.wait();
      return 1;
    });
    {
      weft::Timeout timeout(5ms);
      EXPECT_THROW(far.wait(), weft::TimeoutError);
    }
    go.send();
    EXPECT_EQ(far.wait(), 1);  // a waiter that left never swallows the wake-up
  });
}

TEST(RuntimeMultiHub, KilledWaiterOnOneHubWhileTargetEndsOnAnother) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    for (int i = 0; i < 500; ++i) {
      auto far = runtime.spawn_on(1, [i] {
        if (i % 2) weft::yield();
        return i;
      });
      auto waiter = weft::spawn([far] { return far.wait(); });
      weft::yield();
      waiter.kill();
      try {
        EXPECT_EQ(waiter.wait(), i);
      } catch (const weft::FiberExit&) {
      }
      EXPECT_EQ(far.wait(), i);
    }
  });
}

TEST(RuntimeMultiHub, MoveOnlyResultAcrossHubs) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  runtime.run([&] {
    auto far = runtime.spawn_on(1, [] { return std::make_unique<int>(9); });
    EXPECT_EQ(*far.wait(), 9);
    EXPECT_THROW(far.wait(), std::logic_error);
  });
}

TEST(RuntimeMultiHub, StopFromAFiberKillsMain) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  std::atomic<int> unwound{0};
  EXPECT_THROW(runtime.run([&] {
    Unwound guard{unwound};
    runtime.spawn_on(1, [&] { runtime.stop(); });
    weft::sleep(1h);
  }),
               weft::FiberExit);
  EXPECT_EQ(unwound.load(), 1);
  runtime.stop();
  EXPECT_THROW(runtime.run([] { return 1; }), weft::FiberExit);
}

TEST(RuntimeMultiHub, RunFromAHubThreadThrows) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 1});
  runtime.run([&] { EXPECT_THROW(runtime.run([] {}), std::logic_error); });
  weft::run([&] { EXPECT_THROW(runtime.run([] {}), std::logic_error); });
}

TEST(RuntimeMultiHub, SyncObjectsAcrossRuntimeHubs) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 4});
  runtime.run([&] {
    weft::Queue<int> queue(8);
    std::vector<weft::GreenThread<long>> consumers;
    for (int c = 0; c < 3; ++c) {
      consumers.push_back(runtime.spawn([&] {
        long sum = 0;
        for (int v; (v = queue.get()) >= 0;)
          sum += v;
        return sum;
      }));
    }
    for (int i = 0; i < 3000; ++i)
      queue.put(i);
    for (int c = 0; c < 3; ++c)
      queue.put(-1);
    long total = 0;
    for (auto& c : consumers)
      total += c.wait();
    EXPECT_EQ(total, 2999L * 3000 / 2);
  });
}

// Before: "Resource temporarily unavailable" and nothing about what failed.
// Run in a child whose fd limit leaves room for a few hubs only.
TEST(RuntimeDeathTest, HubsThatCannotBeMadeSayWhichFailed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        rlimit limit{};
        ::getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = 64;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        std::string what;
        try {
          weft::Runtime runtime(weft::RuntimeOptions{.hubs = 64});
        } catch (const std::system_error& e) {
          what = e.what();
        }
        std::fprintf(stderr, "%s\n", what.c_str());
        std::_Exit(what.find("weft::Runtime: making hub") != std::string::npos ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "weft::Runtime: making hub [0-9]+ of 64");
}

// Sync objects shared between hubs on different OS threads, and with plain OS
// threads: wake-ups travel through the waiter's hub, none is lost, and
// interrupted waiters never swallow a permit or an item.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// Runs `body` as the main fiber of a hub on a new thread.
template <class F>
std::thread on_another_hub(F body) {
  return std::thread([body = std::move(body)]() mutable { weft::run(std::move(body)); });
}

}  // namespace

TEST(SyncCrossHub, EventSentOnOneHubWakesWaitersOnAnother) {
  weft::Event<int> event;
  std::atomic<int> received{0};
  auto other = on_another_hub([&] {
    std::vector<weft::GreenThread<void>> waiters;
    for (int i = 0; i < 3; ++i)
      waiters.push_back(weft::spawn([&] { received += event.wait(); }));
    for (auto& w : waiters)
      w.wait();
  });
  weft::run([&] {
    weft::sleep(5ms);
    event.send(7);
  });
  other.join();
  EXPECT_EQ(received.load(), 21);
}

TEST(SyncCrossHub, SemaphorePingPongBetweenTwoHubsLosesNoWakeup) {
  constexpr int rounds = 20000;
  weft::Semaphore ping(0);
  weft::Semaphore pong(0);
  auto other = on_another_hub([&] {
    for (int i = 0; i < rounds; ++i) {
      ping.acquire();
      pong.release();
    }
  });
  weft::run([&] {
    for (int i = 0; i < rounds; ++i) {
      ping.release();
      pong.acquire();
    }
  });
  other.join();
  EXPECT_EQ(ping.balance(), 0);
  EXPECT_EQ(pong.balance(), 0);
}

TEST(SyncCrossHub, QueueBetweenTwoHubsDeliversEveryItemInOrder) {
  constexpr int items = 20000;
  weft::Queue<int> queue(16);
  std::vector<int> got;
  auto consumer = on_another_hub([&] {
    for (int i = 0; i < items; ++i)
      got.push_back(queue.get());
  });
  weft::run([&] {
    for (int i = 0; i < items; ++i)
      queue.put(i);
  });
  consumer.join();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(items));
  for (int i = 0; i < items; ++i)
    ASSERT_EQ(got[i], i);
}

TEST(SyncCrossHub, MutexExcludesFibersOfTwoHubs) {
  weft::Mutex mutex;
  int inside = 0;
  int most = 0;
  long counter = 0;
  auto work = [&] {
    std::vector<weft::GreenThread<void>> workers;
    for (int f = 0; f < 10; ++f) {
      workers.push_back(weft::spawn([&] {
        for (int i = 0; i < 300; ++i) {
          std::lock_guard guard(mutex);
          most = std::max(most, ++inside);
          ++counter;
          weft::yield();
          --inside;
        }
      }));
    }
    for (auto& w : workers)
      w.wait();
  };
  auto other = on_another_hub(work);
  weft::run(work);
  other.join();
  EXPECT_EQ(counter, 2 * 10 * 300);
  EXPECT_EQ(most, 1);
}

TEST(SyncCrossHub, EightPlainThreadsPuttingIntoOneHubLoseNothing) {
  constexpr int threads = 8;
  constexpr int per_thread = 5000;
  weft::Queue<int> queue;
  weft::run([&] {
    std::vector<std::thread> producers;
    for (int t = 0; t < threads; ++t) {
      producers.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i)
          queue.put(t * per_thread + i);
      });
    }
    long sum = 0;
    for (int i = 0; i < threads * per_thread; ++i)
      sum += queue.get();
    for (auto& p : producers)
      p.join();
    const long n = threads * per_thread;
    EXPECT_EQ(sum, n * (n - 1) / 2);
    EXPECT_TRUE(queue.empty());
  });
}

TEST(SyncCrossHub, PermitsAreConservedWhenWaitersTimeOutWhileAnotherHubReleases) {
  // Releases race with Timeouts on the waiters' hub: every permit ends up
  // either acquired or still in the semaphore, never lost to a waiter that left.
  constexpr int waiters = 2000;
  constexpr int releases = 1000;
  weft::Semaphore sem(0);
  std::atomic<int> acquired{0};
  std::atomic<bool> waiters_started{false};
  auto other = on_another_hub([&] {
    std::vector<weft::GreenThread<void>> fibers;
    std::minstd_rand random(1);
    for (int i = 0; i < waiters; ++i) {
      const auto patience = std::chrono::microseconds(random() % 2000);
      fibers.push_back(weft::spawn([&, patience] {
        if (sem.acquire_for(patience)) ++acquired;
      }));
    }
    waiters_started = true;
    for (auto& f : fibers)
      f.wait();
  });
  weft::run([&] {
    while (!waiters_started)
      weft::sleep(100us);
    for (int i = 0; i < releases; ++i) {
      sem.release();
      if (i % 50 == 0) weft::sleep(50us);
    }
  });
  other.join();
  EXPECT_EQ(acquired.load() + sem.balance(), releases);
}

TEST(SyncCrossHub, ItemsAreConservedWhenGettersAreKilledWhileAnotherHubPuts) {
  constexpr int getters = 500;
  constexpr int items = 400;
  weft::Queue<int> queue;
  std::atomic<long> got_sum{0};
  std::atomic<bool> getters_started{false};
  std::atomic<bool> puts_done{false};
  auto other = on_another_hub([&] {
    std::vector<weft::GreenThread<void>> fibers;
    for (int i = 0; i < getters; ++i)
      fibers.push_back(weft::spawn([&] { got_sum += queue.get(); }));
    getters_started = true;
    std::minstd_rand random(2);
    // Kill a random half while the other hub is putting.
    for (int i = 0; i < getters; i += 2) {
      weft::sleep(std::chrono::microseconds(random() % 20));
      fibers[random() % getters].kill();
    }
    while (!puts_done)
      weft::sleep(100us);
    for (auto& f : fibers)
      f.kill();
  });
  weft::run([&] {
    while (!getters_started)
      weft::sleep(100us);
    for (int i = 1; i <= items; ++i) {
      queue.put(i);
      if (i % 10 == 0) weft::sleep(10us);
    }
    puts_done = true;
  });
  other.join();
  long left = 0;
  while (auto item = queue.try_get())
    left += *item;
  EXPECT_EQ(got_sum.load() + left, static_cast<long>(items) * (items + 1) / 2);
}

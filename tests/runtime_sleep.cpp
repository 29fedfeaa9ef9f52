// sleep, yield and timer ordering.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include <weft/weft.hpp>

#include "virtual_time.hpp"

using namespace std::chrono_literals;

TEST(Sleep, NeverReturnsEarly) {
  weft::run([] {
    for (auto d : {100us, 1000us, 2500us}) {
      const auto start = std::chrono::steady_clock::now();
      weft::sleep(d);
      EXPECT_GE(std::chrono::steady_clock::now() - start, d);
    }
  });
}

TEST(Sleep, SleepersWakeInDeadlineOrder) {
  // On the virtual clock: in real time, a stall on a loaded machine between
  // the sleepers' starts could put one's deadline in the past before it slept
  // (it then only yields), ahead of an earlier deadline still in the heap.
  weft_test::run_virtual([] {
    std::vector<int> order;
    std::vector<weft::GreenThread<void>> sleepers;
    const auto base = weft::now();
    for (int ms : {4, 1, 3, 2}) {
      sleepers.push_back(weft::spawn([&order, base, ms] {
        weft::sleep_until(base + std::chrono::milliseconds(ms));
        order.push_back(ms);
      }));
    }
    for (auto& s : sleepers)
      s.wait();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  });
}

TEST(Sleep, ZeroAndNegativeDurationsYield) {
  weft::run([] {
    std::vector<int> log;
    weft::spawn_n([&] { log.push_back(1); });
    weft::sleep(0ms);
    EXPECT_EQ(log, std::vector<int>{1});
    weft::spawn_n([&] { log.push_back(2); });
    weft::sleep(-5ms);
    EXPECT_EQ(log, (std::vector<int>{1, 2}));
  });
}

// On virtual time: on a loaded machine under ASan, the round that starts the
// 5,000 fibers outlasted a real second, and a sleep whose deadline has passed
// is a yield, not a timer.
TEST(Sleep, ManyPendingTimersFireInDeadlineOrderAndEqualDeadlinesInTheOrderSet) {
  weft::run(
      [] {
        constexpr int count = 5000;
        constexpr int per_deadline = 50;
        const auto base = weft::now() + 1s;
        std::vector<int> fired;  // spawn indexes, in wake order
        fired.reserve(count);
        // Spawned in reverse deadline order; each group of 100 shares a deadline.
        for (int i = 0; i < count; ++i) {
          weft::spawn_n([&fired, base, i] {
            const int group = (count - 1 - i) / per_deadline;
            weft::sleep_until(base + std::chrono::microseconds(group * 10));
            fired.push_back(i);
          });
        }
        while (static_cast<int>(fired.size()) < count)
          weft::sleep(1ms);
        for (int k = 0; k < count; ++k) {
          const int group = k / per_deadline;
          const int expected = count - (group + 1) * per_deadline + k % per_deadline;
          ASSERT_EQ(fired[k], expected) << "wake #" << k;
        }
      },
      weft::RunOptions{.clock = weft::Clock::virtual_time});
}

TEST(Sleep, AYieldingFiberDoesNotStarveSleepers) {
  weft::run([] {
    bool woke = false;
    weft::spawn_n([&] {
      weft::sleep(1ms);
      woke = true;
    });
    while (!woke)
      weft::yield();
    SUCCEED();
  });
}

TEST(Sleep, ATimerDueDuringALongRoundFiresInsideItAndJoinsTheBackOfTheQueue) {
  // 256 fibers each hold the CPU for 20 us, then yield: one round of them
  // lasts at least 5 ms. A sleeper whose 1 ms deadline passes during that
  // round is woken inside it (the hub looks at its timers every 64 fibers),
  // so it runs before the fibers that yield after that look have run again,
  // and not first: it joins the back of the queue. Only "not before" holds
  // in real time, so the round is made long by the clock, not by a count.
  weft::run([] {
    constexpr int busy = 256;
    std::vector<int> order;  // -1: the sleeper; i: fiber i after its yield
    const auto deadline = std::chrono::steady_clock::now() + 1ms;
    weft::spawn_n([&] {
      weft::sleep(1ms);
      EXPECT_GE(std::chrono::steady_clock::now(), deadline);
      order.push_back(-1);
    });
    for (int i = 0; i < busy; ++i) {
      weft::spawn_n([&, i] {
        const auto until = std::chrono::steady_clock::now() + 20us;
        while (std::chrono::steady_clock::now() < until) {
        }
        weft::yield();
        order.push_back(i);
      });
    }
    while (order.size() < busy + 1)
      weft::sleep(1ms);
    const auto sleeper = std::find(order.begin(), order.end(), -1) - order.begin();
    EXPECT_GT(sleeper, 0) << "it became ready after fiber 0 yielded";
    EXPECT_LT(sleeper, busy) << "it waited for the whole round to end";
    // Everyone else kept FIFO order around it.
    order.erase(order.begin() + sleeper);
    for (int i = 0; i < busy; ++i)
      ASSERT_EQ(order[i], i);
  });
}

// GreenPile: results handed back in spawn order (not completion order), each
// job's exception rethrown by its own next(), and spawns that give up while
// waiting for a slot leaving the pile as it was. Mirrors eventlet's
// tests/greenpool_test.py (GreenPile, test_pile_spawn_times_out, Stress).

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

// Armed first thing in every test's main fiber: if a bug leaves a fiber
// waiting forever, the test fails with a TimeoutError instead of hanging. The
// tests themselves take milliseconds.
constexpr auto kWatchdog = 5s;

std::vector<int> iota_vector(int first, int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

int passthru(int x) {
  return x;
}

}  // namespace

TEST(GreenPile, NextReturnsResultsInSpawnOrderNotCompletionOrder) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPile<int> pile(10);
    std::vector<int> completed;
    for (int i = 0; i < 5; ++i) {
      pile.spawn(
          [&](int x) {
            for (int turn = 0; turn < 5 - x; ++turn)
              weft::yield();  // later jobs end sooner
            completed.push_back(x);
            return x;
          },
          i);
    }
    EXPECT_EQ(pile.size(), 5u);
    EXPECT_FALSE(pile.empty());
    std::vector<int> results;
    while (!pile.empty())
      results.push_back(pile.next());
    EXPECT_EQ(completed, (std::vector<int>{4, 3, 2, 1, 0}));
    EXPECT_EQ(results, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(pile.size(), 0u);
  });
}

TEST(GreenPile, NextWaitsForTheOldestJobEvenWhenYoungerOnesHaveEnded) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPile<std::string> pile(2);
    Log log;
    bool release_slow = false;
    pile.spawn([&] {
      while (!release_slow)
        weft::sleep(1ms);
      log.push_back("slow ended");
      return std::string("slow");
    });
    pile.spawn([&] {
      log.push_back("fast ended");
      return std::string("fast");
    });
    auto releaser = weft::spawn([&] {
      weft::sleep(2ms);
      log.push_back("releasing slow");
      release_slow = true;
    });
    EXPECT_EQ(pile.next(), "slow");
    EXPECT_EQ(pile.next(), "fast");
    releaser.wait();
    EXPECT_EQ(log, (Log{"fast ended", "releasing slow", "slow ended"}));
  });
}

TEST(GreenPile, JobsExceptionIsRethrownByItsOwnNextAndLaterResultsStillCome) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPile<int> pile(4);
    for (int i = 0; i < 10; ++i) {
      pile.spawn(
          [](int x) {
            weft::yield();
            if (x == 1 || x == 7) throw std::runtime_error("r" + std::to_string(x));
            return x;
          },
          i);
    }
    Log results;
    while (!pile.empty()) {
      try {
        results.push_back(std::to_string(pile.next()));
      } catch (const std::runtime_error& e) {
        results.push_back(e.what());
      }
    }
    EXPECT_EQ(results, (Log{"0", "r1", "2", "3", "4", "5", "6", "r7", "8", "9"}));
  });
}

TEST(GreenPile, EmptyPileReportsEmptyAndNextThrowsOutOfRange) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPile<int> pile;
    EXPECT_TRUE(pile.empty());
    EXPECT_EQ(pile.size(), 0u);
    EXPECT_THROW(pile.next(), std::out_of_range);

    pile.spawn(passthru, 3);
    EXPECT_FALSE(pile.empty());
    EXPECT_EQ(pile.next(), 3);
    EXPECT_TRUE(pile.empty());
    EXPECT_THROW(pile.next(), std::out_of_range);
  });
}

TEST(GreenPile, NextOnAnEmptyPileThrowsWithoutSuspending) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPile<int> pile;
    Log log;
    auto other = weft::spawn([&] { log.push_back("other fiber ran"); });
    try {
      pile.next();
      log.push_back("next returned");
    } catch (const std::out_of_range&) {
      log.push_back("next threw");
    }
    other.wait();
    EXPECT_EQ(log, (Log{"next threw", "other fiber ran"}));
  });
}

TEST(GreenPile, SpawnIntoAFullPileInterruptedByTimeoutZeroLeavesTheSequenceIntact) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPile<int> pile(4);
    for (int i = 0; i < 4; ++i)
      pile.spawn(passthru, i);
    {
      weft::Timeout timeout(0ms);
      EXPECT_THROW(pile.spawn(passthru, -1), weft::TimeoutError);
    }
    EXPECT_EQ(pile.size(), 4u);
    for (int i = 4; i < 10; ++i)
      pile.spawn(passthru, i);
    std::vector<int> results;
    while (!pile.empty())
      results.push_back(pile.next());
    EXPECT_EQ(results, iota_vector(0, 10));
  });
}

TEST(GreenPile, SpawnTimingOutOnAFullSharedPoolTakesNoSlotAndAddsNothing) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    weft::GreenPile<int> pile(pool);
    bool release = false;
    auto blocker = [&](int x) {
      while (!release)
        weft::sleep(1ms);
      return x;
    };
    pile.spawn(blocker, 0);
    pile.spawn(blocker, 1);
    {
      weft::Timeout timeout(0ms);
      EXPECT_THROW(pile.spawn(passthru, -1), weft::TimeoutError);
    }
    EXPECT_EQ(pile.size(), 2u);
    EXPECT_EQ(pool.running(), 2u);
    EXPECT_EQ(pool.waiting(), 0u);
    EXPECT_EQ(pool.free(), 0);

    release = true;
    pile.spawn(passthru, 2);
    std::vector<int> results;
    while (!pile.empty())
      results.push_back(pile.next());
    EXPECT_EQ(results, iota_vector(0, 3));
    pool.waitall();
    EXPECT_EQ(pool.free(), 2);
  });
}

TEST(GreenPile, SpawnIntoAFullPileKilledWhileWaitingAddsNothing) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(1);
    weft::GreenPile<int> pile(pool);
    Log log;
    bool release = false;
    pile.spawn(
        [&](int x) {
          while (!release)
            weft::sleep(1ms);
          return x;
        },
        0);
    auto spawner = weft::spawn([&] {
      pile.spawn([&] {
        log.push_back("killed spawner's job ran");
        return -1;
      });
      log.push_back("spawner got slot");
    });
    weft::yield();
    ASSERT_EQ(pool.waiting(), 1u);
    spawner.kill();
    EXPECT_TRUE(spawner.dead());
    EXPECT_EQ(pile.size(), 1u);
    EXPECT_EQ(pool.waiting(), 0u);

    release = true;
    pile.spawn(passthru, 1);
    EXPECT_EQ(pile.next(), 0);
    EXPECT_EQ(pile.next(), 1);
    EXPECT_TRUE(pile.empty());
    pool.waitall();
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(pool.free(), 1);
  });
}

TEST(GreenPile, TwoPilesSharingOnePoolEachKeepTheirOwnOrder) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    weft::GreenPool pool(2);
    weft::GreenPile<int> pile1(pool);
    weft::GreenPile<int> pile2(pool);
    int active = 0;
    int peak = 0;
    auto work = [&](int x) {
      peak = std::max(peak, ++active);
      weft::yield();
      --active;
      return x;
    };
    auto bunch_of_work = [&](weft::GreenPile<int>& pile, int unique) {
      for (int i = 0; i < 10; ++i)
        pile.spawn(work, i + unique);
    };
    auto producer1 = weft::spawn(bunch_of_work, std::ref(pile1), 0);
    auto producer2 = weft::spawn(bunch_of_work, std::ref(pile2), 100);
    producer1.wait();
    producer2.wait();
    EXPECT_EQ(pile1.size(), 10u);
    EXPECT_EQ(pile2.size(), 10u);
    std::vector<int> results2;
    while (!pile2.empty())
      results2.push_back(pile2.next());
    std::vector<int> results1;
    while (!pile1.empty())
      results1.push_back(pile1.next());
    EXPECT_EQ(results2, iota_vector(100, 10));
    EXPECT_EQ(results1, iota_vector(0, 10));
    EXPECT_EQ(peak, 2);  // both piles together never ran more than the pool allows
  });
}

// Three producers feed one pile while it is drained; jobs take a random number
// of turns and a random one in ten throws. Each producer's results (values or
// exceptions) must come out in the order it spawned them.
namespace {

struct StressError : std::runtime_error {
  explicit StressError(std::pair<int, int> token) : std::runtime_error("stress"), token(token) {}
  std::pair<int, int> token;
};

void check_strict_order_per_producer(std::size_t concurrency) {
  weft::run([&] {
    weft::Timeout watchdog(kWatchdog);
    constexpr int kIters = 200;
    constexpr int kProducers = 3;
    std::mt19937 rng(1234 + static_cast<unsigned>(concurrency));
    weft::GreenPile<std::pair<int, int>> pile(concurrency);
    auto pressure = [&](std::pair<int, int> token) {
      const int turns = static_cast<int>(rng() % 4);
      for (int t = 0; t < turns; ++t)
        weft::yield();
      if (rng() % 10 == 0) throw StressError(token);
      return token;
    };
    std::vector<weft::GreenThread<void>> producers;
    for (int unique = 1; unique <= kProducers; ++unique) {
      producers.push_back(weft::spawn([&, unique] {
        for (int i = 0; i < kIters; ++i)
          pile.spawn(pressure, std::pair{unique, i});
      }));
    }
    pile.spawn(pressure, std::pair{0, 0});

    std::array<int, kProducers + 1> latest;
    latest.fill(-1);
    int received = 0;
    int errors = 0;
    std::string first_violation;
    while (received < kProducers * kIters + 1) {
      if (pile.empty()) {
        weft::yield();  // the producers have not spawned the next job yet
        continue;
      }
      std::pair<int, int> token;
      try {
        token = pile.next();
      } catch (const StressError& e) {
        token = e.token;
        ++errors;
      }
      ++received;
      if (received % 5 == 0) weft::yield();
      auto [unique, order] = token;
      if (latest[unique] >= order && first_violation.empty()) {
        first_violation = "producer " + std::to_string(unique) + ": " + std::to_string(order) +
                          " came after " + std::to_string(latest[unique]);
      }
      latest[unique] = order;
    }
    EXPECT_EQ(first_violation, "");
    for (int unique = 1; unique <= kProducers; ++unique)
      EXPECT_EQ(latest[unique], kIters - 1);
    EXPECT_GT(errors, 0);  // the exception path was exercised
    for (auto& p : producers)
      p.wait();
    EXPECT_TRUE(pile.empty());
  });
}

}  // namespace

TEST(GreenPile, StrictPerProducerOrderAtConcurrency5WithRandomExceptions) {
  check_strict_order_per_producer(5);
}

TEST(GreenPile, StrictPerProducerOrderAtConcurrency50WithRandomExceptions) {
  check_strict_order_per_producer(50);
}

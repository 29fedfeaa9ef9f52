// Queue, LifoQueue and PriorityQueue: order, bounds, timeouts, hand-offs to
// waiting getters and putters (FIFO, no barging), waiters that are killed or
// time out, resize, move-only items, and puts from plain OS threads. Mirrors
// eventlet's tests/queue_test.py where weft's contract agrees (maxsize 0 is
// unbounded here; the rendezvous is Channel<T>).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

// Armed first thing in every test's main fiber: a queue bug that leaves a
// fiber waiting forever fails the test with a TimeoutError instead of hanging.
constexpr auto kWatchdog = 10s;

// Keeps the calling thread (no fiber may run meanwhile) busy until `d` has
// passed: a Timeout that falls due in between cannot fire before it suspends.
void busy_wait(std::chrono::nanoseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

// From a plain OS thread: waits (bounded) until `n` fibers wait in q.get().
template <class Q>
bool wait_for_getters(const Q& q, std::size_t n) {
  const auto until = std::chrono::steady_clock::now() + kWatchdog;
  while (q.getting() < n) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

struct ByPointee {
  bool operator()(const std::unique_ptr<int>& a, const std::unique_ptr<int>& b) const {
    return *a < *b;
  }
};

}  // namespace

// --- order, bounds, non-blocking and timed calls ------------------------------

TEST(Queue, GetsReturnItemsInFifoOrder) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    for (int i = 1; i <= 5; ++i)
      q.put(i);
    std::vector<int> got;
    for (int i = 0; i < 5; ++i)
      got.push_back(q.get());
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3, 4, 5}));
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, PutOnAnUnboundedQueueNeverWaits) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    bool other_ran = false;
    weft::spawn([&] { other_ran = true; });
    for (int i = 0; i < 10000; ++i)
      q.put(i);
    EXPECT_FALSE(other_ran) << "put suspended the caller";
    EXPECT_EQ(q.size(), 10000u);
    EXPECT_FALSE(q.full());
  });
}

TEST(Queue, MaxsizeZeroIsUnbounded) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(0);
    EXPECT_EQ(q.maxsize(), 0u);
    for (int i = 0; i < 1000; ++i)
      EXPECT_TRUE(q.try_put(i));
    EXPECT_EQ(q.size(), 1000u);
    EXPECT_FALSE(q.full());
    EXPECT_EQ(q.get(), 0);  // not a rendezvous: the items were stored
  });
}

TEST(Queue, BoundedPutWaitsWhileFullAndResumesInFifoOrderWhenGetsMakeRoom) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(2);
    q.put(1);
    q.put(2);
    std::vector<int> stored;  // putters, in the order their put returned
    for (int i = 3; i <= 5; ++i) {
      weft::spawn([&, i] {
        q.put(i);
        stored.push_back(i);
      });
    }
    weft::yield();
    EXPECT_EQ(q.putting(), 3u);
    EXPECT_TRUE(stored.empty());
    EXPECT_EQ(q.size(), 2u);

    EXPECT_EQ(q.get(), 1);
    weft::yield();
    EXPECT_EQ(stored, (std::vector<int>{3}));
    EXPECT_EQ(q.get(), 2);
    weft::yield();
    EXPECT_EQ(stored, (std::vector<int>{3, 4}));
    EXPECT_EQ(q.get(), 3);
    weft::yield();
    EXPECT_EQ(stored, (std::vector<int>{3, 4, 5}));
    EXPECT_EQ(q.putting(), 0u);
    EXPECT_EQ(q.get(), 4);
    EXPECT_EQ(q.get(), 5);
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, TryPutFailsWhenFullAndTryGetIsEmptyWhenEmpty) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(2);
    EXPECT_FALSE(q.try_get().has_value());
    EXPECT_TRUE(q.try_put(1));
    EXPECT_TRUE(q.try_put(2));
    EXPECT_FALSE(q.try_put(3));
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.try_get(), std::optional<int>(1));
    EXPECT_EQ(q.try_get(), std::optional<int>(2));
    EXPECT_FALSE(q.try_get().has_value());
  });
}

TEST(Queue, PutForReturnsFalseAfterTheTimeoutWithoutAddingTheItem) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    EXPECT_FALSE(q.put_for(2, 2ms));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.putting(), 0u);
    EXPECT_EQ(q.get(), 1);
    EXPECT_FALSE(q.try_get().has_value());
    EXPECT_TRUE(q.put_for(3, 1h));  // room now: no wait
    EXPECT_EQ(q.get(), 3);
  });
}

TEST(Queue, GetForReturnsEmptyAfterTheTimeout) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    EXPECT_FALSE(q.get_for(2ms).has_value());
    EXPECT_EQ(q.getting(), 0u);
    q.put(4);
    EXPECT_EQ(q.get_for(1h), std::optional<int>(4));
  });
}

// --- waiting getters ----------------------------------------------------------

TEST(Queue, WaitingGettersAreServedInFifoOrder) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    std::vector<int> got(3, 0);
    std::vector<int> finished;
    std::vector<weft::GreenThread<void>> getters;
    for (int i = 0; i < 3; ++i) {
      getters.push_back(weft::spawn([&, i] {
        got[i] = q.get();
        finished.push_back(i);
      }));
    }
    weft::yield();
    EXPECT_EQ(q.getting(), 3u);
    q.put(10);
    q.put(20);
    q.put(30);
    EXPECT_EQ(q.getting(), 0u);
    EXPECT_TRUE(q.empty());  // handed straight to the getters
    for (auto& g : getters)
      g.wait();
    EXPECT_EQ(got, (std::vector<int>{10, 20, 30}));
    EXPECT_EQ(finished, (std::vector<int>{0, 1, 2}));
  });
}

TEST(Queue, AGetterKilledWhileWaitingLosesNoItem) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    bool a_got = false;
    auto a = weft::spawn([&] {
      q.get();
      a_got = true;
    });
    auto b = weft::spawn([&] { return q.get(); });
    weft::yield();
    ASSERT_EQ(q.getting(), 2u);
    a.kill();
    EXPECT_THROW(a.wait(), weft::FiberExit);
    EXPECT_EQ(q.getting(), 1u);
    q.put(7);
    EXPECT_EQ(b.wait(), 7);
    EXPECT_FALSE(a_got);
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, AGetterKilledAfterBeingHandedAnItemPassesItToTheNextGetter) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    bool a_got = false;
    auto a = weft::spawn([&] {
      q.get();
      a_got = true;
    });
    auto b = weft::spawn([&] { return q.get(); });
    weft::yield();
    ASSERT_EQ(q.getting(), 2u);
    q.put(7);  // handed to a, which has not resumed yet
    a.kill();  // same round, no yield in between
    EXPECT_THROW(a.wait(), weft::FiberExit);
    EXPECT_FALSE(a_got);
    EXPECT_EQ(b.wait(), 7);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.getting(), 0u);
  });
}

TEST(Queue, AGetterKilledAfterBeingHandedAnItemPutsItBackAtTheFrontWhenNoOneElseWaits) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    auto a = weft::spawn([&] { return q.get(); });
    weft::yield();
    q.put(7);  // handed to a
    q.put(8);  // queued
    a.kill();
    EXPECT_THROW(a.wait(), weft::FiberExit);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.try_get(), std::optional<int>(7));
    EXPECT_EQ(q.try_get(), std::optional<int>(8));
  });
}

TEST(Queue, AGetterWhoseTimeoutFiresAfterItWasHandedAnItemLosesNoItem) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    std::optional<int> a_got;
    bool a_timed_out = false;
    auto a = weft::spawn([&] {
      weft::Timeout t(1ms);
      try {
        a_got = q.get();
        weft::yield();  // a late TimeoutError would surface here
      } catch (const weft::TimeoutError& e) {
        EXPECT_TRUE(e.is(t));
        a_timed_out = true;
      }
    });
    std::optional<int> b_got;
    auto b = weft::spawn([&] { b_got = q.get(); });
    weft::yield();
    ASSERT_EQ(q.getting(), 2u);
    busy_wait(5ms);  // a's Timeout is now due, but cannot fire while we run
    q.put(7);        // handed to a
    a.wait();
    // The item went to a (and a then kept it), or to b; never nowhere.
    if (a_got.has_value()) {
      EXPECT_EQ(*a_got, 7);
      EXPECT_FALSE(b.dead());
      EXPECT_TRUE(q.empty());
    } else {
      EXPECT_TRUE(a_timed_out);
      b.wait();
      EXPECT_EQ(b_got, std::optional<int>(7));
      EXPECT_TRUE(q.empty());
    }
  });
}

TEST(Queue, ALoneGetterWhoseTimeoutFiresAfterItWasHandedAnItemLeavesItInTheQueue) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    std::optional<int> a_got;
    auto a = weft::spawn([&] {
      weft::Timeout t(1ms);
      try {
        a_got = q.get();
      } catch (const weft::TimeoutError&) {
      }
    });
    weft::yield();
    busy_wait(5ms);
    q.put(7);
    a.wait();
    if (a_got.has_value()) {
      EXPECT_EQ(*a_got, 7);
      EXPECT_TRUE(q.empty());
    } else {
      EXPECT_EQ(q.try_get(), std::optional<int>(7));
    }
  });
}

// --- waiting putters ----------------------------------------------------------

TEST(Queue, APutterKilledWhileWaitingAddsNothingAndDoesNotBlockOthers) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    auto p1 = weft::spawn([&] { q.put(2); });
    auto p2 = weft::spawn([&] { q.put(3); });
    weft::yield();
    ASSERT_EQ(q.putting(), 2u);
    p1.kill();
    EXPECT_THROW(p1.wait(), weft::FiberExit);
    EXPECT_EQ(q.putting(), 1u);
    EXPECT_EQ(q.get(), 1);
    p2.wait();
    EXPECT_EQ(q.try_get(), std::optional<int>(3));
    EXPECT_FALSE(q.try_get().has_value());
  });
}

TEST(Queue, APutterKilledAfterBeingGrantedASlotPassesTheSlotOn) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    auto p1 = weft::spawn([&] { q.put(2); });
    auto p2 = weft::spawn([&] { q.put(3); });
    weft::yield();
    EXPECT_EQ(q.get(), 1);  // the slot goes to p1, which has not resumed yet
    p1.kill();
    EXPECT_THROW(p1.wait(), weft::FiberExit);
    p2.wait();
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.try_get(), std::optional<int>(3));
    EXPECT_FALSE(q.try_get().has_value());
  });
}

TEST(Queue, NoBargingASlotGrantedToAWaitingPutterIsNotTakenByANewcomer) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    auto p = weft::spawn([&] { q.put(2); });
    weft::yield();
    EXPECT_EQ(q.get(), 1);  // the slot is granted to p
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(99));
    p.wait();
    EXPECT_EQ(q.get(), 2);
    EXPECT_FALSE(q.try_get().has_value());
  });
}

// A putter granted a slot may find a getter waiting by the time it resumes; it
// hands its item straight over, so the slot is free again and must go to the
// next waiting putter.
TEST(Queue, APutterThatHandsItsGrantedSlotsItemToAWaitingGetterLetsTheNextPutterIn) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    auto p1 = weft::spawn([&] { q.put(2); });
    auto p2 = weft::spawn([&] { q.put(3); });
    weft::yield();
    ASSERT_EQ(q.putting(), 2u);
    EXPECT_EQ(q.get(), 1);  // slot granted to p1, which has not resumed yet
    EXPECT_EQ(q.get(), 2);  // empty: we wait; p1 hands 2 straight to us
    EXPECT_EQ(q.get_for(2s), std::optional<int>(3)) << "p2 was left waiting with room free";
    EXPECT_EQ(q.putting(), 0u);
  });
}

TEST(Queue, ProducersOnABoundedQueueAndOneConsumerPassEveryItem) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    constexpr int kProducers = 3;
    constexpr int kEach = 100;
    for (int p = 0; p < kProducers; ++p) {
      weft::spawn([&q, p] {
        for (int i = 0; i < kEach; ++i)
          q.put(p * kEach + i);
      });
    }
    long sum = 0;
    int received = 0;
    for (; received < kProducers * kEach; ++received) {
      auto item = q.get_for(2s);
      if (!item) break;
      sum += *item;
    }
    EXPECT_EQ(received, kProducers * kEach) << "a putter was left waiting with room free";
    const long n = kProducers * kEach;
    EXPECT_EQ(sum, n * (n - 1) / 2);
  });
}

// --- resize, counts -----------------------------------------------------------

TEST(Queue, ResizeUpWakesWaitingPutters) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    auto p2 = weft::spawn([&] { q.put(2); });
    auto p3 = weft::spawn([&] { q.put(3); });
    auto p4 = weft::spawn([&] { q.put(4); });
    weft::yield();
    ASSERT_EQ(q.putting(), 3u);
    q.resize(3);
    p2.wait();
    p3.wait();
    EXPECT_EQ(q.size(), 3u);
    EXPECT_EQ(q.putting(), 1u);
    EXPECT_FALSE(p4.dead());
    EXPECT_EQ(q.get(), 1);
    p4.wait();
    EXPECT_EQ(q.get(), 2);
    EXPECT_EQ(q.get(), 3);
    EXPECT_EQ(q.get(), 4);
  });
}

TEST(Queue, ResizeToZeroMakesItUnboundedAndWakesEveryPutter) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    std::vector<weft::GreenThread<void>> putters;
    for (int i = 2; i <= 4; ++i)
      putters.push_back(weft::spawn([&, i] { q.put(i); }));
    weft::yield();
    ASSERT_EQ(q.putting(), 3u);
    q.resize(0);
    for (auto& p : putters)
      p.wait();
    EXPECT_EQ(q.maxsize(), 0u);
    EXPECT_EQ(q.size(), 4u);
    EXPECT_FALSE(q.full());
    for (int i = 1; i <= 4; ++i)
      EXPECT_EQ(q.get(), i);
  });
}

TEST(Queue, ResizeDownKeepsTheQueuedItems) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(5);
    for (int i = 1; i <= 5; ++i)
      q.put(i);
    q.resize(2);
    EXPECT_EQ(q.maxsize(), 2u);
    EXPECT_EQ(q.size(), 5u);
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(6));
    for (int i = 1; i <= 4; ++i)
      EXPECT_EQ(q.get(), i);
    EXPECT_FALSE(q.full());  // 1 item, bound 2
    EXPECT_TRUE(q.try_put(6));
    EXPECT_FALSE(q.try_put(7));
    EXPECT_EQ(q.get(), 5);
    EXPECT_EQ(q.get(), 6);
  });
}

TEST(Queue, SizeEmptyFullGettingAndPuttingCountWhatTheyName) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(2);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.full());
    EXPECT_EQ(q.getting(), 0u);
    EXPECT_EQ(q.putting(), 0u);

    auto g1 = weft::spawn([&] { return q.get(); });
    auto g2 = weft::spawn([&] { return q.get(); });
    weft::yield();
    EXPECT_EQ(q.getting(), 2u);
    EXPECT_EQ(q.putting(), 0u);
    q.put(1);
    EXPECT_EQ(q.getting(), 1u);
    q.put(2);
    EXPECT_EQ(q.getting(), 0u);
    EXPECT_EQ(g1.wait(), 1);
    EXPECT_EQ(g2.wait(), 2);

    q.put(3);
    EXPECT_EQ(q.size(), 1u);
    EXPECT_FALSE(q.empty());
    EXPECT_FALSE(q.full());
    q.put(4);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_TRUE(q.full());
    auto p = weft::spawn([&] { q.put(5); });
    weft::yield();
    EXPECT_EQ(q.putting(), 1u);
    EXPECT_EQ(q.getting(), 0u);
    EXPECT_EQ(q.get(), 3);
    p.wait();
    EXPECT_EQ(q.putting(), 0u);
    EXPECT_EQ(q.size(), 2u);
  });
}

// --- Timeout and kill around calls ------------------------------------------------

TEST(Queue, ATimeoutAroundGetThrowsTimeoutErrorAndLeavesTheQueueConsistent) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    {
      weft::Timeout t(2ms);
      try {
        q.get();
        ADD_FAILURE() << "get outlived its Timeout";
      } catch (const weft::TimeoutError& e) {
        EXPECT_TRUE(e.is(t));
      }
    }
    EXPECT_EQ(q.getting(), 0u);
    EXPECT_TRUE(q.empty());
    auto g = weft::spawn([&] { return q.get(); });
    weft::yield();
    q.put(5);
    EXPECT_EQ(g.wait(), 5);
    EXPECT_TRUE(q.empty());
    q.put(6);
    EXPECT_EQ(q.get(), 6);
  });
}

TEST(Queue, ATimeoutAroundPutThrowsTimeoutErrorWithoutAddingTheItem) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    q.put(1);
    EXPECT_THROW(weft::with_timeout(2ms, [&] { q.put(2); }), weft::TimeoutError);
    EXPECT_EQ(q.putting(), 0u);
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.get(), 1);
    EXPECT_TRUE(q.try_put(3));
    EXPECT_EQ(q.get(), 3);
  });
}

// --- item types and the other orders --------------------------------------------------

TEST(Queue, MoveOnlyItemsWork) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<std::unique_ptr<int>> q(2);
    q.put(std::make_unique<int>(1));
    EXPECT_TRUE(q.try_put(std::make_unique<int>(2)));
    EXPECT_FALSE(q.put_for(std::make_unique<int>(3), 1ms));
    auto one = q.get();
    ASSERT_TRUE(one);
    EXPECT_EQ(*one, 1);
    auto two = q.try_get();
    ASSERT_TRUE(two.has_value() && *two);
    EXPECT_EQ(**two, 2);
    EXPECT_FALSE(q.get_for(1ms).has_value());

    auto getter = weft::spawn([&] { return *q.get(); });
    weft::yield();
    q.put(std::make_unique<int>(4));  // handed to the waiting getter
    EXPECT_EQ(getter.wait(), 4);

    weft::LifoQueue<std::unique_ptr<int>> lifo;
    lifo.put(std::make_unique<int>(5));
    EXPECT_EQ(*lifo.get(), 5);
    weft::PriorityQueue<std::unique_ptr<int>, ByPointee> by_value;
    for (int i : {3, 1, 2})
      by_value.put(std::make_unique<int>(i));
    EXPECT_EQ(*by_value.get(), 1);
    EXPECT_EQ(*by_value.get(), 2);
    EXPECT_EQ(*by_value.get(), 3);
  });
}

TEST(LifoQueue, GetsReturnTheLastItemPutFirst) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::LifoQueue<int> q;
    for (int i = 1; i <= 4; ++i)
      q.put(i);
    std::vector<int> got;
    while (auto item = q.try_get())
      got.push_back(*item);
    EXPECT_EQ(got, (std::vector<int>{4, 3, 2, 1}));
    q.put(1);
    q.put(2);
    EXPECT_EQ(q.get(), 2);
    q.put(3);
    EXPECT_EQ(q.get(), 3);
    EXPECT_EQ(q.get(), 1);
  });
}

TEST(PriorityQueue, GetsReturnTheSmallestItemFirst) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::PriorityQueue<int> q;
    for (int i : {5, 1, 4, 2, 3, 2})
      q.put(i);
    std::vector<int> got;
    while (!q.empty())
      got.push_back(q.get());
    EXPECT_EQ(got, (std::vector<int>{1, 2, 2, 3, 4, 5}));
  });
}

TEST(PriorityQueue, WithGreaterAsCompareGetsReturnTheLargestItemFirst) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::PriorityQueue<int, std::greater<int>> q;
    for (int i : {5, 1, 4, 2, 3})
      q.put(i);
    std::vector<int> got;
    while (!q.empty())
      got.push_back(q.get());
    EXPECT_EQ(got, (std::vector<int>{5, 4, 3, 2, 1}));
  });
}

TEST(PriorityQueue, AGetterInterruptedAfterBeingHandedAnItemGivesItBackInPriorityOrder) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::PriorityQueue<int> q;
    auto a = weft::spawn([&] { return q.get(); });
    weft::yield();
    q.put(5);  // handed to a
    q.put(9);
    q.put(1);
    a.kill();  // before a resumed: 5 goes back into the heap
    EXPECT_THROW(a.wait(), weft::FiberExit);
    EXPECT_EQ(q.size(), 3u);
    EXPECT_EQ(q.get(), 1);
    EXPECT_EQ(q.get(), 5);
    EXPECT_EQ(q.get(), 9);
  });
}

// --- plain OS threads -------------------------------------------------------------------

TEST(Queue, PutFromAPlainThreadWakesAFiberBlockedInGet) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q;
    std::jthread producer([&] {
      if (wait_for_getters(q, 1)) q.put(42);
    });
    EXPECT_EQ(q.get(), 42);
  });
}

TEST(Queue, TryPutFromAPlainThreadWakesAFiberBlockedInGet) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Queue<int> q(1);
    std::atomic<bool> try_put_ok{false};
    std::jthread producer([&] {
      if (wait_for_getters(q, 1)) try_put_ok = q.try_put(42);
    });
    EXPECT_EQ(q.get(), 42);
    producer.join();
    EXPECT_TRUE(try_put_ok);
  });
}

TEST(Queue, FourThreadsPuttingTenThousandItemsEachReachOneFiberWithNothingLost) {
  weft::run([] {
    weft::Timeout watchdog(60s);
    constexpr std::uint64_t kThreads = 4;
    constexpr std::uint64_t kEach = 10000;
    weft::Queue<std::uint64_t> q;
    std::vector<std::jthread> producers;
    for (std::uint64_t t = 0; t < kThreads; ++t) {
      producers.emplace_back([&q, t] {
        for (std::uint64_t i = 0; i < kEach; ++i)
          q.put(t * kEach + i);
      });
    }
    std::vector<std::uint64_t> next(kThreads, 0);
    bool per_thread_fifo = true;
    std::uint64_t sum = 0;
    std::uint64_t received = 0;
    for (; received < kThreads * kEach; ++received) {
      auto item = q.get_for(10s);  // a lost wake-up shows as a timeout, not a hang
      if (!item) break;
      const std::uint64_t t = *item / kEach;
      const std::uint64_t i = *item % kEach;
      if (t >= kThreads || next[t] != i) per_thread_fifo = false;
      if (t < kThreads) next[t] = i + 1;
      sum += *item;
    }
    EXPECT_EQ(received, kThreads * kEach);
    const std::uint64_t n = kThreads * kEach;
    EXPECT_EQ(sum, n * (n - 1) / 2);
    EXPECT_TRUE(per_thread_fifo);
    for (auto& p : producers)
      p.join();
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, TryGetAndTryPutWorkFromAPlainThread) {
  weft::Queue<int> q(1);
  std::thread([&] {
    EXPECT_TRUE(q.try_put(1));
    EXPECT_FALSE(q.try_put(2));
    EXPECT_TRUE(q.full());
    EXPECT_EQ(q.try_get(), std::optional<int>(1));
    EXPECT_FALSE(q.try_get().has_value());
    // A put on a bounded queue may wait: for fibers, even with room
    // (sync_plain_threads has the rule).
    EXPECT_THROW(q.put(3), weft::NoHubError);
  }).join();
  EXPECT_FALSE(q.try_get().has_value());
}

TEST(Queue, GetOutsideAnyHubThrowsNoHubError) {
  static_assert(std::is_base_of_v<std::logic_error, weft::NoHubError>);
  weft::Queue<int> q;
  EXPECT_THROW(q.get(), weft::NoHubError);
  EXPECT_THROW(q.get_for(1h), weft::NoHubError);
  EXPECT_THROW(q.get(), std::logic_error);
  EXPECT_EQ(q.getting(), 0u);
  weft::Queue<int> full(1);
  EXPECT_TRUE(full.try_put(1));
  EXPECT_THROW(full.put(2), weft::NoHubError);
  EXPECT_EQ(full.size(), 1u);
  EXPECT_EQ(full.putting(), 0u);
}

// Channel<T>: a rendezvous (eventlet's Queue(0)). put waits until a get takes
// the item, get waits for a put, both served oldest first; try_put/try_get
// need a partner already waiting; waiters that are killed or time out lose
// and deliver nothing. Mirrors eventlet's tests/queue_test.py channel tests
// where weft's contract agrees.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

// Armed first thing in every test's main fiber: a channel bug that leaves a
// fiber waiting forever fails the test with a TimeoutError instead of hanging.
constexpr auto kWatchdog = 10s;

}  // namespace

// eventlet's test_channel_send, with a consumer that is busy (not yet waiting
// in get) each time the producer puts: the producer waits in put, and resumes
// only after the consumer took the item.
TEST(Channel, PutterResumesOnlyAfterTheGetterTookTheItem) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<std::string> ch;
    Log events;
    auto consumer = weft::spawn([&] {
      events.push_back(ch.get());
      weft::yield();  // busy: not waiting in get when the next put comes
      events.push_back(ch.get());
    });
    events.push_back("sending");
    ch.put("hello");
    events.push_back("sent hello");
    ch.put("world");
    events.push_back("sent world");
    consumer.wait();
    EXPECT_EQ(events, (Log{"sending", "hello", "sent hello", "world", "sent world"}));
  });
}

// eventlet's test_channel_send as written. The second put finds the consumer
// already waiting in get: the item changes hands at once and put returns
// without suspending (weft's contract: a call that need not wait does not
// suspend), so "sent world" comes before the consumer, which has the item,
// records it. eventlet's order would be ... "world", "sent world".
TEST(Channel, PutToAGetterAlreadyWaitingHandsTheItemOverWithoutSuspending) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<std::string> ch;
    Log events;
    auto consumer = weft::spawn([&] {
      events.push_back(ch.get());
      events.push_back(ch.get());
    });
    events.push_back("sending");
    ch.put("hello");
    events.push_back("sent hello");
    ASSERT_EQ(ch.getting(), 1u);
    ch.put("world");
    EXPECT_EQ(ch.getting(), 0u);  // delivered
    events.push_back("sent world");
    consumer.wait();
    EXPECT_EQ(events, (Log{"sending", "hello", "sent hello", "sent world", "world"}));
  });
}

TEST(Channel, GetWaitsForAPut) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    auto getter = weft::spawn([&] { return ch.get(); });
    weft::yield();
    weft::yield();
    EXPECT_FALSE(getter.dead());
    EXPECT_EQ(ch.getting(), 1u);
    ch.put(5);
    EXPECT_EQ(getter.wait(), 5);
    EXPECT_EQ(ch.getting(), 0u);
  });
}

TEST(Channel, PutWaitsForAGet) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    bool put_returned = false;
    auto putter = weft::spawn([&] {
      ch.put(5);
      put_returned = true;
    });
    weft::yield();
    weft::yield();
    EXPECT_FALSE(put_returned);
    EXPECT_EQ(ch.putting(), 1u);
    EXPECT_EQ(ch.get(), 5);
    putter.wait();
    EXPECT_TRUE(put_returned);
    EXPECT_EQ(ch.putting(), 0u);
  });
}

TEST(Channel, TryPutFailsWithNoWaitingGetterAndSucceedsWithOne) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    EXPECT_FALSE(ch.try_put(1));
    EXPECT_FALSE(ch.try_get().has_value());  // the failed try_put left nothing behind
    auto getter = weft::spawn([&] { return ch.get(); });
    weft::yield();
    EXPECT_TRUE(ch.try_put(2));
    EXPECT_EQ(getter.wait(), 2);
    EXPECT_FALSE(ch.try_put(3));
  });
}

TEST(Channel, TryGetFailsWithNoWaitingPutterAndSucceedsWithOne) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    EXPECT_FALSE(ch.try_get().has_value());
    auto putter = weft::spawn([&] { ch.put(4); });
    weft::yield();
    EXPECT_EQ(ch.try_get(), std::optional<int>(4));
    putter.wait();
    EXPECT_FALSE(ch.try_get().has_value());
  });
}

TEST(Channel, PutForReturnsFalseAfterTheTimeoutAndDeliversNothing) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    EXPECT_FALSE(ch.put_for(1, 2ms));
    EXPECT_EQ(ch.putting(), 0u);
    EXPECT_FALSE(ch.try_get().has_value());
    EXPECT_FALSE(ch.get_for(1ms).has_value());
  });
}

TEST(Channel, GetForReturnsEmptyAfterTheTimeout) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    EXPECT_FALSE(ch.get_for(2ms).has_value());
    EXPECT_EQ(ch.getting(), 0u);
    EXPECT_FALSE(ch.try_put(1));  // the timed-out getter is gone
  });
}

TEST(Channel, PutForAndGetForSucceedWithAPartner) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    auto putter = weft::spawn([&] { return ch.put_for(6, 1h); });
    EXPECT_EQ(ch.get_for(1h), std::optional<int>(6));
    EXPECT_TRUE(putter.wait());
  });
}

TEST(Channel, WaitingPuttersAreServedInFifoOrder) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    std::vector<int> returned;
    std::vector<weft::GreenThread<void>> putters;
    for (int i = 1; i <= 3; ++i) {
      putters.push_back(weft::spawn([&, i] {
        ch.put(i);
        returned.push_back(i);
      }));
    }
    weft::yield();
    ASSERT_EQ(ch.putting(), 3u);
    std::vector<int> got;
    for (int i = 0; i < 3; ++i)
      got.push_back(ch.get());
    for (auto& p : putters)
      p.wait();
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(returned, (std::vector<int>{1, 2, 3}));
  });
}

TEST(Channel, WaitingGettersAreServedInFifoOrder) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    std::vector<int> got(3, 0);
    std::vector<weft::GreenThread<void>> getters;
    for (int i = 0; i < 3; ++i)
      getters.push_back(weft::spawn([&, i] { got[i] = ch.get(); }));
    weft::yield();
    ASSERT_EQ(ch.getting(), 3u);
    ch.put(10);
    ch.put(20);
    ch.put(30);
    for (auto& g : getters)
      g.wait();
    EXPECT_EQ(got, (std::vector<int>{10, 20, 30}));
  });
}

TEST(Channel, APutterKilledBeforeItsItemWasTakenDeliversNothing) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    auto p1 = weft::spawn([&] { ch.put(1); });
    auto p2 = weft::spawn([&] { ch.put(2); });
    weft::yield();
    ASSERT_EQ(ch.putting(), 2u);
    p1.kill();
    EXPECT_THROW(p1.wait(), weft::FiberExit);
    EXPECT_EQ(ch.putting(), 1u);
    EXPECT_EQ(ch.get(), 2);
    p2.wait();
    EXPECT_FALSE(ch.try_get().has_value());
    EXPECT_FALSE(ch.get_for(1ms).has_value());
  });
}

TEST(Channel, AGetterKilledWhileWaitingLeavesTheNextPutToTheNextGetter) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    bool a_got = false;
    auto a = weft::spawn([&] {
      ch.get();
      a_got = true;
    });
    auto b = weft::spawn([&] { return ch.get(); });
    weft::yield();
    ASSERT_EQ(ch.getting(), 2u);
    a.kill();
    EXPECT_THROW(a.wait(), weft::FiberExit);
    EXPECT_EQ(ch.getting(), 1u);
    EXPECT_TRUE(ch.try_put(7));
    EXPECT_EQ(b.wait(), 7);
    EXPECT_FALSE(a_got);
  });
}

// Once the item has changed hands it stays with the getter: a kill that
// arrives before the getter resumes is thrown at its next suspension point.
TEST(Channel, AGetterKilledAfterBeingHandedAnItemStillReturnsIt) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    std::optional<int> a_got;
    auto a = weft::spawn([&] {
      a_got = ch.get();
      weft::yield();
    });
    weft::yield();
    ch.put(7);  // handed to a, which has not resumed yet
    a.kill();
    EXPECT_THROW(a.wait(), weft::FiberExit);
    EXPECT_EQ(a_got, std::optional<int>(7));
  });
}

TEST(Channel, APutterKilledAfterItsItemWasTakenStillReturnsFromPut) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    bool put_returned = false;
    auto p = weft::spawn([&] {
      ch.put(3);
      put_returned = true;
      weft::yield();
    });
    weft::yield();
    EXPECT_EQ(ch.try_get(), std::optional<int>(3));  // p has not resumed yet
    p.kill();
    EXPECT_THROW(p.wait(), weft::FiberExit);
    EXPECT_TRUE(put_returned);
  });
}

TEST(Channel, ATimeoutAroundGetThrowsTimeoutErrorAndLeavesNoWaiterBehind) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    EXPECT_THROW(weft::with_timeout(2ms, [&] { return ch.get(); }), weft::TimeoutError);
    EXPECT_EQ(ch.getting(), 0u);
    EXPECT_FALSE(ch.try_put(1));
  });
}

TEST(Channel, MoveOnlyItemsPassThrough) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<std::unique_ptr<int>> ch;
    auto putter = weft::spawn([&] { ch.put(std::make_unique<int>(8)); });
    auto item = ch.get();
    ASSERT_TRUE(item);
    EXPECT_EQ(*item, 8);
    putter.wait();
    auto getter = weft::spawn([&] { return *ch.get(); });
    weft::yield();
    EXPECT_TRUE(ch.try_put(std::make_unique<int>(9)));
    EXPECT_EQ(getter.wait(), 9);
  });
}

TEST(Channel, TryPutFromAPlainThreadWakesAFiberWaitingInGet) {
  weft::run([] {
    weft::Timeout watchdog(kWatchdog);
    weft::Channel<int> ch;
    std::atomic<bool> delivered{false};
    std::jthread producer([&] {
      const auto until = std::chrono::steady_clock::now() + kWatchdog;
      while (std::chrono::steady_clock::now() < until) {
        if (ch.try_put(42)) {  // succeeds only once the fiber waits in get
          delivered = true;
          return;
        }
        std::this_thread::yield();
      }
    });
    EXPECT_EQ(ch.get(), 42);
    producer.join();
    EXPECT_TRUE(delivered);
  });
}

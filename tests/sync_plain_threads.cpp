// The rule for plain OS threads: calls that may wait are for fibers and throw
// NoHubError outside one even when they would not have had to wait (before:
// they worked while the object was free and failed once it was contended);
// the try_ forms and the giving side work from any thread.

#include <gtest/gtest.h>

#include <thread>

#include <weft/weft.hpp>

TEST(SyncOnPlainThreads, CallsThatMayWaitThrowNoHubErrorEvenWhenFree) {
  std::thread([] {
    weft::Semaphore semaphore(5);
    EXPECT_THROW(semaphore.acquire(), weft::NoHubError);
    weft::Mutex mutex;
    EXPECT_THROW(mutex.lock(), weft::NoHubError);
    weft::CapacityLimiter limiter(3);
    EXPECT_THROW(limiter.acquire(), weft::NoHubError);
    weft::Queue<int> bounded(4);
    EXPECT_THROW(bounded.put(1), weft::NoHubError);
    weft::Queue<int> queue;
    queue.put(7);  // unbounded: never waits
    EXPECT_THROW(queue.get(), weft::NoHubError);
    weft::Event<int> event;
    event.send(1);
    EXPECT_THROW(event.wait(), weft::NoHubError);
    weft::Channel<int> channel;
    EXPECT_THROW(channel.get(), weft::NoHubError);
    EXPECT_EQ(semaphore.balance(), 5);
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
    EXPECT_EQ(limiter.borrowed_tokens(), 0u);
    EXPECT_EQ(queue.size(), 1u);
    EXPECT_EQ(bounded.size(), 0u);
  }).join();
}

TEST(SyncOnPlainThreads, TryFormsAndTheGivingSideWork) {
  std::thread([] {
    weft::Semaphore semaphore(1);
    EXPECT_TRUE(semaphore.try_acquire());
    EXPECT_FALSE(semaphore.acquire_for(std::chrono::nanoseconds(0)));
    semaphore.release();
    weft::Mutex mutex;
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
    weft::CapacityLimiter limiter(1);
    EXPECT_TRUE(limiter.try_acquire());
    limiter.release();
    weft::Queue<int> bounded(1);
    EXPECT_TRUE(bounded.try_put(1));
    EXPECT_EQ(bounded.try_get(), 1);
    weft::Event<int> event;
    event.send(2);
    EXPECT_TRUE(event.ready());
  }).join();
}

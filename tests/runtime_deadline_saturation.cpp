// Every representable duration, in any unit, is a valid timeout: the longest
// ones wait for ever (they never wrap into the past), negative ones do not
// wait, and a fraction of a nanosecond rounds up.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"
#include "hang_watchdog.hpp"

using namespace std::chrono_literals;
using std::chrono::hours;
using std::chrono::nanoseconds;
using Seconds = std::chrono::duration<double>;

TEST(SaturatingNs, ConvertsExactlyWhatFits) {
  using weft::detail::saturating_ns;
  EXPECT_EQ(saturating_ns(3ms), nanoseconds(3'000'000));
  EXPECT_EQ(saturating_ns(-7us), nanoseconds(-7'000));
  EXPECT_EQ(saturating_ns(Seconds(0.5)), nanoseconds(500'000'000));
  EXPECT_EQ(saturating_ns(hours(2'000'000)), nanoseconds(7'200'000'000'000'000'000));
}

TEST(SaturatingNs, ClampsWhatDoesNotFit) {
  using weft::detail::saturating_ns;
  EXPECT_EQ(saturating_ns(hours::max()), nanoseconds::max());
  EXPECT_EQ(saturating_ns(-hours::max()), nanoseconds::min());
  EXPECT_EQ(saturating_ns(Seconds(1e300)), nanoseconds::max());
  EXPECT_EQ(saturating_ns(Seconds(-1e300)), nanoseconds::min());
  EXPECT_EQ(saturating_ns(Seconds(std::numeric_limits<double>::infinity())), nanoseconds::max());
  using UnsignedHours = std::chrono::duration<unsigned long long, std::ratio<3600>>;
  EXPECT_EQ(saturating_ns(UnsignedHours::max()), nanoseconds::max());
  using Picoseconds = std::chrono::duration<unsigned long long, std::pico>;
  EXPECT_EQ(saturating_ns(Picoseconds::max()), nanoseconds(18'446'744'073'709'552));
}

TEST(SaturatingNs, RoundsFractionsOfANanosecondUp) {
  using weft::detail::saturating_ns;
  EXPECT_EQ(saturating_ns(std::chrono::duration<long long, std::pico>(1)), nanoseconds(1));
  EXPECT_EQ(saturating_ns(Seconds(1e-12)), nanoseconds(1));
  EXPECT_EQ(saturating_ns(std::chrono::duration<long long, std::ratio<1, 3>>(1)),
            nanoseconds(333'333'334));
}

TEST(SaturatingNs, RejectsNaN) {
  EXPECT_THROW(weft::detail::saturating_ns(Seconds(std::nan(""))), std::invalid_argument);
  weft::run([] { EXPECT_THROW(weft::sleep(Seconds(std::nan(""))), std::invalid_argument); });
}

// The longest sleeps must not take the hub's other timers with them (before:
// the deadline wrapped into the past and the hub waited for ever).
TEST(DeadlineSaturation, LongestSleepsLeaveOtherTimersFiring) {
  HangWatchdog watchdog("a hub with a sleep(max) fiber");
  weft::run([] {
    auto a = weft::spawn([] { weft::sleep(nanoseconds::max()); });
    auto b = weft::spawn([] { weft::sleep(hours::max()); });
    auto c = weft::spawn([] { weft::sleep(Seconds(1e300)); });
    const auto start = std::chrono::steady_clock::now();
    weft::sleep(2ms);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 2ms);
    for (auto* sleeper : {&a, &b, &c}) {
      EXPECT_FALSE(sleeper->dead());
      sleeper->kill();
    }
  });
}

TEST(DeadlineSaturation, LongestNegativeSleepIsAYield) {
  HangWatchdog watchdog("sleep(-hours::max())");
  weft::run([] {
    bool other_ran = false;
    weft::spawn([&] { other_ran = true; });
    weft::sleep(-hours::max());
    EXPECT_TRUE(other_ran);
    weft::sleep(Seconds(-1e300));
  });
}

TEST(DeadlineSaturation, LongestNegativeTimeoutFiresAtTheFirstSuspension) {
  weft::run([] {
    for (auto make : {+[] { return weft::detail::saturating_ns(-hours::max()); },
                      +[] { return weft::detail::saturating_ns(Seconds(-1e300)); }}) {
      weft::Timeout timeout(make());
      EXPECT_THROW(weft::yield(), weft::TimeoutError);
    }
    weft::Timeout in_hours(-hours::max());
    EXPECT_THROW(weft::yield(), weft::TimeoutError);
  });
}

TEST(DeadlineSaturation, LongestTimeoutNeverFires) {
  HangWatchdog watchdog("a fiber under Timeout(max)");
  weft::run([] {
    weft::Timeout a(hours::max());
    weft::Timeout b(nanoseconds::max());
    weft::Timeout c(Seconds(1e300));
    EXPECT_NO_THROW(weft::sleep(2ms));
    EXPECT_TRUE(a.pending());
    EXPECT_TRUE(b.pending());
    EXPECT_TRUE(c.pending());
  });
}

TEST(DeadlineSaturation, SpawnAfterTheLongestDelayDoesNotRun) {
  HangWatchdog watchdog("spawn_after(hours::max())");
  weft::run([] {
    bool ran = false;
    auto later = weft::spawn_after(hours::max(), [&] { ran = true; });
    auto later_double = weft::spawn_after(Seconds(1e300), [&] { ran = true; });
    weft::sleep(2ms);
    EXPECT_FALSE(ran);
    later.cancel();
    later_double.cancel();
    EXPECT_THROW(later.wait(), weft::FiberExit);
    EXPECT_THROW(later_double.wait(), weft::FiberExit);
    EXPECT_FALSE(ran);
  });
}

TEST(DeadlineSaturation, SpawnAfterTheLongestNegativeDelayRunsAtTheNextRound) {
  weft::run([] {
    bool ran = false;
    weft::spawn_after(-hours::max(), [&] { ran = true; });
    weft::sleep(1ms);
    EXPECT_TRUE(ran);
  });
}

TEST(DeadlineSaturation, SyncWaitsWithTheLongestTimeoutWaitForTheEvent) {
  HangWatchdog watchdog("sync waits with timeouts of hours::max()");
  weft::run([] {
    weft::Event<int> event;
    weft::Queue<int> queue;
    weft::Semaphore semaphore(0);
    weft::spawn([&] {
      weft::sleep(1ms);
      event.send(1);
      queue.put(2);
      semaphore.release();
    });
    EXPECT_EQ(event.wait_for(hours::max()), 1);
    EXPECT_EQ(queue.get_for(Seconds(1e300)), 2);
    EXPECT_TRUE(semaphore.acquire_for(nanoseconds::max()));
    EXPECT_FALSE(semaphore.acquire_for(-hours::max()));
    EXPECT_EQ(queue.get_for(-hours::max()), std::nullopt);
  });
}

TEST(DeadlineSaturation, ConditionVariableWaitUntilTheEndsOfTime) {
  HangWatchdog watchdog("ConditionVariable::wait_until(time_point::max())");
  weft::run([] {
    weft::Mutex mutex;
    weft::ConditionVariable cv;
    bool ready = false;
    weft::spawn([&] {
      weft::sleep(1ms);
      std::lock_guard guard(mutex);
      ready = true;
      cv.notify_all();
    });
    std::unique_lock lock(mutex);
    EXPECT_EQ(cv.wait_until(lock, std::chrono::steady_clock::time_point::min()),
              std::cv_status::timeout);
    while (!ready)
      cv.wait_until(lock, std::chrono::steady_clock::time_point::max());
    EXPECT_TRUE(ready);
  });
}

// Before: the epoll backend made a negative wait epoll_wait(-4): for ever.
TEST(DeadlineSaturation, RunOnceWithANegativeWaitDoesNotWait) {
  HangWatchdog watchdog("Hub::run_once(-5ms)");
  weft::Hub hub;
  hub.spawn([] { weft::sleep(1h); });
  hub.run_once();  // the fiber starts and sleeps
  hub.run_once(-5ms);
  hub.run_once(nanoseconds::min());
  hub.kill_all();
}

class DeadlineSaturationIo : public weft_test::FdLeakCheck {};

TEST_F(DeadlineSaturationIo, ConnectWithTheLongestTimeoutConnects) {
  HangWatchdog watchdog("connect with timeout nanoseconds::max()");
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto accepted = weft::spawn([&] { return listener.accept(); });
    auto stream = weft::TcpStream::connect("127.0.0.1", listener.local_port(), nanoseconds::max());
    EXPECT_EQ(stream.peer_port(), listener.local_port());
    accepted.wait();
  });
}

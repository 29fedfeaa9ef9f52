// Virtual time (HubOptions::clock = Clock::virtual_time): the hub's clock
// moves only by jumps to its next timer, so every timer in weft fires at
// once in real time and at exactly its instant on the hub's clock. The suite
// runs again with WEFT_BACKEND=epoll.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"
#include "hang_watchdog.hpp"

using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

constexpr weft::HubOptions virtual_time{.clock = weft::Clock::virtual_time};

// Threads of this test's own: the process-wide thread cache keeps its
// workers on purpose (to_thread), so they do not count as left behind.
std::size_t own_threads() {
  return weft_test::live_threads() - weft::ThreadCache::global().total_workers();
}

// Fails a test that leaves an fd open or a thread running.
class VirtualTime : public weft_test::FdLeakCheck {
 protected:
  void SetUp() override {
    FdLeakCheck::SetUp();
    // A sanitizer starts a helper thread of its own with the process's first
    // thread: let that happen before counting, and let the thread that
    // started it leave /proc (a moment after join() returns) too. Before, a
    // count taken while it was still listed made a later test fail falsely.
    pid_t started = 0;
    std::thread([&started] { started = ::gettid(); }).join();
    const std::string task = "/proc/self/task/" + std::to_string(started);
    for (int look = 0; look < 1000 && std::filesystem::exists(task); ++look)
      std::this_thread::sleep_for(1ms);
    threads_before_ = own_threads();
  }
  void TearDown() override {
    // A joined thread leaves /proc a moment after join() returns.
    for (int look = 0; look < 1000 && own_threads() > threads_before_; ++look)
      std::this_thread::sleep_for(1ms);
    EXPECT_EQ(own_threads(), threads_before_) << "a thread was left running";
    FdLeakCheck::TearDown();
  }

 private:
  std::size_t threads_before_ = 0;
};

// Waits (on an OS thread) until `flag` is set or a generous bound passes.
bool wait_until_set(const std::atomic<bool>& flag) {
  const auto give_up = steady_clock::now() + 30s;
  while (!flag.load()) {
    if (steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

// A listening TCP socket on 127.0.0.1 whose accept queue is full, so that
// the kernel drops every further handshake: a connect to it never completes.
class FullListener {
 public:
  FullListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd_, 0) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "listener: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(address.sin_port);
    for (int i = 0; i < 8; ++i) {
      const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      ::connect(client, reinterpret_cast<sockaddr*>(&address), length);
      pollfd done{client, POLLOUT, 0};
      if (::poll(&done, 1, 200) == 0) {  // the handshake was dropped: full
        ::close(client);
        full_ = true;
        return;
      }
      queued_.push_back(client);
    }
  }
  ~FullListener() {
    for (int fd : queued_)
      ::close(fd);
    if (fd_ >= 0) ::close(fd_);
  }
  FullListener(const FullListener&) = delete;
  FullListener& operator=(const FullListener&) = delete;

  /// False where the kernel completes handshakes beyond the backlog.
  bool full() const { return full_; }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  bool full_ = false;
  std::vector<int> queued_;
};

}  // namespace

TEST_F(VirtualTime, WithoutAHubNowIsTheSteadyClock) {
  const auto before = steady_clock::now();
  const auto now = weft::now();
  EXPECT_LE(before, now);
  EXPECT_LE(now, steady_clock::now());
}

TEST_F(VirtualTime, ASteadyHubsClockIsTheRealClock) {
  weft::run([] {
    const auto before = steady_clock::now();
    weft::sleep(1ms);
    const auto now = weft::now();
    EXPECT_GE(now - before, 1ms);
    EXPECT_LE(now, steady_clock::now());
  });
}

TEST_F(VirtualTime, TheClockStartsAtTheRealTimeTheHubIsMadeAndStandsStillWithoutTimers) {
  const auto before = steady_clock::now();
  weft::run(
      [before] {
        const auto start = weft::now();
        EXPECT_LE(before, start);
        EXPECT_LE(start, steady_clock::now());
        std::this_thread::sleep_for(2ms);  // real time passes; the hub's clock does not
        weft::yield();
        EXPECT_EQ(weft::now(), start);
      },
      virtual_time);
}

TEST_F(VirtualTime, SleepForAnHourReturnsAtOnceWithTheClockAdvancedByExactlyAnHour) {
  // A clock that waited for real would hang here: the watchdog makes that a failure.
  HangWatchdog watchdog("a virtual-time wait");
  weft::run(
      [] {
        const auto start = weft::now();
        weft::sleep(1h);
        EXPECT_EQ(weft::now() - start, 1h);
      },
      virtual_time);
}

TEST_F(VirtualTime, SleepersWakeInDeadlineOrderAndEqualDeadlinesInTheOrderSet) {
  weft::run(
      [] {
        const auto start = weft::now();
        std::vector<std::pair<int, steady_clock::duration>> woke;  // (sleeper, when)
        const std::pair<int, std::chrono::hours> sleepers[] = {
            {0, 3h}, {1, 1h}, {2, 2h}, {3, 1h}, {4, 2h}};
        std::vector<weft::GreenThread<void>> fibers;
        for (const auto& [sleeper, hours] : sleepers) {
          fibers.push_back(weft::spawn([&woke, start, id = sleeper, hours = hours] {
            weft::sleep(hours);
            woke.emplace_back(id, weft::now() - start);
          }));
        }
        for (auto& fiber : fibers)
          fiber.wait();
        const std::vector<std::pair<int, steady_clock::duration>> expected = {
            {1, 1h}, {3, 1h}, {2, 2h}, {4, 2h}, {0, 3h}};
        EXPECT_EQ(woke, expected);
      },
      virtual_time);
}

TEST_F(VirtualTime, FibersInterleaveAsInRealTime) {
  weft::run(
      [] {
        const auto start = weft::now();
        std::vector<std::string> log;
        auto ticker = weft::spawn([&] {
          for (int i = 1; i <= 3; ++i) {
            weft::sleep(10min);
            log.push_back("tick " + std::to_string(i));
          }
        });
        weft::sleep(25min);
        log.push_back("main at 25 min");
        ticker.wait();
        EXPECT_EQ(log, (std::vector<std::string>{"tick 1", "tick 2", "main at 25 min", "tick 3"}));
        EXPECT_EQ(weft::now() - start, 30min);
      },
      virtual_time);
}

TEST_F(VirtualTime, ATimeoutFiresAtExactlyItsDeadline) {
  weft::run(
      [] {
        const auto start = weft::now();
        try {
          weft::Timeout timeout(90s);
          weft::sleep(1h);
          ADD_FAILURE() << "the Timeout did not fire";
        } catch (const weft::TimeoutError&) {
          EXPECT_EQ(weft::now() - start, 90s);
        }
        // Cancelled with its scope, a Timeout does not move the clock.
        { weft::Timeout unused(1h); }
        weft::sleep(1s);
        EXPECT_EQ(weft::now() - start, 91s);
      },
      virtual_time);
}

TEST_F(VirtualTime, SpawnAfterStartsTheFiberAtExactlyItsDelay) {
  weft::run(
      [] {
        const auto start = weft::now();
        auto late = weft::spawn_after(5min, [start] { return weft::now() - start; });
        EXPECT_EQ(late.wait(), 5min);
      },
      virtual_time);
}

TEST_F(VirtualTime, SleepUntilWakesAtExactlyTheInstantGivenAndAPastInstantOnlyYields) {
  weft::run(
      [] {
        const auto start = weft::now();
        weft::sleep_until(start + 1234567ns);
        EXPECT_EQ(weft::now(), start + 1234567ns);
        weft::sleep_until(start - 1s);
        EXPECT_EQ(weft::now(), start + 1234567ns);
      },
      virtual_time);
}

TEST_F(VirtualTime, DeadlinesSaturateAsOnTheSteadyClock) {
  weft::run(
      [] {
        const auto start = weft::now();
        weft::sleep(std::chrono::duration<double, std::nano>(0.25));  // rounds up: never early
        EXPECT_EQ(weft::now() - start, 1ns);
        weft::sleep(-1h);
        EXPECT_EQ(weft::now() - start, 1ns);
        try {
          weft::Timeout already_due(-5s);
          weft::sleep(1h);
          ADD_FAILURE() << "the Timeout did not fire";
        } catch (const weft::TimeoutError&) {
          EXPECT_EQ(weft::now() - start, 1ns);
        }
      },
      virtual_time);
}

TEST_F(VirtualTime, ATimerThatNeverFiresDoesNotMoveTheClockTheHubWaitsForRealInstead) {
  HangWatchdog watchdog("a virtual hub with only a never-firing timer");
  weft::run(
      [] {
        const auto start = weft::now();
        bool woke = false;
        auto forever = weft::spawn([&] {
          weft::sleep(std::chrono::hours::max());
          woke = true;
        });
        weft::Event<int> from_thread;
        std::thread sender([&] {
          std::this_thread::sleep_for(20ms);
          from_thread.send(7);
        });
        EXPECT_EQ(from_thread.wait(), 7);
        EXPECT_EQ(weft::now(), start);
        weft::sleep(1h);  // the forever timer stays behind the next one
        EXPECT_EQ(weft::now() - start, 1h);
        EXPECT_FALSE(woke);
        forever.kill();
        sender.join();
      },
      virtual_time);
}

TEST_F(VirtualTime, ConditionVariableWaitUntilAndWaitForTimeOutAtExactInstants) {
  weft::run(
      [] {
        const auto start = weft::now();
        weft::Mutex mutex;
        weft::ConditionVariable changed;
        std::unique_lock lock(mutex);
        EXPECT_EQ(changed.wait_until(lock, start + 10s), std::cv_status::timeout);
        EXPECT_EQ(weft::now(), start + 10s);
        EXPECT_FALSE(changed.wait_for(lock, 5s, [] { return false; }));
        EXPECT_EQ(weft::now(), start + 15s);
        EXPECT_TRUE(lock.owns_lock());
      },
      virtual_time);
}

TEST_F(VirtualTime, ANotifyBeforeTheDeadlineWinsAtItsOwnInstant) {
  weft::run(
      [] {
        const auto start = weft::now();
        weft::Mutex mutex;
        weft::ConditionVariable changed;
        bool ready = false;
        weft::spawn_after(3s, [&] {
          std::lock_guard hold(mutex);
          ready = true;
          changed.notify_one();
        });
        std::unique_lock lock(mutex);
        EXPECT_TRUE(changed.wait_for(lock, 1h, [&] { return ready; }));
        EXPECT_EQ(weft::now() - start, 3s);
      },
      virtual_time);
}

TEST_F(VirtualTime, EventWaitForTimesOutAtExactlyItsDeadlineOrGetsWhatIsSentBefore) {
  weft::run(
      [] {
        const auto start = weft::now();
        weft::Event<int> event;
        EXPECT_EQ(event.wait_for(1s), std::nullopt);
        EXPECT_EQ(weft::now() - start, 1s);
        weft::spawn_after(2s, [&] { event.send(5); });
        EXPECT_EQ(event.wait_for(1h), 5);
        EXPECT_EQ(weft::now() - start, 3s);
      },
      virtual_time);
}

TEST_F(VirtualTime, SemaphoreAcquireForTimesOutAtExactlyItsDeadline) {
  weft::run(
      [] {
        const auto start = weft::now();
        weft::Semaphore semaphore(0);
        EXPECT_FALSE(semaphore.acquire_for(2s));
        EXPECT_EQ(weft::now() - start, 2s);
        weft::spawn_after(30s, [&] { semaphore.release(); });
        EXPECT_TRUE(semaphore.acquire_for(1min));
        EXPECT_EQ(weft::now() - start, 32s);
      },
      virtual_time);
}

TEST_F(VirtualTime, QueueGetForAndPutForTimeOutAtExactInstants) {
  weft::run(
      [] {
        const auto start = weft::now();
        weft::Queue<int> queue(1);
        EXPECT_EQ(queue.get_for(3s), std::nullopt);
        EXPECT_EQ(weft::now() - start, 3s);
        EXPECT_TRUE(queue.put_for(1, 1s));  // room: at once
        EXPECT_EQ(weft::now() - start, 3s);
        EXPECT_FALSE(queue.put_for(2, 4s));  // full
        EXPECT_EQ(weft::now() - start, 7s);
      },
      virtual_time);
}

TEST_F(VirtualTime, ConnectWithATimeoutToAListenerThatNeverAnswersTimesOutAtItsVirtualDeadline) {
  FullListener listener;
  ASSERT_TRUE(listener.full()) << "the kernel completed every handshake: nothing to time out";
  // A clock that waited for real would hang here: the watchdog makes that a failure.
  HangWatchdog watchdog("a virtual-time wait");
  weft::run(
      [&] {
        const auto start = weft::now();
        try {
          weft::TcpStream::connect("127.0.0.1", listener.port(), 1h);
          ADD_FAILURE() << "connected to a full listener";
        } catch (const std::system_error& e) {
          EXPECT_EQ(e.code().value(), ETIMEDOUT) << e.what();
        }
        EXPECT_EQ(weft::now() - start, 1h);
      },
      virtual_time);
}

TEST_F(VirtualTime, PendingIoDoesNotHoldTheClockBackATimeoutAroundAReadFiresAtOnce) {
  // A clock that waited for real would hang here: the watchdog makes that a failure.
  HangWatchdog watchdog("a virtual-time wait");
  weft::run(
      [] {
        auto listener = weft::TcpListener::bind("127.0.0.1", 0);
        auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
        auto server = listener.accept();
        const auto start = weft::now();
        char byte;
        EXPECT_THROW(weft::with_timeout(1h, [&] { return client.read_some(&byte, 1); }),
                     weft::TimeoutError);
        EXPECT_EQ(weft::now() - start, 1h);
        // io itself still works.
        server.write_all("x", 1);
        EXPECT_EQ(client.read_some(&byte, 1), 1u);
        EXPECT_EQ(byte, 'x');
      },
      virtual_time);
}

TEST_F(VirtualTime, APostFromAnotherThreadWakesAVirtualHubThatHasNoTimer) {
  HangWatchdog watchdog("a virtual hub waiting for a post");
  weft::Hub hub(virtual_time);
  const auto start = weft::now();
  std::atomic<bool> ran{false};
  std::thread poster([&] {
    std::this_thread::sleep_for(20ms);
    hub.post([&] { ran = true; });
  });
  hub.run_until([&] { return ran.load(); });
  poster.join();
  EXPECT_EQ(weft::now(), start);
}

TEST_F(VirtualTime, ToThreadDoesNotHoldTheClockBackAndStillCompletes) {
  HangWatchdog watchdog("run_sync on a virtual hub");
  weft::run(
      [] {
        const auto start = weft::now();
        std::atomic<bool> slept{false};
        auto sleeper = weft::spawn([&] {
          weft::sleep(1h);
          slept = true;
        });
        // The work ends only once the sleeper's hour has passed: the clock
        // must jump while this fiber waits for the thread.
        EXPECT_TRUE(weft::to_thread::run_sync([&] { return wait_until_set(slept); }));
        EXPECT_EQ(weft::now() - start, 1h);
        sleeper.wait();
      },
      virtual_time);
}

TEST_F(VirtualTime, EachHubOfARuntimeKeepsItsOwnVirtualClock) {
  HangWatchdog watchdog("a Runtime on virtual time");
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2, .hub = virtual_time});
  runtime.run([&] {
    auto elapsed_after = [](auto duration) {
      const auto start = weft::now();
      weft::sleep(duration);
      return weft::now() - start;
    };
    auto far = runtime.spawn_on(1, elapsed_after, 5s);
    EXPECT_EQ(elapsed_after(1h), 1h);
    EXPECT_EQ(far.wait(), 5s);
    // Both clocks started within moments of each other; hub 0's is now an
    // hour ahead, hub 1's only five seconds.
    const auto hub1_now = runtime.spawn_on(1, [] { return weft::now(); }).wait();
    EXPECT_GT(weft::now() - hub1_now, 1h - 5s - 1min);
    EXPECT_LT(weft::now() - hub1_now, 1h - 5s + 1min);
  });
}

TEST_F(VirtualTime, EmbeddedNextDeadlineIsZeroWhileATimerIsPendingAndRunOnceJumps) {
  // A clock that waited for real would hang here: the watchdog makes that a failure.
  HangWatchdog watchdog("a virtual-time wait");
  weft::Hub hub(virtual_time);
  const auto start = weft::now();  // the hub's clock, on its thread outside fibers
  std::vector<steady_clock::duration> woke;
  hub.spawn([&] {
    weft::sleep(1h);
    woke.push_back(weft::now() - start);
    weft::sleep(2h);
    woke.push_back(weft::now() - start);
  });
  hub.run_once();  // the fiber starts and sleeps
  EXPECT_EQ(woke.size(), 0u);
  EXPECT_EQ(hub.next_deadline(), std::optional(0ns));
  EXPECT_EQ(weft::now(), start);
  hub.run_once(1h);  // a real wait is not waited for: the clock jumps
  EXPECT_EQ(woke, (std::vector<steady_clock::duration>{1h}));
  EXPECT_EQ(hub.next_deadline(), std::optional(0ns));
  hub.run_once();
  EXPECT_EQ(woke, (std::vector<steady_clock::duration>{1h, 3h}));
  EXPECT_EQ(weft::now() - start, 3h);
  EXPECT_EQ(hub.next_deadline(), std::nullopt);
  EXPECT_EQ(hub.live_fibers(), 0u);
}

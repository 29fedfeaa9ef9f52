// Embedding: a Hub driven by an event loop the user already has (a hand-written
// epoll loop, a Boost.Asio io_context) through poll_fd(), next_deadline() and
// run_once(); wake-ups from other threads must reach such a loop.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"
#include "runtime/hub_core.hpp"
#include "thread_state.hpp"

#include <boost/asio.hpp>  // Boost's headers come with libboost-context-dev

using namespace std::chrono_literals;

namespace {

bool readable(int fd, std::chrono::milliseconds within) {
  pollfd watched{fd, POLLIN, 0};
  return ::poll(&watched, 1, static_cast<int>(within.count())) > 0 &&
         (watched.revents & POLLIN) != 0;
}

// How long a round trip may take before the loop gives up: a wake-up that
// never reaches the loop shows as a timeout, not a hang.
constexpr auto give_up_after = 2s;
// A correct round trip wakes the loop a handful of times; a poll_fd that
// stays readable after run_once makes it spin far past this.
constexpr int max_wakeups = 200;

struct LoopReport {
  bool done = false;  // done() became true (false: gave up or spun)
  int wakeups = 0;    // returns from the loop's wait
  int rounds = 0;     // run_once calls
  std::chrono::nanoseconds took{};
};

/// epoll_wait's timeout for a deadline: -1 for none, whole ms rounded up.
int epoll_timeout(std::optional<std::chrono::nanoseconds> deadline) {
  if (!deadline) return -1;
  return static_cast<int>(
      std::min<std::int64_t>((deadline->count() + 999'999) / 1'000'000, INT_MAX));
}

/// The user's loop: epoll on hub.poll_fd(), timeout from next_deadline(),
/// run_once() when the fd is readable or the deadline has passed.
LoopReport drive_with_epoll(weft::Hub& hub, const std::function<bool()>& done) {
  LoopReport report;
  const auto start = std::chrono::steady_clock::now();
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  EXPECT_GE(epoll_fd, 0);
  epoll_event watch{};
  watch.events = EPOLLIN;
  watch.data.fd = hub.poll_fd();
  EXPECT_EQ(::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, hub.poll_fd(), &watch), 0);
  while (!(report.done = done())) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        start + give_up_after - std::chrono::steady_clock::now());
    if (left <= 0ms || report.wakeups >= max_wakeups) break;
    int timeout = epoll_timeout(hub.next_deadline());
    if (timeout < 0 || timeout > left.count()) timeout = static_cast<int>(left.count());
    epoll_event event;
    const int count = ::epoll_wait(epoll_fd, &event, 1, timeout);
    ++report.wakeups;
    const auto deadline = hub.next_deadline();
    if (count > 0 || (deadline && deadline->count() == 0)) {
      hub.run_once();
      ++report.rounds;
    }
  }
  ::close(epoll_fd);
  report.took = std::chrono::steady_clock::now() - start;
  return report;
}

/// The same loop inside an io_context: async_wait on a dup of poll_fd and a
/// steady_timer for next_deadline, both re-armed after every round.
LoopReport drive_with_asio(weft::Hub& hub, const std::function<bool()>& done) {
  namespace asio = boost::asio;
  LoopReport report;
  const auto start = std::chrono::steady_clock::now();
  asio::io_context io;
  asio::posix::stream_descriptor hub_fd(io, ::fcntl(hub.poll_fd(), F_DUPFD_CLOEXEC, 0));
  asio::steady_timer deadline(io);
  asio::steady_timer give_up(io, give_up_after);
  bool fd_wait_armed = false;
  bool stopped = false;

  auto stop = [&] {
    stopped = true;
    hub_fd.cancel();
    deadline.cancel();
    give_up.cancel();
  };
  std::function<void()> arm;
  auto round = [&] {
    if (stopped) return;
    hub.run_once();
    ++report.rounds;
    if ((report.done = done()) || report.rounds >= max_wakeups) {
      stop();
      return;
    }
    arm();
  };
  arm = [&] {
    if (!fd_wait_armed) {
      fd_wait_armed = true;
      hub_fd.async_wait(asio::posix::stream_descriptor::wait_read,
                        [&](const boost::system::error_code& error) {
                          fd_wait_armed = false;
                          ++report.wakeups;
                          if (!error) round();
                        });
    }
    const auto next = hub.next_deadline();
    if (!next) {
      deadline.cancel();
      return;
    }
    deadline.expires_after(*next);
    deadline.async_wait([&](const boost::system::error_code& error) {
      ++report.wakeups;
      if (!error) round();
    });
  };
  give_up.async_wait([&](const boost::system::error_code& error) {
    if (!error) stop();
  });
  if ((report.done = done())) {
    stop();
  } else {
    arm();
  }
  io.run();
  report.took = std::chrono::steady_clock::now() - start;
  return report;
}

enum class WakeBy { event_sent_from_thread, hub_post };

/// The embedding round trip: a fiber spawned from outside sleeps 5 ms, then
/// waits for an Event that a std::thread sends (itself, or through hub.post);
/// `drive` runs the user's loop until the fiber is dead.
template <class Drive>
void round_trip(WakeBy wake_by, Drive drive) {
  const std::size_t fds_before = weft_test::open_fds();
  {
    weft::Event<int> answer;  // outlives the hub: a fiber still waiting on it unwinds first
    weft::Hub hub;
    std::atomic<bool> fiber_slept{false};
    const pid_t loop_thread = weft_test::this_thread_tid();
    auto fiber = hub.spawn([&] {
      weft::sleep(5ms);
      fiber_slept = true;
      return answer.wait() + 1;
    });
    std::thread sender([&] {
      while (!fiber_slept)
        std::this_thread::yield();
      // The loop sleeps only once the round has ended: the fiber is parked in
      // answer.wait().
      weft_test::wait_until_sleeping(loop_thread);
      if (wake_by == WakeBy::event_sent_from_thread) {
        answer.send(41);
      } else {
        hub.post([&] { answer.send(41); });
      }
    });
    const LoopReport report = drive(hub, [&] { return fiber.dead(); });
    sender.join();
    EXPECT_TRUE(report.done) << "the loop gave up after " << report.wakeups << " wake-ups and "
                             << report.rounds << " rounds: the other thread's wake-up never made "
                             << "poll_fd readable, or poll_fd stayed readable (spinning)";
    EXPECT_LT(report.took, 1s);
    EXPECT_LT(report.wakeups, 50) << "the loop spun";
    if (fiber.dead()) {
      EXPECT_EQ(fiber.wait(), 42);
    }
  }
  EXPECT_EQ(weft_test::open_fds(), fds_before) << "an fd leaked";
}

}  // namespace

// --- next_deadline -------------------------------------------------------------

TEST(Embedding, NextDeadlineIsNulloptWhenNothingIsScheduled) {
  weft::Event<> event;
  weft::Hub hub;
  EXPECT_FALSE(hub.next_deadline().has_value());
  hub.run_once();
  EXPECT_FALSE(hub.next_deadline().has_value());
  // A fiber that only waits for another thread schedules nothing either.
  auto waiter = hub.spawn([&] { event.wait(); });
  hub.run_once();
  EXPECT_FALSE(waiter.dead());
  EXPECT_FALSE(hub.next_deadline().has_value());
  event.send();
  hub.run_once();
  EXPECT_TRUE(waiter.dead());
  EXPECT_FALSE(hub.next_deadline().has_value());
}

TEST(Embedding, NextDeadlineIsZeroWhenFibersAreReady) {
  weft::Hub hub;
  hub.spawn([] { weft::sleep(1h); });
  hub.run_once();
  ASSERT_TRUE(hub.next_deadline().has_value());
  EXPECT_GT(*hub.next_deadline(), 59min);
  auto yielder = hub.spawn([] { weft::yield(); });  // ready now, a timer an hour away
  EXPECT_EQ(hub.next_deadline(), 0ns);
  hub.run_once();  // runs up to the yield
  EXPECT_EQ(hub.next_deadline(), 0ns);
  hub.run_once();
  EXPECT_TRUE(yielder.dead());
  EXPECT_GT(*hub.next_deadline(), 59min);
}

TEST(Embedding, NextDeadlineIsTheTimeToTheNearestTimerAndNeverNegative) {
  weft::Hub hub;
  hub.spawn([] { weft::sleep(200ms); });
  hub.spawn([] { weft::sleep(20ms); });
  hub.run_once();
  auto left = hub.next_deadline();
  ASSERT_TRUE(left.has_value());
  EXPECT_GE(*left, 0ns);
  EXPECT_LE(*left, 20ms);
  std::this_thread::sleep_for(25ms);
  EXPECT_EQ(hub.next_deadline(), 0ns);  // overdue: zero, not negative
  hub.run_once();                       // the short sleeper ends; the long one's timer is next
  left = hub.next_deadline();
  ASSERT_TRUE(left.has_value());
  EXPECT_GE(*left, 0ns);
  EXPECT_LE(*left, 200ms - 25ms);
}

// --- poll_fd -------------------------------------------------------------------

TEST(Embedding, PollFdIsNotReadableWhileThereIsNothingToDo) {
  weft::Hub hub;
  hub.spawn([] { weft::sleep(1ms); });
  hub.run_once();
  EXPECT_FALSE(readable(hub.poll_fd(), 0ms));  // timers are next_deadline's business
  hub.run_once(1h);
  EXPECT_FALSE(readable(hub.poll_fd(), 0ms));
}

TEST(Embedding, PollFdBecomesReadableAfterAPostFromAnotherThread) {
  weft::Hub hub;
  hub.run_once();  // the host loop has run a round; now it sleeps on poll_fd
  const pid_t loop_thread = weft_test::this_thread_tid();
  for (int post = 1; post <= 3; ++post) {
    SCOPED_TRACE(testing::Message() << "post #" << post);
    std::atomic<bool> ran{false};
    std::thread poster([&] {
      weft_test::wait_until_sleeping(loop_thread);
      hub.post([&] { ran = true; });
    });
    EXPECT_TRUE(readable(hub.poll_fd(), 1000ms)) << "a host loop waiting on poll_fd sleeps on";
    poster.join();
    EXPECT_EQ(hub.next_deadline(), 0ns);
    hub.run_once();
    EXPECT_TRUE(ran);
    EXPECT_FALSE(readable(hub.poll_fd(), 0ms))
        << "run_once ran the post but left poll_fd readable: a host loop would spin";
  }
}

// Before: a post that came after the hub's first round but before the host
// loop first asked for poll_fd kicked nothing that poll_fd could show (found
// under ThreadSanitizer, whose slowness let the post win the race).
TEST(Embedding, PollFdAskedForAfterAPostAlreadyMadeIsReadable) {
  weft::Hub hub;
  hub.run_once();
  std::atomic<bool> ran{false};
  std::thread([&] { hub.post([&] { ran = true; }); }).join();
  EXPECT_TRUE(readable(hub.poll_fd(), 0ms)) << "a host loop would sleep with a post waiting";
  hub.run_once();
  EXPECT_TRUE(ran);
}

TEST(Embedding, PollFdOfAFreshHubBecomesReadableAfterAPostFromAnotherThread) {
  weft::Hub hub;  // no round run yet: the host loop starts by waiting
  std::atomic<bool> ran{false};
  const pid_t loop_thread = weft_test::this_thread_tid();
  std::thread poster([&] {
    weft_test::wait_until_sleeping(loop_thread);
    hub.post([&] { ran = true; });
  });
  EXPECT_TRUE(readable(hub.poll_fd(), 1000ms)) << "a host loop waiting on poll_fd sleeps on";
  poster.join();
  hub.run_once();
  EXPECT_TRUE(ran);
}

// --- the round trip, from a hand-written epoll loop and from Asio ----------------

// A completion that the kernel posts after a round has collected, but before
// run_once returns, must leave poll_fd readable: the host loop sleeps on it.
// io_uring: the test makes the peer's byte arrive at exactly that point; the
// old order (collect, then clear the eventfd) swallowed its signal.
class EmbeddingIo : public weft_test::FdLeakCheck {};

TEST_F(EmbeddingIo, CompletionArrivingAsTheRoundEndsKeepsPollFdReadable) {
  weft::Hub hub;
  const int poll_fd = hub.poll_fd();
  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(listener.local_port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);

  bool reading = false;
  std::size_t got = 0;
  hub.spawn([&] {
    auto stream = listener.accept();
    char buffer[16];
    reading = true;
    got = stream.read_some(buffer, sizeof buffer);
  });
  for (int round = 0; round < 100 && !reading; ++round)
    hub.run_once();
  ASSERT_TRUE(reading);
  hub.run_once();  // the read is in the kernel now

  bool written = false;
  auto write_byte = [&] {
    written = true;
    ASSERT_EQ(::write(client, "x", 1), 1);
  };
  auto& backend = weft::detail::HubCore::current()->backend();
  backend.set_after_collect_for_test([&] {
    if (!written) write_byte();
  });
  hub.run_once();
  backend.set_after_collect_for_test(nullptr);
  if (!written) write_byte();  // epoll: no such point inside its wait
  EXPECT_TRUE(readable(poll_fd, 1s));
  for (int round = 0; round < 100 && got == 0; ++round)
    hub.run_once();
  EXPECT_EQ(got, 1u);
  ::close(client);
}

TEST(Embedding, SleepingFibersDriveAnEpollLoopWithoutSpinning) {
  weft::Hub hub;
  int naps = 0;
  auto sleeper = hub.spawn([&] {
    for (; naps < 5; ++naps)
      weft::sleep(3ms);
  });
  const LoopReport report = drive_with_epoll(hub, [&] { return sleeper.dead(); });
  EXPECT_TRUE(report.done);
  EXPECT_EQ(naps, 5);
  EXPECT_GE(report.took, 15ms);
  EXPECT_LT(report.wakeups, 20);  // about one per nap; never a busy wait
}

TEST(Embedding, EpollLoopRoundTripWithAnEventSentFromAThread) {
  round_trip(WakeBy::event_sent_from_thread, drive_with_epoll);
}

TEST(Embedding, EpollLoopRoundTripWithAHubPost) {
  round_trip(WakeBy::hub_post, drive_with_epoll);
}

// I/O completions must reach the host loop too: a fiber accepts and reads
// while a plain thread connects and writes.
TEST(Embedding, EpollLoopRoundTripOverTcp) {
  const std::size_t fds_before = weft_test::open_fds();
  {
    weft::Hub hub;
    std::atomic<int> port{0};
    std::atomic<bool> accepted{false};
    const pid_t loop_thread = weft_test::this_thread_tid();
    auto server = hub.spawn([&] {
      auto listener = weft::TcpListener::bind("127.0.0.1", 0);
      port = listener.local_port();
      auto stream = listener.accept();
      accepted = true;
      char text[16] = {};
      const std::size_t got = stream.read_some(text, sizeof text);
      return std::string(text, got);
    });
    std::thread client([&] {
      while (port == 0)
        std::this_thread::yield();
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<std::uint16_t>(port.load()));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
        // The loop sleeps again once the accept has completed and the read
        // waits: the bytes then arrive through poll_fd.
        while (!accepted)
          std::this_thread::yield();
        weft_test::wait_until_sleeping(loop_thread);
        [[maybe_unused]] ssize_t sent = ::write(fd, "ping", 4);
      }
      ::close(fd);
    });
    const LoopReport report = drive_with_epoll(hub, [&] { return server.dead(); });
    client.join();
    EXPECT_TRUE(report.done) << "the loop gave up after " << report.wakeups << " wake-ups and "
                             << report.rounds << " rounds: an I/O completion never made "
                             << "poll_fd readable";
    EXPECT_LT(report.wakeups, 50) << "the loop spun";
    if (server.dead()) {
      EXPECT_EQ(server.wait(), "ping");
    }
  }
  EXPECT_EQ(weft_test::open_fds(), fds_before) << "an fd leaked";
}

TEST(Embedding, SleepingFibersDriveAnAsioIoContext) {
  weft::Hub hub;
  int naps = 0;
  auto sleeper = hub.spawn([&] {
    for (; naps < 5; ++naps)
      weft::sleep(3ms);
  });
  const LoopReport report = drive_with_asio(hub, [&] { return sleeper.dead(); });
  EXPECT_TRUE(report.done);
  EXPECT_EQ(naps, 5);
  EXPECT_GE(report.took, 15ms);
  EXPECT_LT(report.rounds, 20);
}

TEST(Embedding, AsioRoundTripWithAnEventSentFromAThread) {
  round_trip(WakeBy::event_sent_from_thread, drive_with_asio);
}

TEST(Embedding, AsioRoundTripWithAHubPost) {
  round_trip(WakeBy::hub_post, drive_with_asio);
}

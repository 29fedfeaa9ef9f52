// Embedding weft in an event loop you already have: here a plain epoll loop
// owns the thread and watches a timerfd of its own. weft's hub rides along:
// the loop watches hub.poll_fd(), sleeps no longer than hub.next_deadline(),
// and calls hub.run_once() when either says the hub has work. The fibers
// sleep, yield, wait for each other, and are woken from another std::thread
// (an Event sent from that thread, and a closure it posts with hub.post).
// Prints what happens and ends in well under a second; it doubles as a test
// (`meson test example_embed_epoll`), so it gives up with exit status 1 if the
// hub stops making progress or makes the loop spin.

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

const auto program_start = std::chrono::steady_clock::now();

void say(const char* who, const std::string& what) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - program_start);
  std::printf("%4lld ms  %-9s %s\n", static_cast<long long>(ms.count()), who, what.c_str());
  std::fflush(stdout);
}

int check(int rc, const char* what) {
  if (rc < 0) throw std::system_error(errno, std::generic_category(), what);
  return rc;
}

/// epoll_wait's timeout for the hub's next deadline: -1 (block) when nothing
/// is scheduled, else whole milliseconds rounded up, so the loop never wakes
/// before a timer is due and never spins on a sub-millisecond remainder. Only
/// a deadline of zero (fibers ready, a timer due) gives 0.
int epoll_timeout(std::optional<std::chrono::nanoseconds> deadline) {
  if (!deadline) return -1;
  const std::int64_t ms = (deadline->count() + 999'999) / 1'000'000;
  return static_cast<int>(std::min<std::int64_t>(ms, INT_MAX));
}

// Sanity bounds for running as a test: a correct run takes ~70 ms and a few
// dozen wake-ups.
constexpr auto give_up_after = 1500ms;
constexpr int max_wakeups = 1000;

}  // namespace

int main() {
  // Declared before the hub: a fiber still waiting on one when the hub dies
  // unwinds out of its wait.
  weft::Event<std::string> greeting;  // sent by the worker thread itself
  weft::Event<> go;                   // sent by a closure the worker posts to the hub
  weft::Hub hub;  // this thread's hub, driven by the loop below instead of weft::run
  say("loop", "hub on the " + std::string(hub.backend_name()) + " backend");

  // The user's loop and its own fd: a timer that ticks three times.
  const int epoll_fd = check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
  const int tick_fd =
      check(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), "timerfd_create");
  const itimerspec every_10ms{{0, 10'000'000}, {0, 10'000'000}};
  check(::timerfd_settime(tick_fd, 0, &every_10ms, nullptr), "timerfd_settime");
  for (int fd : {tick_fd, hub.poll_fd()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    check(::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event), "epoll_ctl(ADD)");
  }

  // Fibers, spawned from outside any fiber; they start at the hub's next round.
  auto sleeper = hub.spawn(weft::SpawnOptions{.name = "sleeper"}, [] {
    for (int nap = 1; nap <= 3; ++nap) {
      weft::sleep(15ms);
      say("sleeper", "woke from nap " + std::to_string(nap));
    }
    return 3;
  });
  auto bouncer = [](const char* name) {
    return [name] {
      for (int step = 1; step <= 3; ++step) {
        say(name, "step " + std::to_string(step) + ", then yield");
        weft::yield();
      }
    };
  };
  auto ping = hub.spawn(bouncer("ping"));
  auto pong = hub.spawn(bouncer("pong"));
  auto listener = hub.spawn(weft::SpawnOptions{.name = "listener"}, [&] {
    say("listener", "waits for the worker thread's Event");
    const std::string text = greeting.wait();
    say("listener", "got \"" + text + "\"");
    go.wait();
    say("listener", "released by the posted closure");
    return text.size();
  });
  auto joiner = hub.spawn(weft::SpawnOptions{.name = "joiner"}, [&] {
    const int naps = sleeper.wait();
    ping.wait();
    pong.wait();
    say("joiner", "sleeper took " + std::to_string(naps) + " naps; ping and pong are done");
    const std::size_t length = listener.wait();
    say("joiner", "listener returned " + std::to_string(length) + "; everyone is done");
  });

  std::thread worker([&] {
    std::this_thread::sleep_for(60ms);
    say("worker", "sends the Event from its own thread");
    greeting.send(std::string("hello from a std::thread"));
    std::this_thread::sleep_for(10ms);
    say("worker", "posts a closure to the hub");
    hub.post([&] {
      say("loop", "the posted closure runs on the loop's thread, outside any fiber");
      go.send();
    });
  });

  const auto give_up_at = std::chrono::steady_clock::now() + give_up_after;
  int wakeups = 0, rounds = 0, ticks = 0;
  const char* failure = nullptr;
  while (!joiner.dead()) {
    int timeout = epoll_timeout(hub.next_deadline());
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(give_up_at - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      failure = "gave up: the hub stopped making progress (a wake-up from the worker was lost?)";
      break;
    }
    if (timeout < 0 || timeout > left.count()) timeout = static_cast<int>(left.count());

    epoll_event events[4];
    const int count = ::epoll_wait(epoll_fd, events, 4, timeout);
    if (count < 0 && errno != EINTR) check(count, "epoll_wait");
    if (++wakeups > max_wakeups) {
      failure = "gave up: the loop spun (poll_fd stayed readable after run_once?)";
      break;
    }
    bool hub_readable = false;
    for (int i = 0; i < count; ++i) {
      if (events[i].data.fd == hub.poll_fd()) {
        hub_readable = true;
      } else if (std::uint64_t expirations; ::read(tick_fd, &expirations, sizeof expirations) > 0) {
        say("loop", "the loop's own timerfd ticks (" + std::to_string(++ticks) + ")");
        if (ticks == 3) {
          const itimerspec disarm{};
          check(::timerfd_settime(tick_fd, 0, &disarm, nullptr), "timerfd_settime");
        }
      }
    }
    const auto deadline = hub.next_deadline();
    if (hub_readable || (deadline && deadline->count() == 0)) {
      hub.run_once();
      ++rounds;
    }
  }
  worker.join();
  ::close(tick_fd);
  ::close(epoll_fd);
  say("loop",
      std::to_string(wakeups) + " wake-ups of the loop, " + std::to_string(rounds) + " hub rounds");
  if (failure) {
    std::fprintf(stderr, "embed_epoll: %s\n%s", failure, weft::dump_fibers().c_str());
    return 1;
  }
  say("loop", "done; the hub is destroyed on the way out");
  return 0;
}

// Embedding weft in a Boost.Asio io_context: the io_context owns the thread
// and runs a timer of its own; weft's hub rides along through HubDriver, which
// waits for (a dup of) hub.poll_fd() to be readable and for a steady_timer set
// to hub.next_deadline(), calls hub.run_once() when either fires, and re-arms
// both after each round. The fibers sleep, yield, wait for each other, and are
// woken from another std::thread (an Event sent from that thread, and a closure
// it posts with hub.post). Prints what happens and ends in well under a
// second; it doubles as a test (`meson test example_embed_asio`), so it gives
// up with exit status 1 if the hub stops making progress or makes the loop spin.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

const auto program_start = std::chrono::steady_clock::now();

void say(const char* who, const std::string& what) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - program_start);
  std::printf("%4lld ms  %-9s %s\n", static_cast<long long>(ms.count()), who, what.c_str());
  std::fflush(stdout);
}

/// Drives a weft::Hub from an io_context, on the hub's thread. The descriptor
/// it watches is a dup of the hub's poll_fd, so closing it (which Asio does
/// when the driver goes) leaves the hub's own fd alone.
class HubDriver {
 public:
  HubDriver(asio::io_context& io, weft::Hub& hub)
      : hub_(hub), hub_fd_(io, duplicate(hub.poll_fd())), deadline_(io) {}

  /// Arms the waits; from then on every round is followed by `after_round`.
  void start(std::function<void()> after_round) {
    after_round_ = std::move(after_round);
    arm();
  }
  /// Cancels the waits, so the io_context can run out of work.
  void stop() {
    stopped_ = true;
    hub_fd_.cancel();
    deadline_.cancel();
  }
  int rounds() const { return rounds_; }

 private:
  static int duplicate(int fd) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) throw std::system_error(errno, std::generic_category(), "dup(hub.poll_fd())");
    return copy;
  }

  void round() {
    if (stopped_) return;
    hub_.run_once();
    ++rounds_;
    if (after_round_) after_round_();
    arm();
  }

  void arm() {
    if (stopped_) return;
    if (!fd_wait_armed_) {
      fd_wait_armed_ = true;
      hub_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& error) {
                           fd_wait_armed_ = false;
                           if (!error) round();
                         });
    }
    // Setting the expiry cancels the previous wait (its handler sees
    // operation_aborted); nullopt means no timer at all.
    const auto next = hub_.next_deadline();
    if (!next) {
      deadline_.cancel();
      return;
    }
    deadline_.expires_after(*next);
    deadline_.async_wait([this](const boost::system::error_code& error) {
      if (!error) round();
    });
  }

  weft::Hub& hub_;
  asio::posix::stream_descriptor hub_fd_;
  asio::steady_timer deadline_;
  std::function<void()> after_round_;
  bool fd_wait_armed_ = false;
  bool stopped_ = false;
  int rounds_ = 0;
};

// Sanity bounds for running as a test: a correct run takes ~70 ms and a few
// dozen rounds.
constexpr auto give_up_after = 1500ms;
constexpr int max_rounds = 1000;

}  // namespace

int main() {
  asio::io_context io;
  // Declared before the hub: a fiber still waiting on one when the hub dies
  // unwinds out of its wait.
  weft::Event<std::string> greeting;  // sent by the worker thread itself
  weft::Event<> go;                   // sent by a closure the worker posts to the hub
  weft::Hub hub;  // this thread's hub, driven by the io_context instead of weft::run
  say("asio", "hub on the " + std::string(hub.backend_name()) + " backend");

  // Fibers, spawned from outside any fiber; they start at the hub's first round.
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

  // The io_context's own work: a timer that ticks three times, and a give-up timer.
  asio::steady_timer tick(io);
  int ticks = 0;
  std::function<void()> tick_again = [&] {
    tick.expires_after(10ms);
    tick.async_wait([&](const boost::system::error_code& error) {
      if (error) return;
      say("asio", "the io_context's own timer ticks (" + std::to_string(++ticks) + ")");
      if (ticks < 3) tick_again();
    });
  };
  tick_again();

  HubDriver driver(io, hub);
  asio::steady_timer give_up(io, give_up_after);
  const char* failure = nullptr;
  auto fail = [&](const char* why) {
    failure = why;
    driver.stop();
    tick.cancel();
  };
  give_up.async_wait([&](const boost::system::error_code& error) {
    if (!error)
      fail("gave up: the hub stopped making progress (a wake-up from the worker was lost?)");
  });
  driver.start([&] {
    if (joiner.dead()) {
      driver.stop();
      give_up.cancel();
    } else if (driver.rounds() > max_rounds) {
      give_up.cancel();
      fail("gave up: the loop spun (poll_fd stayed readable after run_once?)");
    }
  });

  std::thread worker([&] {
    std::this_thread::sleep_for(60ms);
    say("worker", "sends the Event from its own thread");
    greeting.send(std::string("hello from a std::thread"));
    std::this_thread::sleep_for(10ms);
    say("worker", "posts a closure to the hub");
    hub.post([&] {
      say("asio", "the posted closure runs on the io_context's thread, outside any fiber");
      go.send();
    });
  });

  io.run();  // returns once the driver, the ticks and the give-up timer are done
  worker.join();
  say("asio",
      "io_context ran out of work after " + std::to_string(driver.rounds()) + " hub rounds");
  if (failure) {
    std::fprintf(stderr, "embed_asio: %s\n%s", failure, weft::dump_fibers().c_str());
    return 1;
  }
  say("asio", "done; the driver closes its dup of poll_fd, then the hub goes");
  return 0;
}

// Looping calls, retry and thread groups (oslo.service's loopingcall and
// threadgroup): a heartbeat on a fixed schedule, a poller that picks its own
// delays, a reconnect that backs off while it fails, a flaky call retried, and
// a service's workers and timers stopped together. Prints what happens and
// ends in well under a second.

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// Milliseconds since `origin`, on the hub's clock.
long long ms_since(std::chrono::steady_clock::time_point origin) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(weft::now() - origin).count();
}

void heartbeat() {
  std::puts("FixedIntervalLoopingCall: a beat every 50 ms, stopped after 180 ms");
  const auto origin = weft::now();
  weft::FixedIntervalLoopingCall beat(
      [&] { std::printf("  beat at %lld ms\n", ms_since(origin)); });
  beat.start(50ms);
  weft::sleep(180ms);
  beat.stop();  // ends the wait for the next beat at once
  std::printf("  wait() after stop(): %s\n", beat.wait() ? "true" : "false");
}

void poller() {
  std::puts("DynamicLoopingCall: the function says when to call it next");
  const auto origin = weft::now();
  int jobs_left = 3;
  weft::DynamicLoopingCall<int> poll([&]() -> std::optional<std::chrono::duration<double>> {
    std::printf("  poll at %lld ms: jobs left: %d\n", ms_since(origin), jobs_left);
    if (jobs_left == 0) throw weft::LoopingCallDone{42};  // ends the loop; wait() returns 42
    --jobs_left;
    return jobs_left > 1 ? 10ms : 40ms;
  });
  poll.start();
  std::printf("  wait(): %d\n", poll.wait());
}

void reconnect() {
  std::puts("BackOffLoopingCall: retry a connection, doubling the pause while it fails");
  const auto origin = weft::now();
  int attempts = 0;
  weft::BackOffLoopingCall connect([&] {
    const bool up = ++attempts == 4;
    std::printf("  attempt %d at %lld ms: %s\n", attempts, ms_since(origin), up ? "up" : "refused");
    if (up) throw weft::LoopingCallDone{};
    return false;
  });
  connect.start({.starting_interval = 10ms, .timeout = 1s});
  connect.wait();
}

void flaky_call() {
  std::puts("retry: a call that fails twice, retried after 10 ms and then 20 ms");
  int calls = 0;
  const int answer = weft::retry<std::runtime_error>(
      {.max_retry_count = 5, .inc_sleep_time = 10ms, .max_sleep_time = 100ms}, [&] {
        if (++calls < 3) throw std::runtime_error("busy");
        return 7 * 6;
      });
  std::printf("  %d after %d calls\n", answer, calls);
}

void service() {
  std::puts("ThreadGroup: two workers and a timer, stopped together");
  const auto origin = weft::now();
  weft::ThreadGroup group(2);  // at most two workers alive at once
  for (int worker = 1; worker <= 2; ++worker) {
    group.add_thread([&, worker] {
      for (;;) {  // until stop() kills it
        weft::sleep(30ms);
        std::printf("  worker %d at %lld ms\n", worker, ms_since(origin));
      }
    });
  }
  group.add_timer(40ms, [&] { std::printf("  timer at %lld ms\n", ms_since(origin)); });
  weft::sleep(100ms);
  group.stop();  // stops the timer, kills the workers and waits for them
  std::printf("  after stop(): %zu threads, %zu timers\n", group.thread_count(),
              group.timer_count());
}

}  // namespace

int main() {
  weft::run([] {
    heartbeat();
    poller();
    reconnect();
    flaky_call();
    service();
  });
}

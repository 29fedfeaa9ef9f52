// timer_compare: the shared harness's timer workloads (/work/shared/peers: go_bench,
// tokio_bench, timer_asio -bench=timer_fire|timer_cancel), written against weft's public
// API and printed in the harness's line format, so run_all.sh can put them in one table:
//
//   timer_fire    n fibers each sleep a pseudo-random duration in [0, 100 ms) (splitmix64
//                 from seed 42, as every peer) and note when they woke. ms_total = first
//                 spawn -> last wake-up; lateness = wake-up - (clock before the sleep + d);
//                 first_round_ms = first fiber's first run -> last fiber's first run.
//                 One unprinted warm-up round first (stacks pooled, as the peers' memory is).
//   timer_cancel  n times: a deadline 10 s away is set and cancelled before it fires.
//                 variant=timeout: a weft::Timeout scope entered and left (the deadline a
//                 fiber's own code sets); variant=spawn_after_cancel: spawn_after(10 s, f)
//                 then cancel() (Go's AfterFunc + Stop: a callback that never runs);
//                 variant=timeout_among_pending: the Timeout scope while 100k sleepers'
//                 timers are pending, due in [1 s, 101 s) (a server's idle connections):
//                 the heap is deep, and a 10 s deadline lands among them (it rarely
//                 moves, and it is cancelled while still last);
//                 variant=timeout_ahead_of_pending: the same with a 100 ms deadline (a
//                 request's, shorter than every idle connection's): it rises to the top
//                 of the heap, and cancelling it refills the top from the bottom.
//                 One unprinted warm-up of n/10 first.
//
//   timer_compare [--bench=timer_fire|timer_cancel|all] [--n=N] [--reps=R]
//
// Defaults: timer_fire n = 100k, timer_cancel n = 1M, 3 rounds each.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"
#include "compare_measure.hpp"

namespace {

using namespace weft_bench;
using namespace std::chrono_literals;

constexpr std::uint64_t kFireN = 100'000;
constexpr std::uint64_t kCancelN = 1'000'000;
constexpr std::uint64_t kPendingTimers = 100'000;

// The peers' durations: splitmix64 from seed 42, ns = next % 100e6.
std::vector<std::int64_t> timer_durations_ns(std::uint64_t n) {
  std::vector<std::int64_t> durations(n);
  std::uint64_t x = 42;
  for (auto& d : durations) {
    x += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    d = static_cast<std::int64_t>(z % 100'000'000);
  }
  return durations;
}

double percentile(std::vector<std::int64_t> values, double p) {
  if (values.empty()) return 0;
  const std::size_t k = std::min(values.size() - 1, static_cast<std::size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return static_cast<double>(values[k]);
}

void timer_fire(std::uint64_t n, int reps) {
  const std::vector<std::int64_t> durations = timer_durations_ns(n);
  const long base_rss_kb = proc_status_kb("VmRSS");
  std::vector<std::int64_t> late(n);
  std::vector<std::uint64_t> woke(n);
  std::vector<std::uint64_t> start(n);  // when each fiber first ran
  weft::run([&] {
    for (int rep = -1; rep < reps; ++rep) {
      std::uint64_t ended = 0;
      weft::Event<> all_woke;
      const std::uint64_t t0 = now_ns();
      for (std::uint64_t i = 0; i < n; ++i) {
        weft::spawn_n([&, i] {
          const std::uint64_t before = now_ns();
          start[i] = before;
          weft::sleep(std::chrono::nanoseconds(durations[i]));
          woke[i] = now_ns();
          late[i] = static_cast<std::int64_t>(woke[i] - before) - durations[i];
          if (++ended == n) all_woke.send();
        });
      }
      all_woke.wait();
      if (rep < 0) continue;
      const std::uint64_t last = *std::max_element(woke.begin(), woke.end());
      // Under FIFO a sleeper woken while the first round still starts fibers runs
      // after that round: its length bounds the lateness of the earliest deadlines.
      const auto [first_start, last_start] = std::minmax_element(start.begin(), start.end());
      const double first_round_ms = static_cast<double>(*last_start - *first_start) / 1e6;
      double sum = 0;
      for (std::int64_t l : late)
        sum += static_cast<double>(l);
      const std::int64_t earliest = *std::min_element(late.begin(), late.end());
      if (earliest < 0)
        die(format("timer_fire: a sleep ended %lld ns early", -(long long)earliest));
      std::printf(
          "peer=weft bench=timer_fire variant=sleep threads=1 n=%llu ms_total=%.1f "
          "mean_late_us=%.1f p99_late_us=%.1f max_late_us=%.1f first_round_ms=%.1f "
          "peak_rss_kb=%ld base_rss_kb=%ld\n",
          static_cast<unsigned long long>(n), static_cast<double>(last - t0) / 1e6,
          sum / static_cast<double>(n) / 1e3, percentile(late, 0.99) / 1e3,
          percentile(late, 1.0) / 1e3, first_round_ms, proc_status_kb("VmHWM"), base_rss_kb);
      std::fflush(stdout);
    }
  });
}

template <class SetAndCancel>
void timer_cancel_variant(const char* variant, std::uint64_t n, int reps, SetAndCancel&& once) {
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t iterations = rep < 0 ? n / 10 : n;
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < iterations; ++i)
      once();
    const std::uint64_t elapsed = now_ns() - t0;
    if (rep < 0) continue;
    std::printf("peer=weft bench=timer_cancel variant=%s threads=1 n=%llu ns_per_timer=%.1f\n",
                variant, static_cast<unsigned long long>(iterations),
                static_cast<double>(elapsed) / static_cast<double>(iterations));
    std::fflush(stdout);
  }
}

template <std::int64_t Milliseconds>
void enter_and_leave_a_timeout() {
  weft::Timeout deadline{std::chrono::milliseconds(Milliseconds)};
  asm volatile("" ::: "memory");  // the scope is entered and left, not optimised away
}

void timer_cancel(std::uint64_t n, int reps) {
  weft::run([&] {
    timer_cancel_variant("timeout", n, reps, enter_and_leave_a_timeout<10'000>);
    {
      std::vector<weft::GreenThread<void>> sleepers;
      for (std::int64_t d : timer_durations_ns(kPendingTimers))
        sleepers.push_back(
            weft::spawn([d] { weft::sleep(1s + 10 * std::chrono::nanoseconds(d)); }));
      weft::yield();  // every sleeper's timer is armed
      timer_cancel_variant("timeout_among_pending", n, reps, enter_and_leave_a_timeout<10'000>);
      timer_cancel_variant("timeout_ahead_of_pending", n, reps, enter_and_leave_a_timeout<100>);
      for (auto& sleeper : sleepers)
        sleeper.kill();
    }
    timer_cancel_variant("spawn_after_cancel", n, reps, [] {
      auto never = weft::spawn_after(10s, [] { die("timer_cancel: a cancelled timer fired"); });
      never.cancel();
    });
  });
}

struct Options {
  std::string bench = "all";
  std::optional<std::uint64_t> n;
  int reps = 3;
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto [key, value] = split_argument(arg);
    if (key == "--bench" && (value == "timer_fire" || value == "timer_cancel" || value == "all")) {
      options.bench = value;
    } else if (key == "--n") {
      options.n = parse_count("n", value);
    } else if (key == "--reps") {
      options.reps = static_cast<int>(parse_count("reps", value));
    } else {
      die(format("unknown argument '%s' (see the comment at the top of timer_compare.cpp)",
                 argv[i]));
    }
  }
  if (options.n && options.bench == "all") die("--n needs a single --bench");
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("timer_compare");
  const Options options = parse_options(argc, argv);
  if (options.bench != "timer_cancel") timer_fire(options.n.value_or(kFireN), options.reps);
  if (options.bench != "timer_fire") timer_cancel(options.n.value_or(kCancelN), options.reps);
  return 0;
}

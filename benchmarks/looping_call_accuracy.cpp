// How closely a FixedIntervalLoopingCall keeps to its schedule on real time:
// a 10 ms call for 5 s, and then, in the same run, an oslo-style loop that
// sleeps `interval - run time` after each call (oslo also rounds that to
// 10 ms; this one does not, which only flatters it). For each: the mean and
// p99 lateness of a call (how long after the time its loop asked to be woken
// it started) and the drift of the last call from start + k·interval.
//
// Each wake-up is a little late in both. oslo's loop counts its next sleep
// from that late start, so the latenesses add up; weft's schedule is
// absolute, so its last call is as late as any one call: within 1 ms, or
// this exits with status 1. Only a wake-up later than a whole interval (the
// machine stalled) moves weft's schedule: the call then due follows at once
// and the schedule restarts from there, as a callback that overran would.
// Those restarts are counted, and then the drift includes their shifts.
// On the epoll backend every wake-up is up to 1 ms later still (epoll_wait
// takes whole milliseconds, rounded up, so that no timer fires early), and
// the last call may then miss the 1 ms bound; io_uring waits in nanoseconds.
//   looping_call_accuracy [seconds = 5] [interval_ms = 10]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::duration<double, std::milli>;

struct Figures {
  double mean_late_ms;
  double p99_late_ms;
  double drift_ms;
  int restarts;
};

Figures summarise(std::vector<Millis> lateness, Millis drift, int restarts) {
  double sum = 0;
  for (Millis late : lateness)
    sum += late.count();
  std::sort(lateness.begin(), lateness.end());
  const std::size_t p99 = std::min(lateness.size() - 1, lateness.size() * 99 / 100);
  return {sum / static_cast<double>(lateness.size()), lateness[p99].count(), drift.count(),
          restarts};
}

Figures weft_fixed_interval(Clock::duration interval, std::size_t calls) {
  std::vector<Clock::time_point> starts;
  starts.reserve(calls);
  const Clock::time_point origin = weft::now();
  weft::FixedIntervalLoopingCall loop([&] {
    starts.push_back(weft::now());
    if (starts.size() == calls) throw weft::LoopingCallDone{};
  });
  loop.start(interval);
  loop.wait();
  // The loop's own due times: one interval after the last, unless that call
  // (which ends right after it records its start) ended past it.
  std::vector<Millis> lateness;
  int restarts = 0;
  Clock::time_point due = origin;
  for (std::size_t k = 0; k < starts.size(); ++k) {
    lateness.push_back(starts[k] - due);
    due += interval;
    if (starts[k] > due) {
      due = starts[k];
      ++restarts;
    }
  }
  return summarise(
      lateness, starts.back() - (origin + static_cast<Clock::rep>(calls - 1) * interval), restarts);
}

Figures oslo_style(Clock::duration interval, std::size_t calls) {
  std::vector<Clock::time_point> starts;
  starts.reserve(calls);
  const Clock::time_point origin = weft::now();
  for (std::size_t k = 0; k < calls; ++k) {
    const Clock::time_point began = weft::now();
    starts.push_back(began);
    weft::sleep(interval - (weft::now() - began));
  }
  std::vector<Millis> lateness{Millis(starts.front() - origin)};
  for (std::size_t k = 1; k < starts.size(); ++k)
    lateness.push_back(starts[k] - (starts[k - 1] + interval));  // due one interval after the last
  return summarise(lateness,
                   starts.back() - (origin + static_cast<Clock::rep>(calls - 1) * interval), 0);
}

void print(const char* name, const Figures& f) {
  std::printf("%-34s %10.3f ms %10.3f ms %12.3f ms\n", name, f.mean_late_ms, f.p99_late_ms,
              f.drift_ms);
}

void print_restarts(const Figures& f) {
  if (f.restarts == 0) return;
  std::printf(
      "note: weft's schedule restarted %d time(s) after a wake-up later than one interval (the "
      "machine stalled); its drift includes those shifts\n",
      f.restarts);
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("looping_call_accuracy");
  const double seconds = argc > 1 ? std::atof(argv[1]) : 5;
  const double interval_ms = argc > 2 ? std::atof(argv[2]) : 10;
  if (seconds <= 0 || interval_ms <= 0) {
    std::fprintf(stderr, "usage: looping_call_accuracy [seconds = 5] [interval_ms = 10]\n");
    return 2;
  }
  const auto interval = std::chrono::duration_cast<Clock::duration>(Millis(interval_ms));
  const auto calls = static_cast<std::size_t>(seconds * 1000 / interval_ms);

  return weft::run([&] {
    std::printf("looping_call_accuracy: %zu calls every %.3g ms on real time (%s backend)\n", calls,
                interval_ms, weft::backend_name().c_str());
    const Figures weft_figures = weft_fixed_interval(interval, calls);
    const Figures oslo_figures = oslo_style(interval, calls);
    std::printf("%-34s %13s %13s %15s\n", "", "lateness mean", "lateness p99", "drift of last");
    print("weft FixedIntervalLoopingCall", weft_figures);
    print("oslo-style sleep(interval - run)", oslo_figures);
    std::printf("drift ratio (oslo-style / weft): %.1f\n",
                oslo_figures.drift_ms / std::max(weft_figures.drift_ms, 1e-6));
    print_restarts(weft_figures);
    if (weft_figures.drift_ms > 1.0 && weft_figures.restarts == 0) {
      std::printf("FAIL: weft's last call drifted %.3f ms (more than 1 ms)\n",
                  weft_figures.drift_ms);
      return 1;
    }
    return 0;
  });
}

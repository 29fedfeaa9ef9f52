// park_wake: n fibers start and each parks on one weft::Event; then the Event is sent
// and all of them wake and end. The workload of the shared harness's Go peer
// (/work/shared/peers/go/bench/main.go, parkWake: goroutines that block on one channel
// that is then closed), measured the same way and printed in its line format:
//
//   peer=weft bench=park_wake variant=event threads=1 n=200000 park_ms=... wake_ms=...
//       rss_kb=... ns_per_park=... ns_per_wake=... peak_rss_kb=...
//
//   park_wake [--n=N] [--reps=R] [--in-process]
//
//   (default)      n = 200k, then 1M (or just --n), each in R fresh processes (default
//                  3), interleaved; prints every line, then the medians
//   --in-process   one measurement in this process (what the harness's EXTRA_CMDS runs)
//
// A fresh process per measurement, because the figure is a cold one: like the Go peer,
// the first touch of n stacks and control blocks is part of what is measured, and a
// second round in the same process would find them pooled.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"
#include "compare_measure.hpp"
#include "compare_report.hpp"

namespace {

using namespace weft_bench;

// As runtime_compare: weft's default stack size, set explicitly.
constexpr std::size_t kWeftStack = 64 * 1024;
constexpr std::uint64_t kSizes[] = {200'000, 1'000'000};

// Both phases end as the Go peer's do, on the last fiber's signal (its WaitGroups),
// not on a yield(), so neither phase is charged a round the Go peer does not make.
//
// Park phase (park_ms): from before the first spawn until the main fiber runs again
// after the last fiber has parked: n spawns, the first run of every fiber (stack bound
// and first touched), each one's wait() on the gate, and the main fiber's own wake-up.
//
// Wake-and-end phase (wake_ms): from just before send() until the main fiber runs
// again after the last fiber ended: send() readying the n waiters, each fiber resuming
// from wait() and returning, its end (stack back to the pool, its state released: no
// handle holds it, as no handle holds a goroutine), and the main fiber's wake-up.
//
// rss_kb is VmRSS between the phases (where the Go peer reads it); peak_rss_kb is
// VmHWM at the end.
void park_wake(std::uint64_t n) {
  weft::run(
      [n] {
        weft::Event<> gate;
        weft::Event<> all_parked;
        weft::Event<> all_ended;
        std::uint64_t parked = 0;
        std::uint64_t ended = 0;
        auto body = [&] {
          // send() never suspends: this fiber parks right after it, before the main
          // fiber runs again.
          if (++parked == n) all_parked.send();
          gate.wait();
          if (++ended == n) all_ended.send();
        };

        const std::uint64_t t0 = now_ns();
        for (std::uint64_t i = 0; i < n; ++i) {
          weft::spawn_n(body);
        }
        all_parked.wait();
        const std::uint64_t t1 = now_ns();
        const long rss_kb = proc_status_kb("VmRSS");

        const std::uint64_t t2 = now_ns();
        gate.send();
        all_ended.wait();
        const std::uint64_t t3 = now_ns();

        const double park_ns = static_cast<double>(t1 - t0);
        const double wake_ns = static_cast<double>(t3 - t2);
        std::printf(
            "peer=weft bench=park_wake variant=event threads=1 n=%llu park_ms=%.1f "
            "wake_ms=%.1f rss_kb=%ld ns_per_park=%.0f ns_per_wake=%.0f peak_rss_kb=%ld\n",
            static_cast<unsigned long long>(n), park_ns / 1e6, wake_ns / 1e6, rss_kb,
            park_ns / static_cast<double>(n), wake_ns / static_cast<double>(n),
            proc_status_kb("VmHWM"));
      },
      weft::RunOptions{.default_stack_size = kWeftStack});
}

struct Options {
  std::optional<std::uint64_t> n;
  int reps = 3;
  bool in_process = false;
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto [key, value] = split_argument(arg);
    if (key == "--n") {
      options.n = parse_count("n", value);
    } else if (key == "--reps") {
      options.reps = static_cast<int>(parse_count("reps", value));
    } else if (arg == "--in-process") {
      options.in_process = true;
    } else {
      die(format("unknown argument '%s' (see the comment at the top of park_wake.cpp)", argv[i]));
    }
  }
  if (options.in_process && !options.n) die("--in-process needs --n");
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("park_wake");
  const Options options = parse_options(argc, argv);
  if (options.in_process) {
    park_wake(*options.n);
    return 0;
  }

  std::vector<std::uint64_t> sizes(std::begin(kSizes), std::end(kSizes));
  if (options.n) sizes = {*options.n};
  std::vector<Report> reports(sizes.size());
  bool all_ok = true;
  // Interleaved like run_all.sh: a slow spell of the machine hits every size alike.
  for (int rep = 0; rep < options.reps; ++rep) {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::string size = format("--n=%llu", static_cast<unsigned long long>(sizes[i]));
      all_ok = run_child({size, "--in-process"}, reports[i]) && all_ok;
    }
  }

  std::printf("\n# park_wake: medians of %d fresh processes (lower is better)\n", options.reps);
  std::printf("# %9s %10s %10s %12s %12s %12s\n", "n", "park_ms", "wake_ms", "ns_per_park",
              "ns_per_wake", "peak_rss_MiB");
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const auto median = [&](std::string_view key) {
      return reports[i].median_of("park_wake", "weft", key).value_or(-1);
    };
    std::printf("# %9llu %10.1f %10.1f %12.0f %12.0f %12.0f\n",
                static_cast<unsigned long long>(sizes[i]), median("park_ms"), median("wake_ms"),
                median("ns_per_park"), median("ns_per_wake"), median("peak_rss_kb") / 1024);
  }
  return all_ok ? 0 : 1;
}

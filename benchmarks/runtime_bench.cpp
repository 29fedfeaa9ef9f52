// Google Benchmark micro benchmarks of weft's scheduler: yield ping-pong,
// spawn+join and a small skynet. runtime_compare.cpp puts the same workloads
// next to Boost.Context and Boost.Fiber at the shared harness's sizes.
//
// Each benchmark runs its timed loop inside a weft fiber (weft::run), so the
// hub is set up and torn down outside the timing.

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"

namespace {

// One iteration: the benchmark's fiber yields to a partner that yields back,
// i.e. two context switches.
void BM_YieldPingPong(benchmark::State& state) {
  weft::run([&state] {
    bool stop = false;
    auto partner = weft::spawn([&stop] {
      while (!stop)
        weft::yield();
    });
    for (auto _ : state)
      weft::yield();
    stop = true;
    partner.wait();
  });
  state.counters["time_per_switch"] =
      benchmark::Counter(2.0 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_YieldPingPong);

// One iteration: spawn a batch of fibers that do nothing, then wait for each.
void BM_SpawnJoin(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  weft::run([&state, batch] {
    std::vector<weft::GreenThread<void>> fibers;
    fibers.reserve(batch);
    for (auto _ : state) {
      for (std::size_t i = 0; i < batch; ++i)
        fibers.push_back(weft::spawn([] {}));
      for (const auto& fiber : fibers)
        fiber.wait();
      fibers.clear();
    }
  });
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SpawnJoin)->Arg(100)->Arg(10'000);

constexpr std::uint64_t kFanOut = 10;

std::uint64_t skynet(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t sub = size / kFanOut;
  std::array<weft::GreenThread<std::uint64_t>, kFanOut> children;
  for (std::uint64_t i = 0; i < kFanOut; ++i)
    children[i] = weft::spawn(skynet, num + i * sub, sub);
  std::uint64_t sum = 0;
  for (const auto& child : children)
    sum += child.wait();
  return sum;
}

// One iteration: a whole skynet tree (range(0) leaves, fan-out 10). 100k leaves
// keep an iteration short; runtime_compare runs the full 1M-leaf tree.
void BM_Skynet(benchmark::State& state) {
  const auto leaves = static_cast<std::uint64_t>(state.range(0));
  weft::run([&state, leaves] {
    for (auto _ : state) {
      const std::uint64_t sum = weft::spawn(skynet, std::uint64_t{0}, leaves).wait();
      if (sum != leaves * (leaves - 1) / 2) state.SkipWithError("skynet: wrong sum");
    }
  });
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Skynet)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("runtime_bench");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

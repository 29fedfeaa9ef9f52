// How long shutdown_managed_threads takes with many live managed threads:
// `count` of each kind (ContinuousThread, PausableThread running,
// PeriodicThread every 10 ms, OperationThread with a long queue), whose
// targets each take about 1 ms (a sleep, so that hundreds of threads fit on
// a few cores). shutdown asks every thread first and then waits for each, so
// it should return within about one iteration of each target, not the sum
// of them: it prints its time beside the mean iteration time measured in the
// same run, as "within N iterations".
//   managed_thread_shutdown [count = 100]

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::duration<double, std::milli>;

// Every target's iterations, for the mean iteration time.
std::atomic<std::int64_t> iteration_ns{0};
std::atomic<std::int64_t> iterations{0};

void one_iteration() {
  const auto began = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  iteration_ns +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - began).count();
  ++iterations;
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("managed_thread_shutdown");
  const int count = argc > 1 ? std::atoi(argv[1]) : 100;
  if (count <= 0) {
    std::fprintf(stderr, "usage: managed_thread_shutdown [count > 0]\n");
    return 2;
  }

  std::vector<std::unique_ptr<weft::ManagedThread>> threads;
  std::vector<weft::OperationThread<int>*> operations;
  for (int i = 0; i < count; ++i) {
    threads.push_back(std::make_unique<weft::ContinuousThread>(one_iteration));
    threads.push_back(std::make_unique<weft::PausableThread>(one_iteration));
    threads.push_back(
        std::make_unique<weft::PeriodicThread>(std::chrono::milliseconds(10), one_iteration));
    auto operation = std::make_unique<weft::OperationThread<int>>([](int) { one_iteration(); });
    operations.push_back(operation.get());
    threads.push_back(std::move(operation));
  }
  for (auto& thread : threads)
    thread->start();
  for (auto* operation : operations) {
    for (int item = 0; item < 10000; ++item)
      operation->add_data(item);
  }
  // Let every kind settle into its loop before the shutdown.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  const std::int64_t ns_before = iteration_ns.load();
  const std::int64_t iterations_before = iterations.load();
  const auto began = Clock::now();
  weft::shutdown_managed_threads(std::nullopt);
  const Millis took = Clock::now() - began;

  std::size_t still_alive = 0;
  for (auto& thread : threads)
    still_alive += thread->is_alive() ? 1 : 0;
  const double mean_iteration_ms =
      iterations_before == 0 ? 0.0 : static_cast<double>(ns_before) / 1e6 / iterations_before;
  std::size_t queued = 0;
  for (auto* operation : operations)
    queued += operation->queue_size();

  std::printf("managed threads: %d of each kind (%zu), each iteration about 1 ms\n", count,
              threads.size());
  std::printf("mean iteration            %8.3f ms (%lld iterations before the shutdown)\n",
              mean_iteration_ms, static_cast<long long>(iterations_before));
  std::printf("shutdown_managed_threads  %8.3f ms: within %.2f iterations\n", took.count(),
              mean_iteration_ms > 0 ? took.count() / mean_iteration_ms : 0.0);
  std::printf("still alive after it: %zu; items left queued: %zu\n", still_alive, queued);
  return still_alive == 0 ? 0 : 1;
}

// How long shutdown_managed_threads takes with many live managed threads:
// `count` of each kind (ContinuousThread, PausableThread running,
// PeriodicThread every 10 ms, OperationThread with a long queue), whose
// targets each take about 1 ms (a sleep, so that hundreds of threads fit on
// a few cores). shutdown asks every thread first and then waits for each, so
// it should return within about one iteration of each target, not the sum
// of them: it prints its time beside the mean iteration time measured in the
// same run, as "within N iterations", and the most iterations any one target
// began once its own thread had been asked to stop (0: each ended within the
// iteration it was in). Beside it: the calling thread's CPU
// time in the shutdown (what the shutdown itself costs; the rest is waiting
// for hundreds of threads to be scheduled, run their last iteration and
// exit), the load average, and a floor measured the same way: as many plain
// std::threads doing the same 1 ms iterations, ended by a flag and joined.
//   managed_thread_shutdown [count = 100]

#include <stdlib.h>
#include <time.h>

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

// Iterations a target began once its own thread had been asked to stop
// (is_alive() false): the most any one thread began. 0 means each ended
// within the iteration it was in when asked.
std::atomic<bool> shutting_down{false};
std::atomic<int> most_begun_after_asked{0};
thread_local int begun_after_asked = 0;

void one_iteration(const weft::ManagedThread* self) {
  if (shutting_down.load(std::memory_order_relaxed) && self && !self->is_alive()) {
    const int begun = ++begun_after_asked;
    int most = most_begun_after_asked.load();
    while (begun > most && !most_begun_after_asked.compare_exchange_weak(most, begun)) {
    }
  }
  const auto began = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  iteration_ns +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - began).count();
  ++iterations;
}

double thread_cpu_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) / 1e6;
}

// The floor: `count` plain threads in the same loop, a flag, and joins.
Millis plain_threads_end_and_join(int count) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto began = Clock::now();
  stop = true;
  for (auto& thread : threads)
    thread.join();
  return Clock::now() - began;
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
  // Each target knows its own thread (set before any starts).
  std::vector<std::atomic<const weft::ManagedThread*>> selves(4 * static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    auto* self = &selves[threads.size()];
    threads.push_back(std::make_unique<weft::ContinuousThread>([self] { one_iteration(*self); }));
    *self = threads.back().get();
    self = &selves[threads.size()];
    threads.push_back(std::make_unique<weft::PausableThread>([self] { one_iteration(*self); }));
    *self = threads.back().get();
    self = &selves[threads.size()];
    threads.push_back(std::make_unique<weft::PeriodicThread>(std::chrono::milliseconds(10),
                                                             [self] { one_iteration(*self); }));
    *self = threads.back().get();
    self = &selves[threads.size()];
    auto operation =
        std::make_unique<weft::OperationThread<int>>([self](int) { one_iteration(*self); });
    operations.push_back(operation.get());
    threads.push_back(std::move(operation));
    *self = threads.back().get();
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
  const double cpu_before = thread_cpu_ms();
  const auto began = Clock::now();
  shutting_down = true;
  weft::shutdown_managed_threads(std::nullopt);
  const Millis took = Clock::now() - began;
  const double cpu_ms = thread_cpu_ms() - cpu_before;

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
  std::printf("  of which CPU time of the calling thread: %.3f ms\n", cpu_ms);
  std::printf("  iterations any one target began once its thread was asked to stop: at most %d\n",
              most_begun_after_asked.load());
  std::printf("still alive after it: %zu; items left queued: %zu\n", still_alive, queued);
  threads.clear();
  const Millis floor = plain_threads_end_and_join(static_cast<int>(4 * count));
  std::printf("floor: %d plain threads (1 ms sleeps) ended by a flag and joined: %.3f ms\n",
              4 * count, floor.count());
  double load[1] = {0};
  if (::getloadavg(load, 1) == 1) std::printf("load average (1 min): %.2f\n", load[0]);
  return still_alive == 0 ? 0 : 1;
}

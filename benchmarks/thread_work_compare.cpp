// Destroyable work and thread steps beside what a program would write
// without weft, in the same run:
//
//  1. DestroyableThread start() → get_or_throw() of a trivial function, from a
//     plain thread and from a fiber, beside creating and joining a std::thread
//     per call. weft reuses a cached worker and the hub it keeps, so a call
//     costs two hand-offs instead of a clone() and an exit; the target is at
//     least 2x faster. Also 64 started together and then all waited for (a
//     service's shape: the cache holds many workers at once).
//  2. ThreadStep event latency: the step stamps the time and emits; the
//     reader's next() returns on a fiber (and on a plain thread). Beside it, a
//     hand-written condition-variable hand-off between two threads. Both
//     sides wait asleep before each event (the step for a go from the reader),
//     so each event is a cross-thread wake-up of a sleeping waiter. Target:
//     p50 and p99 within 1.5x of the hand-off, and never a tick (20 ms) late.
//
// Median of several rounds, weft and the baseline alternating.
//   thread_work_compare [calls = 2000] [events = 2000] [rounds = 5]

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Micros = std::chrono::duration<double, std::micro>;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto at = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[at];
}

// --- 1. start → result ---------------------------------------------------------

double destroyable_per_call_us(int calls) {
  const auto start = Clock::now();
  long sum = 0;
  for (int i = 0; i < calls; ++i) {
    weft::DestroyableThread work([i] { return i; });
    work.start();
    sum += work.get_or_throw();
  }
  const Micros took = Clock::now() - start;
  if (sum < 0) std::abort();
  return took.count() / calls;
}

double destroyable_from_fiber_per_call_us(int calls) {
  return weft::run([calls] { return destroyable_per_call_us(calls); });
}

double std_thread_per_call_us(int calls) {
  const auto start = Clock::now();
  long sum = 0;
  for (int i = 0; i < calls; ++i) {
    int result = 0;
    std::thread thread([&result, i] { result = i; });
    thread.join();
    sum += result;
  }
  const Micros took = Clock::now() - start;
  if (sum < 0) std::abort();
  return took.count() / calls;
}

// The shape of a service: `batch` pieces of work started together, then all
// waited for (each a worker of its own, so the cache grows and is reused).
double destroyable_batch_per_call_us(int calls, int batch) {
  const auto start = Clock::now();
  long sum = 0;
  for (int done = 0; done < calls; done += batch) {
    std::vector<std::unique_ptr<weft::DestroyableThread<int>>> works;
    for (int i = 0; i < batch; ++i) {
      works.push_back(std::make_unique<weft::DestroyableThread<int>>([i] { return i; }));
      works.back()->start();
    }
    for (auto& work : works)
      sum += work->get_or_throw();
  }
  const Micros took = Clock::now() - start;
  if (sum < 0) std::abort();
  return took.count() / calls;
}

double std_thread_batch_per_call_us(int calls, int batch) {
  const auto start = Clock::now();
  long sum = 0;
  for (int done = 0; done < calls; done += batch) {
    std::vector<int> results(static_cast<std::size_t>(batch));
    std::vector<std::thread> threads;
    for (int i = 0; i < batch; ++i)
      threads.emplace_back([&results, i] { results[i] = i; });
    for (auto& thread : threads)
      thread.join();
    for (int r : results)
      sum += r;
  }
  const Micros took = Clock::now() - start;
  if (sum < 0) std::abort();
  return took.count() / calls;
}

// --- 2. event latency ------------------------------------------------------------

// Latencies (µs) of `events` values from a ThreadStep to a reader on a fiber
// (or, with `on_fiber` false, on this plain thread).
std::vector<double> thread_step_latencies(int events, bool on_fiber) {
  auto measure = [events] {
    weft::Semaphore go(0);
    std::vector<double> latencies;
    latencies.reserve(static_cast<std::size_t>(events));
    weft::ThreadStep<Clock::time_point> step(
        [&go, events](weft::StepEmitter<Clock::time_point>& emit) {
          for (int i = 0; i < events; ++i) {
            go.acquire();
            emit(Clock::now());
          }
        });
    for (bool done = false; !done;) {
      auto event = step.next();
      if (std::holds_alternative<weft::StepStart>(event)) {
        go.release();
      } else if (auto* sent = std::get_if<Clock::time_point>(&event)) {
        latencies.push_back(Micros(Clock::now() - *sent).count());
        if (latencies.size() < static_cast<std::size_t>(events)) go.release();
      } else if (std::holds_alternative<weft::StepDone>(event)) {
        done = true;
      }
    }
    return latencies;
  };
  if (on_fiber) return weft::run(measure);
  return measure();
}

// The same hand-off written with a mutex and two condition variables.
std::vector<double> condition_variable_latencies(int events) {
  std::mutex mutex;
  std::condition_variable to_reader, to_writer;
  std::deque<Clock::time_point> queue;
  int go = 0;
  std::thread writer([&] {
    for (int i = 0; i < events; ++i) {
      std::unique_lock lock(mutex);
      to_writer.wait(lock, [&] { return go > 0; });
      --go;
      queue.push_back(Clock::now());
      lock.unlock();
      to_reader.notify_one();
    }
  });
  std::vector<double> latencies;
  latencies.reserve(static_cast<std::size_t>(events));
  for (int i = 0; i < events; ++i) {
    std::unique_lock lock(mutex);
    ++go;
    to_writer.notify_one();
    to_reader.wait(lock, [&] { return !queue.empty(); });
    latencies.push_back(Micros(Clock::now() - queue.front()).count());
    queue.pop_front();
  }
  writer.join();
  return latencies;
}

struct Latency {
  double p50;
  double p99;
  double max;
};

Latency summarise(const std::vector<double>& latencies) {
  return {percentile(latencies, 0.5), percentile(latencies, 0.99),
          *std::max_element(latencies.begin(), latencies.end())};
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("thread_work_compare");
  const int calls = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int events = argc > 2 ? std::atoi(argv[2]) : 2000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;

  std::vector<double> weft_plain, weft_fiber, threads;
  for (int r = 0; r < rounds; ++r) {
    weft_plain.push_back(destroyable_per_call_us(calls));
    threads.push_back(std_thread_per_call_us(calls));
    weft_fiber.push_back(destroyable_from_fiber_per_call_us(calls));
  }
  std::printf(
      "DestroyableThread start -> get_or_throw (trivial function), %d calls, median of %d\n", calls,
      rounds);
  std::printf("  weft, from a plain thread   %8.2f us/call\n", median(weft_plain));
  std::printf("  weft, from a fiber          %8.2f us/call\n", median(weft_fiber));
  std::printf("  std::thread create + join   %8.2f us/call\n", median(threads));
  std::printf("  speed-up over std::thread: %.2fx (plain thread), %.2fx (fiber); target >= 2x\n",
              median(threads) / median(weft_plain), median(threads) / median(weft_fiber));

  constexpr int batch = 64;
  std::vector<double> weft_batch, threads_batch;
  for (int r = 0; r < rounds; ++r) {
    weft_batch.push_back(destroyable_batch_per_call_us(calls, batch));
    threads_batch.push_back(std_thread_batch_per_call_us(calls, batch));
  }
  std::printf("  %d started together, then all waited for:\n", batch);
  std::printf("    weft %8.2f us/call, std::thread %8.2f us/call: %.2fx\n", median(weft_batch),
              median(threads_batch), median(threads_batch) / median(weft_batch));

  std::vector<double> fiber_p50, fiber_p99, plain_p50, plain_p99, cv_p50, cv_p99;
  double worst = 0;
  for (int r = 0; r < rounds; ++r) {
    const Latency fiber = summarise(thread_step_latencies(events, true));
    const Latency cv = summarise(condition_variable_latencies(events));
    const Latency plain = summarise(thread_step_latencies(events, false));
    fiber_p50.push_back(fiber.p50);
    fiber_p99.push_back(fiber.p99);
    plain_p50.push_back(plain.p50);
    plain_p99.push_back(plain.p99);
    cv_p50.push_back(cv.p50);
    cv_p99.push_back(cv.p99);
    worst = std::max({worst, fiber.max, plain.max});
  }
  std::printf("\nThreadStep event latency (emit -> next() returns), %d events, median of %d\n",
              events, rounds);
  std::printf("  %-34s %9s %9s\n", "", "p50 us", "p99 us");
  std::printf("  %-34s %9.2f %9.2f\n", "weft, next() on a fiber", median(fiber_p50),
              median(fiber_p99));
  std::printf("  %-34s %9.2f %9.2f\n", "weft, next() on a plain thread", median(plain_p50),
              median(plain_p99));
  std::printf("  %-34s %9.2f %9.2f\n", "condition-variable hand-off", median(cv_p50),
              median(cv_p99));
  std::printf("  fiber / hand-off: p50 %.2fx, p99 %.2fx; target <= 1.5x\n",
              median(fiber_p50) / median(cv_p50), median(fiber_p99) / median(cv_p99));
  std::printf("  plain / hand-off: p50 %.2fx, p99 %.2fx\n", median(plain_p50) / median(cv_p50),
              median(plain_p99) / median(cv_p99));
  std::printf("  slowest weft event of all rounds: %.2f us (a tick is 20000 us)\n", worst);
  return 0;
}

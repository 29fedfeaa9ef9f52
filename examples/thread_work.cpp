// Work on threads that the caller can destroy or watch step by step
// (caikit's DestroyableThread, spine-engine's thread executor): a job
// destroyed halfway, a job's result, a step's events read one tick at a time,
// and an executor that runs many steps, retries a flaky one and sums up.
// Prints what happens and ends in well under a second.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <variant>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

void destroyable_threads() {
  std::puts("DestroyableThread: a result, then a job destroyed while it sleeps");
  weft::DestroyableThread sum(
      [](int n) {
        long total = 0;
        for (int i = 1; i <= n; ++i)
          total += i;
        return total;
      },
      1000);
  sum.start();
  std::printf("  sum.get_or_throw() = %ld\n", sum.get_or_throw());

  weft::Event<> finished;
  weft::DestroyableThread training(weft::DestroyableOptions{.completion_event = &finished}, [] {
    for (int epoch = 0;; ++epoch)
      weft::sleep(10ms);  // each sleep is a suspension point
  });
  training.start();
  weft::sleep(25ms);
  training.destroy();  // ThreadDestroyedError at its next suspension point
  training.join();
  std::printf("  destroyed=%d canceled=%d ran=%d threw=%d, completion event sent=%d\n",
              training.destroyed(), training.canceled(), training.ran(), training.threw(),
              finished.ready());
  try {
    training.get_or_throw();
  } catch (const weft::ThreadDestroyedError& e) {
    std::printf("  get_or_throw(): %.40s...\n", e.what());
  }
}

void thread_step() {
  std::puts("ThreadStep: events as they come, StepIdle after a quiet tick");
  weft::ThreadStep<std::string> step(
      [](weft::StepEmitter<std::string>& emit) {
        emit("loaded");
        weft::sleep(30ms);  // quiet for more than a tick
        emit("trained");
      },
      weft::ThreadStepOptions{.tick = 20ms});
  while (!step.finished()) {
    const weft::StepEvent<std::string> event = step.next();
    if (std::holds_alternative<weft::StepIdle>(event)) {
      std::puts("  (idle tick)");
    } else if (auto* start = std::get_if<weft::StepStart>(&event)) {
      std::printf("  started on thread %d\n", start->pid);
    } else if (auto* value = std::get_if<std::string>(&event)) {
      std::printf("  value: %s\n", value->c_str());
    } else if (std::holds_alternative<weft::StepDone>(event)) {
      std::puts("  done");
    }
  }
}

void step_executor() {
  std::puts("StepExecutor: 5 steps, at most 2 at once, a flaky one retried, a broken one reported");
  weft::StepExecutor<int> executor({.max_concurrent = 2, .retries = 1});
  for (int k = 0; k < 3; ++k) {
    executor.add_thread_step("square" + std::to_string(k),
                             [k](weft::StepEmitter<int>& emit) { emit(k * k); });
  }
  auto tries = std::make_shared<std::atomic<int>>(0);
  executor.add_thread_step("flaky", [tries](weft::StepEmitter<int>&) {
    if (++*tries == 1) throw std::runtime_error("first try fails");
  });
  executor.add_thread_step(
      "broken", [](weft::StepEmitter<int>&) { throw std::invalid_argument("bad input"); });
  const weft::StepSummary summary = executor.run([](const std::string& step, std::size_t attempt,
                                                    const weft::StepEvent<int>& event) {
    if (auto* value = std::get_if<int>(&event))
      std::printf("  %s (attempt %zu): %d\n", step.c_str(), attempt, *value);
    if (auto* error = std::get_if<weft::StepSystemError>(&event))
      std::printf("  %s (attempt %zu) failed: %s\n", step.c_str(), attempt, error->message.c_str());
  });
  std::printf("  %zu succeeded; %s\n", summary.succeeded.size(), summary.describe().c_str());
}

}  // namespace

int main() {
  weft::run([] {
    destroyable_threads();
    thread_step();
    step_executor();
  });
}

// Work in child processes: a result from each start method, a child that
// throws, a step whose events are read as they come, an executor that runs
// child steps, a resizer fed items and a counter driven by commands (a
// CommandProcess). Prints what happens and exits 0; a few hundred ms.

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <variant>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// Entries: what a spawned or forkserver child can run, found by name.
inline const weft::ProcessEntry<long(int)> sum_to{"example.sum_to", [](int n) {
                                                    long total = 0;
                                                    for (int i = 1; i <= n; ++i)
                                                      total += i;
                                                    return total;
                                                  }};
inline const weft::ProcessEntry<int()> refuses{
    "example.refuses", []() -> int { throw std::invalid_argument("no input file"); }};
inline const weft::ProcessEntry<void(weft::StepEmitter<std::string>&, int)> count_to{
    "example.count_to", [](weft::StepEmitter<std::string>& emit, int n) {
      for (int i = 1; i <= n; ++i)
        emit("counted " + std::to_string(i));
    }};
inline const weft::ProcessEntry<void(std::string)> resize{
    "example.resize",
    [](std::string name) { std::printf("    child resized %s\n", name.c_str()); }};

struct Counter {
  int total = 0;
  void add(int n) { total += n; }
  void print() const { std::printf("    child's counter: %d\n", total); }
};
inline const weft::Command<&Counter::add> add{"add"};
inline const weft::Command<&Counter::print> print{"print"};

void results_and_errors() {
  std::puts("DestroyableProcess: sum_to(1000) by each start method, then a child that throws");
  for (auto method :
       {weft::StartMethod::fork, weft::StartMethod::spawn, weft::StartMethod::forkserver}) {
    weft::DestroyableProcess work(method, sum_to, 1000);
    work.start();
    std::printf("  %-10s pid %d -> %ld\n", weft::to_string(method), static_cast<int>(work.pid()),
                work.get_or_throw());
  }
  weft::DestroyableProcess failing(weft::StartMethod::forkserver, refuses);
  failing.start();
  try {
    failing.get_or_throw();
  } catch (const weft::ChildError& e) {
    std::printf("  the child threw %s: %s\n", e.type_name().c_str(), e.what());
  }
}

void a_step() {
  std::puts("ChildProcessStep: its events as they come");
  weft::ChildProcessStep<std::string> step(weft::StartMethod::forkserver, {}, count_to, 2);
  while (!step.finished()) {
    const auto event = step.next();
    if (const auto* start = std::get_if<weft::StepStart>(&event)) {
      std::printf("  started: pid %d\n", static_cast<int>(start->pid));
    } else if (const auto* value = std::get_if<std::string>(&event)) {
      std::printf("  value: %s\n", value->c_str());
    } else if (std::holds_alternative<weft::StepDone>(event)) {
      std::puts("  done");
    }
  }
}

void an_executor() {
  std::puts("StepExecutor: three child steps (counting to 1, 2, 3), at most one child per core");
  weft::StepExecutor<std::string> executor;
  for (int k = 1; k <= 3; ++k)
    executor.add_child_process_step("count-" + std::to_string(k), weft::StartMethod::spawn, {},
                                    count_to, k);
  int values = 0;
  const weft::StepSummary summary = executor.run(
      [&values](const std::string&, std::size_t, const weft::StepEvent<std::string>& e) {
        values += std::holds_alternative<std::string>(e) ? 1 : 0;
      });
  std::printf("  %zu steps succeeded, %d values%s\n", summary.succeeded.size(), values,
              summary.ok() ? "" : (": " + summary.describe()).c_str());
}

void managed_processes() {
  std::puts("OperationProcess: items run in order in one child");
  weft::OperationProcess<std::string> resizer(weft::StartMethod::forkserver, resize);
  for (const char* name : {"a.png", "b.png", "c.png"})
    resizer.add_data(name);
  resizer.join();  // runs everything added before it, then ends
  std::puts("CommandProcess: an object in a child, driven by commands");
  weft::CommandProcess<Counter> counter(weft::StartMethod::spawn);
  counter.send_cmd(add, 2);
  counter.send_cmd("add", 3);
  counter.send_cmd(print);
  counter.join();
}

}  // namespace

int main(int argc, char** argv) {
  weft::process_main(argc, argv);            // in a child: runs what it was started for, and exits
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // children print too: keep the lines in order
  results_and_errors();
  a_step();
  an_executor();
  managed_processes();
  return 0;
}

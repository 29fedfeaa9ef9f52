// weft's child-process steps beside dagster's multiprocess executor written
// in Python (benchmarks/step_python.py, run with python3 when there is one),
// per start method, in one run:
//  1. Event latency: a ChildProcessStep emits `events` values, each the
//     CLOCK_MONOTONIC time (ns) at which it was emitted, and this thread's
//     next() records its receive time minus that; p50 and p99. Python: a
//     multiprocessing.Process puts time.monotonic_ns() on a Queue, read with
//     get(timeout=0.02) (the same clock).
//  2. Throughput: `steps` trivial steps (each emits one value) through one
//     StepExecutor with its default options (at most one child per core), in
//     steps per second. Python: at most os.cpu_count() children at once, each
//     read with get(timeout=0.02) per pass of the executor's loop (dagster's
//     TICK). Target: weft at least 10x Python's steps per second for the same
//     start method.
// Medians of several rounds.
//   step_compare [events = 2000] [steps = 1000] [rounds = 3] [python steps = 30]

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;
using Value = std::int64_t;  // a CLOCK_MONOTONIC time in ns, as Python's time.monotonic_ns()
using Emit = weft::StepEmitter<Value>;
using Step = weft::ChildProcessStep<Value>;

struct Method {
  const char* name;
  weft::StartMethod method;
};
// Every method is measured, weft's and Python's: a method is one line here.
constexpr Method methods[] = {
    {"fork", weft::StartMethod::fork},
    {"spawn", weft::StartMethod::spawn},
    {"forkserver", weft::StartMethod::forkserver},
};

struct Settings {
  int events = 2000;
  int steps = 1000;
  int rounds = 3;
  int python_steps = 30;
};

Value monotonic_ns() {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return Value{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

// Values emitted back to back would pile up in the pipe and be read in
// batches, so their latency would be the backlog's. 200 µs apart, each finds
// the parent asleep in next(), as the values of a step that works between
// them do. A plain nanosleep, not weft::sleep, so that the child paces itself
// as Python's time.sleep does, whatever weft does in the child.
void stamped_values(Emit& emit, int events) {
  const timespec pace{0, 200'000};
  for (int i = 0; i < events; ++i) {
    ::nanosleep(&pace, nullptr);
    emit(monotonic_ns());
  }
}

void one_value(Emit& emit) {
  emit(1);
}

inline const weft::ProcessEntry<void(Emit&, int)> stamped_values_entry{"bench.stamped_values",
                                                                       stamped_values};
inline const weft::ProcessEntry<void(Emit&)> one_value_entry{"bench.one_value", one_value};

// --- 1. event latency -------------------------------------------------------------

// Latencies (µs) of `events` paced values from a child step to this thread.
std::vector<double> step_latencies_us(weft::StartMethod method, int events) {
  // fork runs the function itself; any other method its entry (a child that
  // is not a fork of this process cannot run a plain callable).
  Step step = method == weft::StartMethod::fork
                  ? Step(method, weft::ChildProcessStepOptions{}, stamped_values, events)
                  : Step(method, weft::ChildProcessStepOptions{}, stamped_values_entry, events);
  std::vector<double> latencies;
  latencies.reserve(static_cast<std::size_t>(events));
  while (!step.finished()) {
    const weft::StepEvent<Value> event = step.next();
    const Value received = monotonic_ns();
    if (const auto* sent = std::get_if<Value>(&event))
      latencies.push_back(static_cast<double>(received - *sent) / 1e3);
  }
  if (latencies.size() != static_cast<std::size_t>(events)) std::abort();
  return latencies;
}

// --- 2. throughput -------------------------------------------------------------------

double executor_steps_per_s(weft::StartMethod method, int steps) {
  weft::StepExecutor<Value> executor;
  for (int i = 0; i < steps; ++i) {
    const std::string name = "step-" + std::to_string(i);
    if (method == weft::StartMethod::fork) {
      executor.add_child_process_step(name, method, one_value);
    } else {
      executor.add_child_process_step(name, method, one_value_entry);
    }
  }
  int values = 0;
  const auto began = Clock::now();
  const weft::StepSummary summary =
      executor.run([&values](const std::string&, std::size_t, const weft::StepEvent<Value>& event) {
        values += std::holds_alternative<Value>(event) ? 1 : 0;
      });
  const Seconds took = Clock::now() - began;
  if (!summary.ok() || values != steps) {
    std::fprintf(stderr, "step_compare: %s\n", summary.describe().c_str());
    std::exit(1);
  }
  return steps / took.count();
}

// --- the run ---------------------------------------------------------------------------

struct Figures {
  std::vector<double> p50_us, p99_us, steps_per_s;
};

// One round of both figures.
void measure_round(weft::StartMethod method, const Settings& settings, Figures& figures) {
  const std::vector<double> latencies = step_latencies_us(method, settings.events);
  figures.p50_us.push_back(percentile(latencies, 0.5));
  figures.p99_us.push_back(percentile(latencies, 0.99));
  figures.steps_per_s.push_back(executor_steps_per_s(method, settings.steps));
}

// Python's figures by "<figure> <method>" (step_python.py's lines); empty without python3.
std::map<std::string, double> python_figures(const std::string& script, const Settings& settings) {
  std::map<std::string, double> figures;
  const std::string command = "python3 " + script + " " + std::to_string(settings.events) + " " +
                              std::to_string(settings.python_steps) + " " +
                              std::to_string(settings.rounds);
  FILE* output = ::popen(command.c_str(), "r");
  if (!output) return figures;
  char figure[32];
  char method[32];
  double value;
  while (std::fscanf(output, "%31s %31s %lf", figure, method, &value) == 3)
    figures[std::string(figure) + " " + method] = value;
  ::pclose(output);
  return figures;
}

// step_python.py's name for one of its figures.
std::string python_key(const char* figure, const Method& method) {
  return std::string(figure) + " " + method.name;
}

void print_row(const std::string& label, const std::vector<double>& values) {
  std::printf("  %-32s", label.c_str());
  for (double value : values)
    std::printf(" %9.1f", value);
  std::printf("\n");
}

void print_latencies(const Settings& settings, const std::vector<Figures>& weft,
                     const std::map<std::string, double>& python) {
  std::printf(
      "step event latency, receive - emit time in us: %d values 200 us apart\n"
      "(python: a Process puts on a Queue, read with get(timeout=0.02); "
      "median of %d rounds)\n",
      settings.events, settings.rounds);
  std::printf("  %-32s %9s %9s\n", "", "p50", "p99");
  for (std::size_t i = 0; i < std::size(methods); ++i) {
    print_row(std::string("weft ") + methods[i].name,
              {median(weft[i].p50_us), median(weft[i].p99_us)});
  }
  for (const Method& method : methods) {
    const std::string p50 = python_key("latency_p50_us", method);
    const std::string p99 = python_key("latency_p99_us", method);
    if (python.contains(p50) && python.contains(p99))
      print_row(std::string("python ") + method.name, {python.at(p50), python.at(p99)});
  }
  for (std::size_t i = 0; i < std::size(methods); ++i) {
    const std::string p50 = python_key("latency_p50_us", methods[i]);
    const std::string p99 = python_key("latency_p99_us", methods[i]);
    if (!python.contains(p50) || !python.contains(p99)) continue;
    std::printf("  python %s / weft %s: p50 %.2fx, p99 %.2fx (above 1: weft's is lower)\n",
                methods[i].name, methods[i].name, python.at(p50) / median(weft[i].p50_us),
                python.at(p99) / median(weft[i].p99_us));
  }
}

void print_throughput(const Settings& settings, const std::vector<Figures>& weft,
                      const std::map<std::string, double>& python) {
  std::printf(
      "trivial steps per second, at most %u children at once: weft %d steps through one\n"
      "StepExecutor; python %d steps in dagster's executor loop (median of %d rounds)\n",
      std::thread::hardware_concurrency(), settings.steps, settings.python_steps, settings.rounds);
  for (std::size_t i = 0; i < std::size(methods); ++i) {
    print_row(std::string("weft ") + methods[i].name, {median(weft[i].steps_per_s)});
  }
  for (const Method& method : methods) {
    const std::string key = python_key("steps_per_s", method);
    if (python.contains(key)) print_row(std::string("python ") + method.name, {python.at(key)});
  }
  if (!python.empty() && settings.python_steps < settings.steps) {
    std::printf("  (python runs %d steps, not %d, to keep the run short: its steps are slow)\n",
                settings.python_steps, settings.steps);
  }
  for (std::size_t i = 0; i < std::size(methods); ++i) {
    const std::string key = python_key("steps_per_s", methods[i]);
    if (!python.contains(key)) continue;
    std::printf("  weft %s / python %s: %.1fx (target >= 10x)\n", methods[i].name, methods[i].name,
                median(weft[i].steps_per_s) / python.at(key));
  }
}

Settings parse(int argc, char** argv) {
  Settings settings;
  if (argc > 1) settings.events = std::atoi(argv[1]);
  if (argc > 2) settings.steps = std::atoi(argv[2]);
  if (argc > 3) settings.rounds = std::atoi(argv[3]);
  if (argc > 4) settings.python_steps = std::atoi(argv[4]);
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  weft::process_main(argc, argv);
  weft_bench::warn_if_not_a_release_build("step_compare");
  const Settings settings = parse(argc, argv);

  std::vector<Figures> weft(std::size(methods));
  for (int r = 0; r < settings.rounds; ++r) {
    for (std::size_t i = 0; i < std::size(methods); ++i)
      measure_round(methods[i].method, settings, weft[i]);
  }
  const std::string here = argv[0];
  const std::string script =
      here.substr(0, here.rfind('/') + 1) + "../../benchmarks/step_python.py";
  const auto python = python_figures(script, settings);

  print_latencies(settings, weft, python);
  print_throughput(settings, weft, python);
  if (python.empty()) std::printf("  (no python3: its figures are missing)\n");
  return 0;
}

// Start-to-result latency of a trivial child process, in one run:
//  - weft's DestroyableProcess, per start method (start() → get_or_throw());
//  - the floor: posix_spawn("/bin/true") + waitpid, which returns no result;
//  - Python's multiprocessing with the same start methods, run as caikit runs
//    a child (a Process whose target sends its result through a Pipe;
//    benchmarks/process_start_python.py, run with python3 when there is one).
//  - then the same for weft's fork and forkserver with the parent holding
//    2 GiB of touched memory (a fork copies its page tables; the forkserver
//    forks only itself).
// Targets: weft's fork and forkserver at least 10x faster than Python's,
// spawn within 2x of the floor, and with the big parent forkserver at most
// 0.5x of fork. Medians of several rounds.
//   process_start_compare [calls = 200] [rounds = 5] [python calls = 30] [big MiB = 2048]

#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::duration<double, std::milli>;

inline const weft::ProcessEntry<int()> trivial{"bench.trivial", [] { return 1; }};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double weft_per_call_ms(weft::StartMethod method, int calls) {
  const auto began = Clock::now();
  int sum = 0;
  for (int i = 0; i < calls; ++i) {
    weft::DestroyableProcess work(method, trivial);
    work.start();
    sum += work.get_or_throw();
  }
  if (sum != calls) std::abort();
  return Millis(Clock::now() - began).count() / calls;
}

double floor_per_call_ms(int calls) {
  const auto began = Clock::now();
  for (int i = 0; i < calls; ++i) {
    char program[] = "/bin/true";
    char* argv[] = {program, nullptr};
    pid_t pid;
    if (::posix_spawn(&pid, program, nullptr, nullptr, argv, environ) != 0) std::abort();
    int status;
    if (::waitpid(pid, &status, 0) != pid) std::abort();
  }
  return Millis(Clock::now() - began).count() / calls;
}

// What a bare fork costs here: fork, _exit in the child, waitpid.
double bare_fork_per_call_ms(int calls) {
  const auto began = Clock::now();
  for (int i = 0; i < calls; ++i) {
    const pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) ::_exit(0);
    int status;
    if (::waitpid(pid, &status, 0) != pid) std::abort();
  }
  return Millis(Clock::now() - began).count() / calls;
}

// Python's figures (ms per call) by method; empty without python3.
std::map<std::string, double> python_per_call_ms(const char* script, int calls) {
  std::map<std::string, double> figures;
  const std::string command = "python3 " + std::string(script) + " " + std::to_string(calls) + " 3";
  FILE* output = ::popen(command.c_str(), "r");
  if (!output) return figures;
  char method[32];
  double seconds;
  while (std::fscanf(output, "%31s %lf", method, &seconds) == 2)
    figures[method] = seconds * 1e3;
  ::pclose(output);
  return figures;
}

// weft's fork and forkserver from a parent holding `mib` MiB of touched
// memory (4 KiB pages, the usual case for a heap): ms per call.
void big_parent_figures(std::size_t mib, int calls, int rounds) {
  const std::size_t bytes = mib << 20;
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::printf("  (could not map %zu MiB: no big-parent figures)\n", mib);
    return;
  }
  ::madvise(memory, bytes, MADV_NOHUGEPAGE);
  std::memset(memory, 1, bytes);
  std::vector<double> fork, forkserver;
  for (int r = 0; r < rounds; ++r) {
    fork.push_back(weft_per_call_ms(weft::StartMethod::fork, calls));
    forkserver.push_back(weft_per_call_ms(weft::StartMethod::forkserver, calls));
  }
  ::munmap(memory, bytes);
  std::printf("with the parent holding %zu MiB of touched memory, ms per call:\n", mib);
  std::printf("  %-34s %8.3f\n", "weft fork", median(fork));
  std::printf("  %-34s %8.3f\n", "weft forkserver", median(forkserver));
  std::printf("  forkserver / fork: %.2fx (target <= 0.5x)\n", median(forkserver) / median(fork));
}

}  // namespace

int main(int argc, char** argv) {
  weft::process_main(argc, argv);
  weft_bench::warn_if_not_a_release_build("process_start_compare");
  const int calls = argc > 1 ? std::atoi(argv[1]) : 200;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  const int python_calls = argc > 3 ? std::atoi(argv[3]) : 30;
  const std::size_t big_mib = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 2048;

  std::vector<double> fork, forkserver, spawn, floor, bare_fork;
  for (int r = 0; r < rounds; ++r) {
    fork.push_back(weft_per_call_ms(weft::StartMethod::fork, calls));
    forkserver.push_back(weft_per_call_ms(weft::StartMethod::forkserver, calls));
    spawn.push_back(weft_per_call_ms(weft::StartMethod::spawn, calls));
    floor.push_back(floor_per_call_ms(calls));
    bare_fork.push_back(bare_fork_per_call_ms(calls));
  }
  const std::string here = argv[0];
  const std::string script =
      here.substr(0, here.rfind('/') + 1) + "../../benchmarks/process_start_python.py";
  const auto python = python_per_call_ms(script.c_str(), python_calls);

  std::printf("start -> result of a trivial child, ms per call (median of %d rounds)\n", rounds);
  std::printf("  %-34s %8.3f\n", "weft fork", median(fork));
  std::printf("  %-34s %8.3f\n", "weft forkserver", median(forkserver));
  std::printf("  %-34s %8.3f\n", "weft spawn", median(spawn));
  std::printf("  %-34s %8.3f\n", "posix_spawn(/bin/true) + waitpid", median(floor));
  std::printf("  %-34s %8.3f\n", "fork + _exit + waitpid (no result)", median(bare_fork));
  for (const auto& [method, ms] : python)
    std::printf("  %-34s %8.3f\n", ("python multiprocessing " + method).c_str(), ms);
  if (python.contains("fork"))
    std::printf("  weft fork is %.1fx faster than python's fork (target >= 10x)\n",
                python.at("fork") / median(fork));
  if (python.contains("forkserver"))
    std::printf("  weft forkserver is %.1fx faster than python's forkserver (target >= 10x)\n",
                python.at("forkserver") / median(forkserver));
  if (python.contains("spawn"))
    std::printf("  weft spawn is %.1fx faster than python's spawn\n",
                python.at("spawn") / median(spawn));
  std::printf("  weft spawn / floor: %.2fx (target <= 2x)\n", median(spawn) / median(floor));
  if (python.empty()) std::printf("  (no python3: its figures are missing)\n");
  big_parent_figures(big_mib, std::max(2, calls / 10), rounds);
  return 0;
}

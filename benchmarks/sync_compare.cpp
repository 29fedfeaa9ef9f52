// weft's sync objects and to_thread side by side with their peers, in one
// process, each measured `reps` times; prints the harness's lines
// (/work/shared/peers/README.md), then medians, ratios and the targets.
//
//   sync_compare [--bench=chan_pingpong|mutex_contended|thread_handoff|idle_cpu|all] [--reps=N]
//
// chan_pingpong   two fibers hand an int back and forth through two queues of
//                 capacity 2 (weft Queue; Boost.Fiber buffered_channel).
//                 ns_per_switch = elapsed / (2 x round trips), as the harness counts.
// mutex_contended 100 fibers on one thread each take one mutex, yield inside it,
//                 release it; ns_per_lock = elapsed / acquisitions.
// thread_handoff  an empty function run on another thread and waited for, back to
//                 back: weft run_sync; a std::thread created and joined per task;
//                 one hand-written worker woken through a mutex + condvar (no
//                 pinning, so the OS places the two threads as it likes).
// idle_cpu        CPU time the process burns while idle for a second: a hub with a
//                 fiber asleep, and the thread cache's idle workers after a burst.

#include <sys/resource.h>

#include <algorithm>
#include <boost/fiber/all.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "build_warning.hpp"
#include "compare_measure.hpp"

namespace {

using weft_bench::format;
using weft_bench::now_ns;

struct Options {
  std::string bench = "all";
  int reps = 5;
  bool wants(const char* name) const { return bench == "all" || bench == name; }
};

// (bench, peer, variant) -> samples of the primary metric
std::map<std::tuple<std::string, std::string, std::string>, std::vector<double>> samples;

void record(const std::string& bench, const std::string& peer, const std::string& variant,
            const std::string& line, double value) {
  std::printf("peer=%s bench=%s variant=%s %s\n", peer.c_str(), bench.c_str(), variant.c_str(),
              line.c_str());
  std::fflush(stdout);
  samples[{bench, peer, variant}].push_back(value);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double median_of(const std::string& bench, const std::string& peer, const std::string& variant) {
  return median(samples.at({bench, peer, variant}));
}

// ------------------------------------------------------------------ chan_pingpong

constexpr std::uint64_t kRoundTrips = 1'000'000;

void weft_queue_pingpong(int reps) {
  weft::run([&] {
    for (int rep = -1; rep < reps; ++rep) {
      const std::uint64_t n = rep < 0 ? kRoundTrips / 10 : kRoundTrips;
      weft::Queue<std::uint64_t> there(2);
      weft::Queue<std::uint64_t> back(2);
      const std::uint64_t t0 = now_ns();
      auto echo = weft::spawn([&] {
        for (std::uint64_t i = 0; i < n; ++i)
          back.put(there.get());
      });
      for (std::uint64_t i = 0; i < n; ++i) {
        there.put(i);
        back.get();
      }
      echo.wait();
      const double ns = double(now_ns() - t0);
      if (rep >= 0) {
        record("chan_pingpong", "weft", "queue",
               format("threads=1 n=%llu ns_per_switch=%.2f ns_per_roundtrip=%.2f",
                      static_cast<unsigned long long>(2 * n), ns / (2.0 * n), ns / n),
               ns / (2.0 * n));
      }
    }
  });
}

void boost_channel_pingpong(int reps) {
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t n = rep < 0 ? kRoundTrips / 10 : kRoundTrips;
    boost::fibers::buffered_channel<std::uint64_t> there(2);
    boost::fibers::buffered_channel<std::uint64_t> back(2);
    const std::uint64_t t0 = now_ns();
    boost::fibers::fiber echo([&] {
      for (std::uint64_t i = 0; i < n; ++i) {
        std::uint64_t v;
        there.pop(v);
        back.push(v);
      }
    });
    for (std::uint64_t i = 0; i < n; ++i) {
      there.push(i);
      std::uint64_t v;
      back.pop(v);
    }
    echo.join();
    const double ns = double(now_ns() - t0);
    if (rep >= 0) {
      record("chan_pingpong", "boost_fiber", "buffered_channel",
             format("threads=1 n=%llu ns_per_switch=%.2f ns_per_roundtrip=%.2f",
                    static_cast<unsigned long long>(2 * n), ns / (2.0 * n), ns / n),
             ns / (2.0 * n));
    }
  }
}

// ---------------------------------------------------------------- mutex_contended

constexpr int kMutexFibers = 100;
constexpr int kMutexRounds = 2000;

std::string mutex_line(std::uint64_t locks, double ns) {
  return format("threads=1 n=%llu ns_per_lock=%.2f", static_cast<unsigned long long>(locks),
                ns / double(locks));
}

void weft_mutex(int reps) {
  weft::run([&] {
    for (int rep = -1; rep < reps; ++rep) {
      weft::Mutex mutex;
      long counter = 0;
      const std::uint64_t t0 = now_ns();
      std::vector<weft::GreenThread<void>> fibers;
      for (int f = 0; f < kMutexFibers; ++f) {
        fibers.push_back(weft::spawn([&] {
          for (int i = 0; i < kMutexRounds; ++i) {
            std::lock_guard guard(mutex);
            weft::yield();
            ++counter;
          }
        }));
      }
      for (auto& f : fibers)
        f.wait();
      const double ns = double(now_ns() - t0);
      if (counter != kMutexFibers * kMutexRounds) weft_bench::die("weft mutex lost an update");
      const std::uint64_t locks = std::uint64_t{kMutexFibers} * kMutexRounds;
      if (rep >= 0) record("mutex_contended", "weft", "mutex", mutex_line(locks, ns), ns / locks);
    }
  });
}

void boost_fiber_mutex(int reps) {
  for (int rep = -1; rep < reps; ++rep) {
    boost::fibers::mutex mutex;
    long counter = 0;
    const std::uint64_t t0 = now_ns();
    std::vector<boost::fibers::fiber> fibers;
    for (int f = 0; f < kMutexFibers; ++f) {
      fibers.emplace_back([&] {
        for (int i = 0; i < kMutexRounds; ++i) {
          std::lock_guard guard(mutex);
          boost::this_fiber::yield();
          ++counter;
        }
      });
    }
    for (auto& f : fibers)
      f.join();
    const double ns = double(now_ns() - t0);
    if (counter != kMutexFibers * kMutexRounds) weft_bench::die("boost mutex lost an update");
    const std::uint64_t locks = std::uint64_t{kMutexFibers} * kMutexRounds;
    if (rep >= 0) {
      record("mutex_contended", "boost_fiber", "mutex", mutex_line(locks, ns), ns / locks);
    }
  }
}

// ----------------------------------------------------------------- thread_handoff

std::string handoff_line(int threads, std::uint64_t tasks, double ns) {
  return format("threads=%d n=%llu ns_per_task=%.1f", threads,
                static_cast<unsigned long long>(tasks), ns / double(tasks));
}

void weft_run_sync(int reps) {
  constexpr std::uint64_t tasks = 100'000;
  weft::run([&] {
    for (int rep = -1; rep < reps; ++rep) {
      const std::uint64_t n = rep < 0 ? tasks / 10 : tasks;
      const std::uint64_t t0 = now_ns();
      for (std::uint64_t i = 0; i < n; ++i)
        weft::to_thread::run_sync([] {});
      const double ns = double(now_ns() - t0);
      if (rep >= 0) {
        record("thread_handoff", "weft", "run_sync", handoff_line(2, n, ns), ns / double(n));
      }
    }
  });
}

void thread_per_task(int reps) {
  constexpr std::uint64_t tasks = 5'000;
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t n = rep < 0 ? tasks / 10 : tasks;
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < n; ++i)
      std::thread([] {}).join();
    const double ns = double(now_ns() - t0);
    if (rep >= 0) {
      record("thread_handoff", "std_thread", "thread_per_task", handoff_line(2, n, ns),
             ns / double(n));
    }
  }
}

void condvar_worker(int reps) {
  constexpr std::uint64_t tasks = 50'000;
  std::mutex mutex;
  std::condition_variable wake_worker;
  std::condition_variable wake_caller;
  bool has_job = false;
  bool job_done = false;
  bool quit = false;
  std::thread worker([&] {
    std::unique_lock lock(mutex);
    for (;;) {
      wake_worker.wait(lock, [&] { return has_job || quit; });
      if (quit) return;
      has_job = false;  // the (empty) job
      job_done = true;
      wake_caller.notify_one();
    }
  });
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t n = rep < 0 ? tasks / 10 : tasks;
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < n; ++i) {
      std::unique_lock lock(mutex);
      has_job = true;
      job_done = false;
      wake_worker.notify_one();
      wake_caller.wait(lock, [&] { return job_done; });
    }
    const double ns = double(now_ns() - t0);
    if (rep >= 0) {
      record("thread_handoff", "std_thread", "condvar_worker", handoff_line(2, n, ns),
             ns / double(n));
    }
  }
  {
    std::lock_guard lock(mutex);
    quit = true;
  }
  wake_worker.notify_one();
  worker.join();
}

// ---------------------------------------------------------------------- idle_cpu

double process_cpu_us() {
  rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 +
         double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

void idle_cpu() {
  weft::run([] {
    for (int i = 0; i < 1000; ++i)  // leaves cached workers behind, idle
      weft::to_thread::run_sync([] {});
    weft::sleep(std::chrono::milliseconds(100));  // past the workers' spin
    const double cpu0 = process_cpu_us();
    const std::uint64_t t0 = now_ns();
    weft::sleep(std::chrono::seconds(1));
    const double cpu_us = process_cpu_us() - cpu0;
    const double secs = double(now_ns() - t0) / 1e9;
    std::printf(
        "# idle_cpu: a hub asleep in a fiber plus %zu idle cached worker(s): %.0f us of "
        "CPU in %.2f s (%.4f%% of one CPU)\n",
        weft::ThreadCache::global().idle_workers(), cpu_us, secs, cpu_us / (secs * 1e6) * 100.0);
  });
}

// ------------------------------------------------------------------------ report

void print_table(const char* bench, const char* metric, const char* weft_variant) {
  std::printf("\n# %s: median %s (lower is better); peer/weft > 1: weft is faster\n", bench,
              metric);
  const double weft = median_of(bench, "weft", weft_variant);
  for (const auto& [key, values] : samples) {
    const auto& [b, peer, variant] = key;
    if (b != bench) continue;
    const double m = median(values);
    std::printf("# %-12s %-18s %12.2f %10.2f\n", peer.c_str(), variant.c_str(), m, m / weft);
  }
}

void target(const char* what, double ratio, double goal, bool at_least) {
  const bool met = at_least ? ratio >= goal : ratio <= goal;
  std::printf("# %-64s %8.2f  %s\n", what, ratio, met ? "met" : "MISSED");
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--bench=", 8) == 0) {
      options.bench = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--reps=", 7) == 0) {
      options.reps = std::max(1, std::atoi(argv[i] + 7));
    } else {
      weft_bench::die(std::string("unknown argument ") + argv[i]);
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("sync_compare");
  const Options options = parse(argc, argv);
  if (options.wants("chan_pingpong")) {
    weft_queue_pingpong(options.reps);
    boost_channel_pingpong(options.reps);
  }
  if (options.wants("mutex_contended")) {
    weft_mutex(options.reps);
    boost_fiber_mutex(options.reps);
  }
  if (options.wants("thread_handoff")) {
    weft_run_sync(options.reps);
    condvar_worker(options.reps);
    thread_per_task(options.reps);
  }
  if (options.wants("chan_pingpong")) print_table("chan_pingpong", "ns_per_switch", "queue");
  if (options.wants("mutex_contended")) print_table("mutex_contended", "ns_per_lock", "mutex");
  if (options.wants("thread_handoff")) print_table("thread_handoff", "ns_per_task", "run_sync");

  std::printf("\n# targets (from the medians above)\n");
  if (options.wants("chan_pingpong")) {
    target("queue ping-pong: >= 2x faster than Boost.Fiber buffered_channel",
           median_of("chan_pingpong", "boost_fiber", "buffered_channel") /
               median_of("chan_pingpong", "weft", "queue"),
           2.0, true);
  }
  if (options.wants("mutex_contended")) {
    target("contended mutex: >= 2x faster than Boost.Fiber",
           median_of("mutex_contended", "boost_fiber", "mutex") /
               median_of("mutex_contended", "weft", "mutex"),
           2.0, true);
  }
  if (options.wants("thread_handoff")) {
    const double weft = median_of("thread_handoff", "weft", "run_sync");
    target("run_sync: >= 10x faster than a thread per task",
           median_of("thread_handoff", "std_thread", "thread_per_task") / weft, 10.0, true);
    target("run_sync: no slower than a condvar hand-off (condvar/weft >= 1)",
           median_of("thread_handoff", "std_thread", "condvar_worker") / weft, 1.0, true);
  }
  if (options.wants("idle_cpu")) idle_cpu();
  return 0;
}

// runtime_compare: weft next to its C++ peers, raw Boost.Context and Boost.Fiber,
// on the same workloads in one run, with a table of medians and ratios.
//
//   runtime_compare [--bench=yield_pingpong|spawn_join|skynet|all] [--reps=N]
//                   [--peer=weft|boost_fiber|boost_context|all] [--n=N]
//                   [--lines-only] [--in-process]
//
//   --reps=N       printed rounds per peer (default 3); the table shows their median
//   --n=N          overrides the size of the one selected --bench (switches, tasks, leaves)
//   --lines-only   print only the measurement lines (for the shared harness's EXTRA_CMDS)
//   --in-process   skynet: grow every tree in this process (first round=cold, later
//                  round=warm) instead of one fresh child process per rep
//
// Every measurement is printed as one line in the shared peer harness's format
// (/work/shared/peers/README.md, "The line format (the contract)"), so the output
// can be fed to its summarize.py as is. The peers measure what the harness's own peer
// programs measure (cpp/ctx_bench.cpp, cpp/fiber_bench.cpp): CLOCK_MONOTONIC around
// the measured loop only, one unprinted warm-up round (1/10 size for the ping-pong,
// full size for spawn_join, none for skynet), RSS from /proc/self/status.
//
// The ping-pong and spawn_join peers share this process; weft always runs first, so
// a peer that runs later can at most profit from heap pages an earlier one left
// behind: the ratios err in the peers' favour. Skynet needs a fresh process per tree
// (see skynet below).

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>

#include <weft/weft.hpp>

#include "build_warning.hpp"

extern char** environ;

namespace {

namespace bf = boost::fibers;
namespace ctx = boost::context;

constexpr std::size_t kWeftStack =
    64 * 1024;  // weft's default, set explicitly: the variant says it
constexpr std::size_t kBoostStack = 16 * 1024;  // the harness's tuned Boost variants
constexpr std::uint64_t kSpawnTasks = 100'000;
constexpr std::uint64_t kSkynetLeaves = 1'000'000;
constexpr std::uint64_t kFanOut = 10;

// ------------------------------------------------------------------- helpers

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "runtime_compare: %s\n", message.c_str());
  std::exit(2);
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  std::va_list args;
  va_start(args, fmt);
  std::va_list again;
  va_copy(again, args);
  const int size = std::vsnprintf(nullptr, 0, fmt, args);
  va_end(args);
  std::string out(static_cast<std::size_t>(size), '\0');
  std::vsnprintf(out.data(), out.size() + 1, fmt, again);
  va_end(again);
  return out;
}

std::uint64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// A "Key:   <n> kB" field of /proc/self/status; -1 if absent.
long proc_status_kb(std::string_view key) {
  FILE* status = std::fopen("/proc/self/status", "r");
  if (!status) return -1;
  char line[256];
  long value = -1;
  while (std::fgets(line, sizeof line, status)) {
    if (std::string_view(line).starts_with(key) && line[key.size()] == ':') {
      value = std::strtol(line + key.size() + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(status);
  return value;
}

// RSS of one peer's run, read as the harness reads it: base = VmRSS before the first
// (warm-up) round, peak = VmHWM at the end of a round. VmHWM is per process, so the
// window first resets it to the current RSS (clear_refs "5", Linux 4.0+): the peak is
// then this peer's own, as if it ran in a fresh process.
class RssWindow {
 public:
  RssWindow() {
    if (!reset_peak()) warn_once();
    base_kb_ = proc_status_kb("VmRSS");
  }
  long base_kb() const noexcept { return base_kb_; }
  long peak_kb() const { return proc_status_kb("VmHWM"); }

 private:
  static bool reset_peak() {
    FILE* clear_refs = std::fopen("/proc/self/clear_refs", "w");
    if (!clear_refs) return false;
    const bool written = std::fputs("5", clear_refs) >= 0;
    return std::fclose(clear_refs) == 0 && written;
  }
  static void warn_once() {
    static bool warned = false;
    if (!std::exchange(warned, true)) {
      std::fputs(
          "# runtime_compare: cannot reset VmHWM; a peak_rss_kb includes the peers run before\n",
          stderr);
    }
  }

  long base_kb_ = 0;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// ------------------------------------------------------------------- lines and the table

struct BenchInfo {
  const char* name;
  const char* metric;  // the harness's primary metric, lower is better for all three
  const char* extra;   // a secondary figure shown in the table, or nullptr
};

constexpr std::array<BenchInfo, 3> kBenches{{
    {"yield_pingpong", "ns_per_switch", nullptr},
    {"spawn_join", "ns_per_spawn", "bytes_per_task"},
    {"skynet", "ms", "peak_rss_kb"},
}};

const BenchInfo* find_bench(std::string_view name) {
  for (const BenchInfo& bench : kBenches) {
    if (name == bench.name) return &bench;
  }
  return nullptr;
}

using Fields = std::map<std::string, std::string, std::less<>>;

Fields parse_line(std::string_view line) {
  Fields fields;
  while (!line.empty()) {
    const std::size_t end = std::min(line.find(' '), line.size());
    const std::string_view token = line.substr(0, end);
    if (const std::size_t eq = token.find('='); eq != std::string_view::npos) {
      fields.emplace(token.substr(0, eq), token.substr(eq + 1));
    }
    line.remove_prefix(std::min(end + 1, line.size()));
  }
  return fields;
}

// Prints the measurement lines as they come and keeps them for the table.
class Report {
 public:
  void line(const std::string& text) {
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
    if (text.starts_with("peer=")) samples_.push_back(parse_line(text));
  }

  // The median of `key` over the lines of (bench, peer), and the variant they carry.
  std::optional<double> median_of(std::string_view bench, std::string_view peer,
                                  std::string_view key) const {
    std::vector<double> values;
    for (const Fields& sample : samples_) {
      if (get(sample, "bench") == bench && get(sample, "peer") == peer) {
        values.push_back(std::strtod(get(sample, key).c_str(), nullptr));
      }
    }
    if (values.empty()) return std::nullopt;
    return median(values);
  }
  std::optional<double> max_of(std::string_view bench, std::string_view peer,
                               std::string_view key) const {
    std::optional<double> most;
    for (const Fields& sample : samples_) {
      if (get(sample, "bench") == bench && get(sample, "peer") == peer) {
        most = std::max(most.value_or(0), std::strtod(get(sample, key).c_str(), nullptr));
      }
    }
    return most;
  }
  // (peer, variant) pairs of a bench in the order they were first seen.
  std::vector<std::pair<std::string, std::string>> rows(std::string_view bench) const {
    std::vector<std::pair<std::string, std::string>> seen;
    for (const Fields& sample : samples_) {
      if (get(sample, "bench") != bench) continue;
      std::pair row{get(sample, "peer"), get(sample, "variant")};
      if (std::find(seen.begin(), seen.end(), row) == seen.end()) seen.push_back(row);
    }
    return seen;
  }

 private:
  static std::string get(const Fields& fields, std::string_view key) {
    const auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
  }

  std::vector<Fields> samples_;
};

std::string yield_line(const char* peer, const char* variant, std::uint64_t switches,
                       std::uint64_t elapsed_ns) {
  return format("peer=%s bench=yield_pingpong variant=%s threads=1 n=%llu ns_per_switch=%.2f", peer,
                variant, static_cast<unsigned long long>(switches),
                static_cast<double>(elapsed_ns) / static_cast<double>(switches));
}

std::string spawn_line(const char* peer, const char* variant, std::uint64_t tasks,
                       std::uint64_t elapsed_ns, const RssWindow& rss) {
  const long peak = rss.peak_kb();
  return format(
      "peer=%s bench=spawn_join variant=%s threads=1 n=%llu ns_per_spawn=%.1f peak_rss_kb=%ld "
      "base_rss_kb=%ld bytes_per_task=%.0f",
      peer, variant, static_cast<unsigned long long>(tasks),
      static_cast<double>(elapsed_ns) / static_cast<double>(tasks), peak, rss.base_kb(),
      static_cast<double>(peak - rss.base_kb()) * 1024.0 / static_cast<double>(tasks));
}

std::string skynet_line(const char* peer, const char* variant, int round, std::uint64_t leaves,
                        std::uint64_t elapsed_ns, const RssWindow& rss, std::uint64_t sum) {
  return format(
      "peer=%s bench=skynet variant=%s threads=1 round=%s n=%llu ms=%.1f peak_rss_kb=%ld "
      "base_rss_kb=%ld sum=%llu",
      peer, variant, round == 0 ? "cold" : "warm", static_cast<unsigned long long>(leaves),
      static_cast<double>(elapsed_ns) / 1e6, rss.peak_kb(), rss.base_kb(),
      static_cast<unsigned long long>(sum));
}

// ------------------------------------------------------------------- yield ping-pong
// Two contexts on one OS thread hand the CPU back and forth. n = switches (2 per
// round trip), ns_per_switch = elapsed / n. Default n per peer: what run_all.sh gives
// the harness's peers (80M for raw Boost.Context, 10M for Boost.Fiber); 20M for weft,
// so that a round lasts a few hundred ms.

void weft_yield_pingpong(std::uint64_t switches, int reps, Report& report) {
  weft::run(
      [&] {
        for (int rep = -1; rep < reps; ++rep) {  // rep -1: the unprinted warm-up
          const std::uint64_t per_fiber = (rep < 0 ? switches / 10 : switches) / 2;
          auto body = [per_fiber] {
            for (std::uint64_t i = 0; i < per_fiber; ++i)
              weft::yield();
          };
          const std::uint64_t t0 = now_ns();
          auto a = weft::spawn(body);
          auto b = weft::spawn(body);
          a.wait();
          b.wait();
          const std::uint64_t t1 = now_ns();
          if (rep >= 0) report.line(yield_line("weft", "yield", 2 * per_fiber, t1 - t0));
        }
      },
      weft::RunOptions{.default_stack_size = kWeftStack});
}

void boost_context_yield_pingpong(std::uint64_t switches, int reps, Report& report) {
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t rounds = (rep < 0 ? switches / 10 : switches) / 2;
    bool stop = false;
    ctx::fiber partner{[&stop](ctx::fiber&& back) {
      while (!stop)
        back = std::move(back).resume();
      return std::move(back);
    }};
    partner = std::move(partner).resume();  // enter it once: the timed loop is steady state
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < rounds; ++i)
      partner = std::move(partner).resume();
    const std::uint64_t t1 = now_ns();
    stop = true;
    partner = std::move(partner).resume();  // lets it return
    if (rep >= 0) report.line(yield_line("boost_context", "resume", 2 * rounds, t1 - t0));
  }
}

void boost_fiber_yield_pingpong(std::uint64_t switches, int reps, Report& report) {
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t per_fiber = (rep < 0 ? switches / 10 : switches) / 2;
    auto body = [per_fiber] {
      for (std::uint64_t i = 0; i < per_fiber; ++i)
        boost::this_fiber::yield();
    };
    const std::uint64_t t0 = now_ns();
    bf::fiber a(body);
    bf::fiber b(body);
    a.join();
    b.join();
    const std::uint64_t t1 = now_ns();
    if (rep >= 0) report.line(yield_line("boost_fiber", "yield", 2 * per_fiber, t1 - t0));
  }
}

// ------------------------------------------------------------------- spawn + join
// Create n tasks that do nothing, all of them first, then join each. One unprinted
// full-size warm-up round, so allocator caches and stack pools are primed.

void weft_spawn_join(std::uint64_t tasks, int reps, Report& report) {
  weft::run(
      [&] {
        const RssWindow rss;
        for (int rep = -1; rep < reps; ++rep) {
          std::uint64_t ran = 0;
          std::vector<weft::GreenThread<void>> fibers;
          fibers.reserve(tasks);
          const std::uint64_t t0 = now_ns();
          for (std::uint64_t i = 0; i < tasks; ++i)
            fibers.push_back(weft::spawn([&ran] { ++ran; }));
          for (const auto& fiber : fibers)
            fiber.wait();
          const std::uint64_t t1 = now_ns();
          if (ran != tasks) die("weft spawn_join: not every fiber ran");
          if (rep >= 0) report.line(spawn_line("weft", "pooled64k", tasks, t1 - t0, rss));
        }
      },
      weft::RunOptions{.default_stack_size = kWeftStack});
}

// The floor for a runtime with pooled stacks: create, then resume each once.
void boost_context_spawn_join(std::uint64_t tasks, int reps, Report& report) {
  ctx::pooled_fixedsize_stack stacks(kBoostStack);
  const RssWindow rss;
  for (int rep = -1; rep < reps; ++rep) {
    std::uint64_t ran = 0;
    std::vector<ctx::fiber> fibers;
    fibers.reserve(tasks);
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < tasks; ++i) {
      fibers.emplace_back(std::allocator_arg, stacks, [&ran](ctx::fiber&& back) {
        ++ran;
        return std::move(back);
      });
    }
    for (auto& fiber : fibers)
      fiber = std::move(fiber).resume();
    const std::uint64_t t1 = now_ns();
    if (ran != tasks) die("boost_context spawn_join: not every fiber ran");
    if (rep >= 0) {
      report.line(spawn_line("boost_context", "create_resume_pooled16k", tasks, t1 - t0, rss));
    }
  }
}

void boost_fiber_spawn_join(std::uint64_t tasks, int reps, Report& report) {
  bf::pooled_fixedsize_stack stacks(kBoostStack);
  const RssWindow rss;
  for (int rep = -1; rep < reps; ++rep) {
    std::uint64_t ran = 0;
    std::vector<bf::fiber> fibers;
    fibers.reserve(tasks);
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < tasks; ++i) {
      fibers.emplace_back(bf::launch::post, std::allocator_arg, stacks, [&ran] { ++ran; });
    }
    for (auto& fiber : fibers)
      fiber.join();
    const std::uint64_t t1 = now_ns();
    if (ran != tasks) die("boost_fiber spawn_join: not every fiber ran");
    fibers.clear();
    boost::this_fiber::yield();  // lets the scheduler release the terminated fibers
    if (rep >= 0) report.line(spawn_line("boost_fiber", "post_pooled16k", tasks, t1 - t0, rss));
  }
}

// ------------------------------------------------------------------- skynet
// 1M leaves, fan-out 10 (1,111,111 tasks): every task with size > 1 spawns 10 children
// over its sub-ranges, waits for them and returns their sum; a leaf returns its number.
//
// weft runs it with eventlet's spawn order: a child starts at the next round (FIFO), so
// the tree unfolds breadth first and all ~1.1M fibers are alive at once, as with
// Boost.Fiber's launch::post. weft still fits because a fiber's stack is bound only when
// the fiber first runs and goes back to a LIFO pool when it ends: the 1M leaves that have
// not started yet cost a heap control block each, and when they run each one takes the
// stack the previous leaf just gave back, so a few hot stacks serve them all. Only the
// ~111k parents, suspended in wait(), hold a stack (of which they touch a page or two).
// Boost.Fiber binds a stack at creation, so it runs here with launch::dispatch (the child
// runs at once, depth first), its fast variant in the harness.
//
// Peak RSS (VmHWM) and a cold tree (stacks and heap page-faulted in) both need a fresh
// process, so by default each rep is a child process (this program with --in-process
// --reps=1): every printed round is round=cold. Resetting VmHWM (see RssWindow) would
// fix the peak but not the coldness: the memory an earlier tree left in the heap and in
// the stack pools would make a later one warm.

std::uint64_t weft_skynet_node(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t sub = size / kFanOut;
  std::array<weft::GreenThread<std::uint64_t>, kFanOut> children;
  for (std::uint64_t i = 0; i < kFanOut; ++i) {
    children[i] = weft::spawn(weft_skynet_node, num + i * sub, sub);
  }
  std::uint64_t sum = 0;
  for (const auto& child : children)
    sum += child.wait();
  return sum;
}

void check_skynet_sum(std::uint64_t leaves, std::uint64_t sum) {
  if (sum != leaves * (leaves - 1) / 2)
    die(format("skynet: wrong sum %llu", static_cast<unsigned long long>(sum)));
}

void weft_skynet(std::uint64_t leaves, int reps, Report& report) {
  weft::run(
      [&] {
        const RssWindow rss;
        for (int round = 0; round < reps; ++round) {
          const std::uint64_t t0 = now_ns();
          const std::uint64_t sum = weft::spawn(weft_skynet_node, std::uint64_t{0}, leaves).wait();
          const std::uint64_t t1 = now_ns();
          check_skynet_sum(leaves, sum);
          report.line(skynet_line("weft", "eventlet_order", round, leaves, t1 - t0, rss, sum));
        }
      },
      weft::RunOptions{.default_stack_size = kWeftStack});
}

std::uint64_t boost_fiber_skynet_node(bf::pooled_fixedsize_stack& stacks, std::uint64_t num,
                                      std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t sub = size / kFanOut;
  std::array<std::uint64_t, kFanOut> results{};
  std::array<bf::fiber, kFanOut> children;
  for (std::uint64_t i = 0; i < kFanOut; ++i) {
    children[i] = bf::fiber(bf::launch::dispatch, std::allocator_arg, stacks, [&, i] {
      results[i] = boost_fiber_skynet_node(stacks, num + i * sub, sub);
    });
  }
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < kFanOut; ++i) {
    children[i].join();
    sum += results[i];
  }
  return sum;
}

void boost_fiber_skynet(std::uint64_t leaves, int reps, Report& report) {
  bf::pooled_fixedsize_stack stacks(kBoostStack);
  const RssWindow rss;
  for (int round = 0; round < reps; ++round) {
    std::uint64_t sum = 0;
    const std::uint64_t t0 = now_ns();
    bf::fiber root(bf::launch::dispatch, std::allocator_arg, stacks,
                   [&] { sum = boost_fiber_skynet_node(stacks, 0, leaves); });
    root.join();
    const std::uint64_t t1 = now_ns();
    check_skynet_sum(leaves, sum);
    boost::this_fiber::yield();  // lets the scheduler release the terminated fibers
    report.line(skynet_line("boost_fiber", "dispatch_pooled16k", round, leaves, t1 - t0, rss, sum));
  }
}

// ------------------------------------------------------------------- options

struct Options {
  std::string bench = "all";
  std::string peer = "all";
  int reps = 3;
  std::optional<std::uint64_t> n;
  bool lines_only = false;
  bool in_process = false;

  bool wants_bench(std::string_view name) const { return bench == "all" || bench == name; }
  bool wants_peer(std::string_view name) const { return peer == "all" || peer == name; }
  std::uint64_t size_or(std::uint64_t fallback) const { return n.value_or(fallback); }
};

std::uint64_t parse_count(std::string_view key, const std::string& value) {
  char* end = nullptr;
  const unsigned long long count = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || count == 0) {
    die(format("--%.*s wants a positive integer, got '%s'", static_cast<int>(key.size()),
               key.data(), value.c_str()));
  }
  return count;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::size_t eq = arg.find('=');
    const std::string_view key = arg.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? "" : arg.substr(eq + 1));
    if (key == "--bench") {
      options.bench = value;
    } else if (key == "--peer") {
      options.peer = value;
    } else if (key == "--reps") {
      options.reps = static_cast<int>(parse_count("reps", value));
    } else if (key == "--n") {
      options.n = parse_count("n", value);
    } else if (arg == "--lines-only") {
      options.lines_only = true;
    } else if (arg == "--in-process") {
      options.in_process = true;
    } else {
      die(format("unknown argument '%s' (see the comment at the top of runtime_compare.cpp)",
                 argv[i]));
    }
  }
  if (options.bench != "all" && !find_bench(options.bench)) die("unknown --bench=" + options.bench);
  if (options.peer != "all" && options.peer != "weft" && options.peer != "boost_fiber" &&
      options.peer != "boost_context") {
    die("unknown --peer=" + options.peer);
  }
  if (options.n && options.bench == "all") die("--n needs a single --bench");
  return options;
}

// ------------------------------------------------------------------- running the workloads

void run_yield_pingpong(const Options& options, Report& report) {
  if (options.wants_peer("weft"))
    weft_yield_pingpong(options.size_or(20'000'000), options.reps, report);
  if (options.wants_peer("boost_context")) {
    boost_context_yield_pingpong(options.size_or(80'000'000), options.reps, report);
  }
  if (options.wants_peer("boost_fiber")) {
    boost_fiber_yield_pingpong(options.size_or(10'000'000), options.reps, report);
  }
}

void run_spawn_join(const Options& options, Report& report) {
  const std::uint64_t tasks = options.size_or(kSpawnTasks);
  if (options.wants_peer("weft")) weft_spawn_join(tasks, options.reps, report);
  if (options.wants_peer("boost_context")) boost_context_spawn_join(tasks, options.reps, report);
  if (options.wants_peer("boost_fiber")) boost_fiber_spawn_join(tasks, options.reps, report);
}

// Runs this program again with `args` and hands every line it prints to `report`.
void run_child(const std::vector<std::string>& args, Report& report) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) die("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  std::vector<char*> argv{const_cast<char*>("runtime_compare")};
  for (const std::string& arg : args)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) die(format("cannot start a child: %s", std::strerror(rc)));

  FILE* child_out = ::fdopen(pipe_fds[0], "r");
  char* line = nullptr;
  std::size_t capacity = 0;
  for (ssize_t length; (length = ::getline(&line, &capacity, child_out)) > 0;) {
    report.line(std::string(line, static_cast<std::size_t>(length) - (line[length - 1] == '\n')));
  }
  std::free(line);
  std::fclose(child_out);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "# runtime_compare: child '%s' failed (status %d)\n", args[1].c_str(),
                 status);
  }
}

void run_skynet_here(const std::string& peer, const Options& options, Report& report) {
  const std::uint64_t leaves = options.size_or(kSkynetLeaves);
  if (peer == "weft") weft_skynet(leaves, options.reps, report);
  if (peer == "boost_fiber") boost_fiber_skynet(leaves, options.reps, report);
}

void run_skynet(const Options& options, Report& report) {
  std::vector<std::string> peers;
  for (const char* peer : {"weft", "boost_fiber"}) {
    if (options.wants_peer(peer)) peers.emplace_back(peer);
  }
  if (options.in_process) {
    for (const std::string& peer : peers)
      run_skynet_here(peer, options, report);
    return;
  }
  // Interleaved like run_all.sh: a slow spell of the machine hits every peer alike.
  for (int rep = 0; rep < options.reps; ++rep) {
    for (const std::string& peer : peers) {
      if (!options.lines_only) {
        std::fprintf(stderr, "# skynet %s, rep %d of %d (fresh process)\n", peer.c_str(), rep + 1,
                     options.reps);
      }
      std::vector<std::string> args{"--bench=skynet", "--peer=" + peer, "--reps=1", "--in-process",
                                    "--lines-only"};
      if (options.n)
        args.push_back(format("--n=%llu", static_cast<unsigned long long>(*options.n)));
      run_child(args, report);
    }
  }
}

// ------------------------------------------------------------------- the table

void print_bench_table(const BenchInfo& bench, const Report& report, int reps) {
  const auto rows = report.rows(bench.name);
  if (rows.empty()) return;
  const std::optional<double> weft = report.median_of(bench.name, "weft", bench.metric);
  std::printf("\n# %s: median %s of %d (lower is better); peer/weft > 1 means weft is faster\n",
              bench.name, bench.metric, reps);
  std::printf("# %-14s %-24s %12s %16s %10s\n", "peer", "variant", bench.metric,
              bench.extra ? bench.extra : "", "peer/weft");
  for (const auto& [peer, variant] : rows) {
    const double value = *report.median_of(bench.name, peer, bench.metric);
    const std::string extra =
        bench.extra ? format("%.0f", *report.median_of(bench.name, peer, bench.extra)) : "";
    const std::string ratio = weft ? format("%.2f", value / *weft) : "-";
    std::printf("# %-14s %-24s %12.2f %16s %10s\n", peer.c_str(), variant.c_str(), value,
                extra.c_str(), ratio.c_str());
  }
}

void print_target(const char* goal, const char* figure, std::optional<double> value, bool met) {
  if (!value) return;
  std::printf("# %-58s %-26s %9.2f  %s\n", goal, figure, *value, met ? "met" : "MISSED");
}

// What the issue asks of weft, from the medians above.
void print_targets(const Report& report) {
  constexpr double go_skynet_cold_ms = 790;  // Go, GOMAXPROCS=1, round=cold: RESULTS.md, this box
  constexpr double skynet_rss_limit_kb = 2.0 * 1024 * 1024;  // 2 GiB
  auto ratio = [&report](const char* bench, const char* metric, const char* top,
                         const char* bottom) -> std::optional<double> {
    const auto a = report.median_of(bench, top, metric);
    const auto b = report.median_of(bench, bottom, metric);
    if (!a || !b) return std::nullopt;
    return *a / *b;
  };
  std::printf("\n# targets\n");
  const auto raw = ratio("yield_pingpong", "ns_per_switch", "weft", "boost_context");
  print_target("yield: within 2x of a raw boost::context switch", "weft/boost_context", raw,
               raw && *raw <= 2);
  const auto yield = ratio("yield_pingpong", "ns_per_switch", "boost_fiber", "weft");
  print_target("yield: >= 4x faster than Boost.Fiber", "boost_fiber/weft", yield,
               yield && *yield >= 4);
  const auto spawn = ratio("spawn_join", "ns_per_spawn", "boost_fiber", "weft");
  print_target("spawn+join 100k: >= 3x faster than Boost.Fiber pooled 16k", "boost_fiber/weft",
               spawn, spawn && *spawn >= 3);
  const auto ms = report.median_of("skynet", "weft", "ms");
  print_target("skynet 1M: faster than Go with one P (790 ms, RESULTS.md)", "weft ms", ms,
               ms && *ms < go_skynet_cold_ms);
  const auto peak = report.max_of("skynet", "weft", "peak_rss_kb");
  print_target("skynet 1M: peak RSS under 2 GiB (largest of the reps)", "weft peak_rss_mib",
               peak ? std::optional(*peak / 1024) : std::nullopt,
               peak && *peak < skynet_rss_limit_kb);
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("runtime_compare");
  const Options options = parse_options(argc, argv);
  if (options.wants_peer("boost_fiber")) {
    // round_robin is Boost.Fiber's default; installed explicitly, as the harness does.
    bf::use_scheduling_algorithm<bf::algo::round_robin>();
  }

  Report report;
  if (options.wants_bench("yield_pingpong")) run_yield_pingpong(options, report);
  if (options.wants_bench("spawn_join")) run_spawn_join(options, report);
  if (options.wants_bench("skynet")) run_skynet(options, report);
  if (options.lines_only) return 0;
  for (const BenchInfo& bench : kBenches)
    print_bench_table(bench, report, options.reps);
  if (options.n) {
    std::printf("\n# targets: not judged (--n changed the workload's size)\n");
  } else {
    print_targets(report);
  }
  return 0;
}

#include "compare_report.hpp"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace weft_bench {

namespace {

constexpr std::array<BenchInfo, 3> kBenches{{
    {"yield_pingpong", "ns_per_switch", nullptr},
    {"spawn_join", "ns_per_spawn", "bytes_per_task"},
    {"skynet", "ms", "peak_rss_kb"},
}};

// The figures: Go with GOMAXPROCS=1, skynet round=cold, median from
// /work/shared/peers/RESULTS.md (this machine); and the memory ceiling.
constexpr double kGoSkynetColdMs = 790;
constexpr double kSkynetRssLimitKb = 2.0 * 1024 * 1024;  // 2 GiB

std::map<std::string, std::string, std::less<>> parse_line(std::string_view line) {
  std::map<std::string, std::string, std::less<>> fields;
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

std::string_view field(const std::map<std::string, std::string, std::less<>>& fields,
                       std::string_view key) {
  const auto it = fields.find(key);
  return it == fields.end() ? std::string_view() : std::string_view(it->second);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

void print_target(const char* goal, const char* figure, std::optional<double> value, bool met) {
  if (!value) return;
  std::printf("# %-58s %-20s %9.2f  %s\n", goal, figure, *value, met ? "met" : "MISSED");
}

}  // namespace

const BenchInfo* find_bench(std::string_view name) {
  for (const BenchInfo& bench : kBenches) {
    if (name == bench.name) return &bench;
  }
  return nullptr;
}

std::string yield_line(const char* peer, const char* variant, std::uint64_t switches,
                       std::uint64_t elapsed_ns) {
  return format("peer=%s bench=yield_pingpong variant=%s threads=1 n=%llu ns_per_switch=%.2f", peer,
                variant, static_cast<unsigned long long>(switches),
                static_cast<double>(elapsed_ns) / static_cast<double>(switches));
}

std::string spawn_line(const char* peer, const char* variant, std::uint64_t tasks,
                       std::uint64_t elapsed_ns, const RssWindow& rss, int threads) {
  const long peak = rss.peak_kb();
  return format(
      "peer=%s bench=spawn_join variant=%s threads=%d n=%llu ns_per_spawn=%.1f peak_rss_kb=%ld "
      "base_rss_kb=%ld bytes_per_task=%.0f",
      peer, variant, threads, static_cast<unsigned long long>(tasks),
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

void Report::line(const std::string& text) {
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
  if (text.starts_with("peer=")) samples_.push_back(parse_line(text));
}

std::vector<double> Report::values_of(std::string_view bench, std::string_view peer,
                                      std::string_view key, std::string_view variant) const {
  std::string first_variant;
  if (variant.empty()) {
    for (const auto& [row_peer, row_variant] : rows(bench)) {
      if (row_peer == peer) {
        first_variant = row_variant;
        break;
      }
    }
    variant = first_variant;
  }
  std::vector<double> values;
  for (const Fields& sample : samples_) {
    if (field(sample, "bench") == bench && field(sample, "peer") == peer &&
        field(sample, "variant") == variant) {
      values.push_back(std::strtod(std::string(field(sample, key)).c_str(), nullptr));
    }
  }
  return values;
}

std::optional<double> Report::median_of(std::string_view bench, std::string_view peer,
                                        std::string_view key, std::string_view variant) const {
  std::vector<double> values = values_of(bench, peer, key, variant);
  if (values.empty()) return std::nullopt;
  return median(std::move(values));
}

std::optional<double> Report::max_of(std::string_view bench, std::string_view peer,
                                     std::string_view key) const {
  const std::vector<double> values = values_of(bench, peer, key, {});
  if (values.empty()) return std::nullopt;
  return *std::max_element(values.begin(), values.end());
}

std::vector<std::pair<std::string, std::string>> Report::rows(std::string_view bench) const {
  std::vector<std::pair<std::string, std::string>> seen;
  for (const Fields& sample : samples_) {
    if (field(sample, "bench") != bench) continue;
    std::pair<std::string, std::string> row{field(sample, "peer"), field(sample, "variant")};
    if (std::find(seen.begin(), seen.end(), row) == seen.end()) seen.push_back(std::move(row));
  }
  return seen;
}

std::optional<double> Report::ratio(std::string_view bench, std::string_view top,
                                    std::string_view bottom) const {
  const char* metric = find_bench(bench)->metric;
  const auto a = median_of(bench, top, metric);
  const auto b = median_of(bench, bottom, metric);
  if (!a || !b) return std::nullopt;
  return *a / *b;
}

void Report::print_tables(int reps) const {
  for (const BenchInfo& bench : kBenches) {
    const auto bench_rows = rows(bench.name);
    if (bench_rows.empty()) continue;
    std::printf(
        "\n# %s: median %s of %d (lower is better); peer/weft (weft's first variant) > 1: weft is "
        "faster\n",
        bench.name, bench.metric, reps);
    std::printf("# %-14s %-24s %14s %15s %10s\n", "peer", "variant", bench.metric,
                bench.extra ? bench.extra : "", "peer/weft");
    const auto weft = median_of(bench.name, "weft", bench.metric);
    for (const auto& [peer, variant] : bench_rows) {
      const std::string extra =
          bench.extra ? format("%.0f", *median_of(bench.name, peer, bench.extra, variant)) : "";
      const double value = *median_of(bench.name, peer, bench.metric, variant);
      std::printf("# %-14s %-24s %14.2f %15s %10s\n", peer.c_str(), variant.c_str(), value,
                  extra.c_str(), weft ? format("%.2f", value / *weft).c_str() : "-");
    }
  }
}

void Report::print_targets() const {
  std::printf("\n# targets (from the medians above)\n");
  const auto raw = ratio("yield_pingpong", "weft", "boost_context");
  print_target("yield, one body: within 2x of raw boost::context", "weft/boost_context", raw,
               raw && *raw <= 2);
  const auto distinct = median_of("yield_pingpong", "weft", "ns_per_switch", kDistinctBodies);
  const auto context = median_of("yield_pingpong", "boost_context", "ns_per_switch");
  const auto distinct_raw =
      distinct && context ? std::optional(*distinct / *context) : std::nullopt;
  print_target("yield, distinct bodies: within 2x of raw boost::context", "weft/boost_context",
               distinct_raw, distinct_raw && *distinct_raw <= 2);
  const auto yield = ratio("yield_pingpong", "boost_fiber", "weft");
  print_target("yield: >= 4x faster than Boost.Fiber", "boost_fiber/weft", yield,
               yield && *yield >= 4);
  const auto spawn = ratio("spawn_join", "boost_fiber", "weft");
  print_target("spawn+join 100k: >= 3x faster than Boost.Fiber pooled 16k", "boost_fiber/weft",
               spawn, spawn && *spawn >= 3);
  const auto ms = median_of("skynet", "weft", "ms");
  print_target("skynet 1M: faster than Go with one P (790 ms, RESULTS.md)", "weft ms", ms,
               ms && *ms < kGoSkynetColdMs);
  const auto peak = max_of("skynet", "weft", "peak_rss_kb");
  print_target("skynet 1M: peak RSS under 2 GiB (largest of the reps)", "weft peak MiB",
               peak ? std::optional(*peak / 1024) : std::nullopt,
               peak && *peak < kSkynetRssLimitKb);
}

bool run_child(const std::vector<std::string>& args, Report& report) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) die("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  std::vector<char*> argv{program_invocation_short_name};
  for (const std::string& arg : args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
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
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string command;
  for (const std::string& arg : args) {
    command += ' ' + arg;
  }
  std::fprintf(stderr, "# %s: child '%s' failed (status %d)\n", program_invocation_short_name,
               command.c_str() + 1, status);
  return false;
}

}  // namespace weft_bench

#pragma once
// The shared harness's line format (/work/shared/peers/README.md, "The line format (the
// contract)"): runtime_compare writes every measurement as such a line, reads the lines
// back (its own and its children's) and turns them into a table of medians and ratios.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compare_measure.hpp"

namespace weft_bench {

struct BenchInfo {
  const char* name;
  const char* metric;  // the harness's primary metric; lower is better for all three
  const char* extra;   // a secondary figure the table shows, or nullptr
};

/// weft's yield_pingpong variant where the two fibers run different functions (a producer
/// and a consumer); its plain `yield` variant runs one body in both.
inline constexpr const char* kDistinctBodies = "yield_distinct_bodies";

/// The bench of that name, or nullptr.
const BenchInfo* find_bench(std::string_view name);

std::string yield_line(const char* peer, const char* variant, std::uint64_t switches,
                       std::uint64_t elapsed_ns);
std::string spawn_line(const char* peer, const char* variant, std::uint64_t tasks,
                       std::uint64_t elapsed_ns, const RssWindow& rss, int threads = 1);
/// round 0 is round=cold, later ones round=warm.
std::string skynet_line(const char* peer, const char* variant, int round, std::uint64_t leaves,
                        std::uint64_t elapsed_ns, const RssWindow& rss, std::uint64_t sum);

/// Prints the measurement lines as they come and keeps them for the table.
class Report {
 public:
  /// Prints `text` on stdout at once; keeps it if it is a measurement (peer=...).
  void line(const std::string& text);

  /// Median (or largest) of `key` over the lines of (bench, peer, variant); nullopt if
  /// none. No variant: the peer's first one, its main figure (weft's same-body yield,
  /// say, beside its distinct-body one).
  std::optional<double> median_of(std::string_view bench, std::string_view peer,
                                  std::string_view key, std::string_view variant = {}) const;
  std::optional<double> max_of(std::string_view bench, std::string_view peer,
                               std::string_view key) const;
  /// The (peer, variant) pairs of a bench, in the order they were first seen.
  std::vector<std::pair<std::string, std::string>> rows(std::string_view bench) const;

  /// One small table per bench: medians and peer/weft ratios.
  void print_tables(int reps) const;
  /// The figures the issue asks of weft, each marked met or MISSED.
  void print_targets() const;

 private:
  using Fields = std::map<std::string, std::string, std::less<>>;
  std::vector<double> values_of(std::string_view bench, std::string_view peer, std::string_view key,
                                std::string_view variant) const;
  std::optional<double> ratio(std::string_view bench, std::string_view top,
                              std::string_view bottom) const;

  std::vector<Fields> samples_;
};

/// Runs this program again with `args` and hands every line it prints to `report`.
/// False if the child failed (it may have been killed for memory, say).
bool run_child(const std::vector<std::string>& args, Report& report);

}  // namespace weft_bench

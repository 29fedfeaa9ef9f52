#pragma once
// Measuring as the shared peer harness does (/work/shared/peers/cpp/common.hpp):
// CLOCK_MONOTONIC for time, /proc/self/status for memory.

#include <errno.h>
#include <time.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace weft_bench {

[[noreturn]] inline void die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
  std::exit(2);
}

inline std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string format(const char* fmt, ...) {
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

/// A command-line argument split at its first '=': {"--key", "value"}; the
/// value is empty when there is no '='.
struct Argument {
  std::string_view key;
  std::string value;
};
inline Argument split_argument(std::string_view arg) {
  const std::size_t eq = arg.find('=');
  return {arg.substr(0, eq), std::string(eq == std::string_view::npos ? "" : arg.substr(eq + 1))};
}

/// The value of a --key=value option that must be a positive integer; dies
/// naming the option otherwise.
inline std::uint64_t parse_count(std::string_view key, const std::string& value) {
  char* end = nullptr;
  const unsigned long long count = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || count == 0) {
    die(format("--%.*s wants a positive integer, got '%s'", static_cast<int>(key.size()),
               key.data(), value.c_str()));
  }
  return count;
}

inline std::uint64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

/// A "Key:   <n> kB" field of /proc/self/status; -1 if absent.
inline long proc_status_kb(std::string_view key) {
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

/// RSS of one peer's run, read as the harness reads it: base = VmRSS before the first
/// (warm-up) round, peak = VmHWM at the end of a round. VmHWM is per process, and
/// several peers share this one, so the window first resets it to the current RSS
/// (clear_refs "5", Linux 4.0+): the peak is then this peer's own, as if it ran alone.
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
      std::fputs("# runtime_compare: cannot reset VmHWM; peak_rss_kb includes earlier peers\n",
                 stderr);
    }
  }

  long base_kb_ = 0;
};

}  // namespace weft_bench

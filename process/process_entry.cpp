#include <weft/process/process_entry.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include <weft/runtime/log.hpp>

#include "process/child_report.hpp"

namespace weft {
namespace detail {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, EntryInvoker, std::less<>> entries;
  std::map<std::string, int, std::less<>> clashes;  // names registered more than once
};

// Made on first use, so entries registered by any static initializer find it.
Registry& registry() {
  static Registry* const instance = new Registry;  // never destroyed: children exit without it
  return *instance;
}

std::atomic<bool> main_was_called{false};

constexpr int arguments_fd = 3;
constexpr int report_fd = 4;

std::string read_all(int fd) {
  std::string bytes;
  char buffer[65536];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got > 0) {
      bytes.append(buffer, static_cast<std::size_t>(got));
    } else if (got == 0) {
      return bytes;
    } else if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "weft: reading a child's arguments");
    }
  }
}

[[noreturn]] void run_spawned_entry(const char* name) {
  EntryInvoker invoke;
  {
    Registry& entries = registry();
    std::lock_guard lock(entries.mutex);
    const auto found = entries.entries.find(std::string_view(name));
    if (found != entries.entries.end() && !entries.clashes.contains(std::string_view(name)))
      invoke = found->second;
  }
  if (!invoke) {
    const std::string why = std::string("weft::process_main: no ProcessEntry named '") + name +
                            "' (or more than one) in this program";
    std::fprintf(stderr, "%s\n", why.c_str());
    report_outcome(report_fd, [&]() -> std::string { throw std::invalid_argument(why); });
    std::fflush(nullptr);
    ::_exit(2);
  }
  report_outcome(report_fd, [&] { return invoke(read_all(arguments_fd)); });
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace

void register_process_entry(const std::string& name, EntryInvoker invoke) noexcept {
  try {
    Registry& entries = registry();
    std::lock_guard lock(entries.mutex);
    if (!entries.entries.emplace(name, std::move(invoke)).second) ++entries.clashes[name];
  } catch (...) {
    // Out of memory before main: starting the entry will say it is missing.
  }
}

bool process_main_was_called() noexcept {
  return main_was_called.load();
}

}  // namespace detail

void process_main(int argc, char** argv) {
  detail::main_was_called = true;
  if (argc >= 3 && std::strcmp(argv[1], "--weft-process-entry") == 0)
    detail::run_spawned_entry(argv[2]);
}

}  // namespace weft

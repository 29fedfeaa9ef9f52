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
#include "process/forkserver.hpp"

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

void read_exactly(int fd, char* into, std::size_t size) {
  while (size > 0) {
    const ssize_t got = ::read(fd, into, size);
    if (got > 0) {
      into += got;
      size -= static_cast<std::size_t>(got);
    } else if (got == 0) {
      throw std::runtime_error("weft: the parent closed the arguments before sending them all");
    } else if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "weft: reading a child's arguments");
    }
  }
}

// The one frame the parent sends first (append_frame); no byte after it is
// read, so that an entry may go on using the socket.
std::string read_arguments_frame(int fd) {
  char header[kFrameHeaderBytes];
  read_exactly(fd, header, sizeof header);
  std::string_view view(header, sizeof header);
  const auto length = take_le<std::uint64_t>(view);
  std::string bytes(static_cast<std::size_t>(length), '\0');
  read_exactly(fd, bytes.data(), bytes.size());
  return bytes;
}

}  // namespace

EntryInvoker find_process_entry(std::string_view name) {
  Registry& entries = registry();
  std::lock_guard lock(entries.mutex);
  const auto found = entries.entries.find(name);
  if (found == entries.entries.end() || entries.clashes.contains(name)) return {};
  return found->second;
}

void run_spawned_entry(const char* name) {
  const EntryInvoker invoke = find_process_entry(name);
  if (!invoke) {
    const std::string why = std::string("weft::process_main: no ProcessEntry named '") + name +
                            "' (or more than one) in this program";
    std::fprintf(stderr, "%s\n", why.c_str());
    report_outcome(report_fd, [&]() -> std::string { throw std::invalid_argument(why); });
    std::fflush(nullptr);
    ::_exit(2);
  }
  report_outcome(report_fd, [&] { return invoke(read_arguments_frame(arguments_fd)); });
  std::fflush(nullptr);
  ::_exit(0);
}

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
  if (argc >= 2 && std::strcmp(argv[1], detail::forkserver_flag) == 0)
    detail::run_forkserver(3);
}

}  // namespace weft

// Which backend a new hub gets: WEFT_BACKEND, then HubOptions, then the
// build's default (meson option default_backend); `automatic` tries io_uring
// and falls back to epoll, saying why once per process.

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include <weft/runtime/log.hpp>

#include "runtime/reactor/backend.hpp"

#ifndef WEFT_DEFAULT_BACKEND
#define WEFT_DEFAULT_BACKEND 0
#endif

namespace weft::detail {

namespace {

BackendKind build_default() {
  switch (WEFT_DEFAULT_BACKEND) {
    case 1:
      return BackendKind::io_uring;
    case 2:
      return BackendKind::epoll;
    default:
      return BackendKind::automatic;
  }
}

BackendKind resolve(BackendKind requested) {
  if (const char* forced = std::getenv("WEFT_BACKEND"); forced && *forced) {
    const std::string value = forced;
    if (value == "io_uring") return BackendKind::io_uring;
    if (value == "epoll") return BackendKind::epoll;
    if (value == "auto") return BackendKind::automatic;
    throw std::invalid_argument("weft: WEFT_BACKEND='" + value +
                                "' names no backend (expected io_uring, epoll or auto)");
  }
  return requested == BackendKind::automatic ? build_default() : requested;
}

void report_fallback(const std::system_error& why) {
  static std::once_flag said;
  std::call_once(said, [&] {
    // what() reads "io_uring_queue_init: <strerror>".
    log(LogLevel::warning, std::string("io_uring unavailable (") + why.what() + "), using epoll");
  });
}

}  // namespace

std::unique_ptr<Backend> make_backend(BackendKind requested, int wake_fd) {
  switch (resolve(requested)) {
    case BackendKind::io_uring:
      return make_uring_backend(wake_fd);
    case BackendKind::epoll:
      return make_epoll_backend(wake_fd);
    case BackendKind::automatic:
      break;
  }
  try {
    return make_uring_backend(wake_fd);
  } catch (const std::system_error& e) {
    report_fallback(e);
    return make_epoll_backend(wake_fd);
  }
}

}  // namespace weft::detail

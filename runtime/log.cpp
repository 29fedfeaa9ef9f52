#include <weft/runtime/log.hpp>

#include <weft/runtime/errors.hpp>

#include "runtime/exception_text.hpp"

#include <cstdio>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>

namespace weft {

namespace {

// Calls hold it shared for as long as the handler runs; set_log_handler takes
// it exclusively, so it returns only once those calls have finished.
std::shared_mutex handler_mutex;
LogHandler& installed_handler() {
  static LogHandler* handler = new LogHandler;  // never destroyed: logging works during exit
  return *handler;
}

void write_to_stderr(LogLevel level, std::string_view message) noexcept {
  if (level < LogLevel::warning) return;
  std::fprintf(stderr, "weft: %.*s\n", static_cast<int>(message.size()), message.data());
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "unknown";
}

void set_log_handler(LogHandler handler) {
  LogHandler previous;
  {
    std::unique_lock lock(handler_mutex);
    previous = std::exchange(installed_handler(), std::move(handler));
  }
  // `previous` (and what it captured) goes here, outside the lock.
}

namespace detail {

void log(LogLevel level, std::string_view message) noexcept {
  std::shared_lock lock(handler_mutex);
  const LogHandler& handler = installed_handler();
  if (!handler) return write_to_stderr(level, message);
  try {
    handler(level, message);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft: the log handler threw (%s); the message was: %.*s\n", e.what(),
                 static_cast<int>(message.size()), message.data());
  } catch (...) {
    std::fprintf(stderr, "weft: the log handler threw; the message was: %.*s\n",
                 static_cast<int>(message.size()), message.data());
  }
}

std::string exception_text(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (const FiberExit& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace detail

}  // namespace weft

#pragma once
/// Where weft's own messages go: one process-wide handler, any thread.
///
/// Every line weft writes goes through it: the io_uring fallback, guard
/// pages, the default hub error handler (an exception that escaped a fiber
/// started with spawn_n, or a link callback), thread-cache `deliver` errors,
/// looping-call warnings and errors, what thread groups swallow. A failure
/// that weft logs and goes on from is one line that contains the exception's
/// what(); a swallowed kill is logged at `debug`.

#include <functional>
#include <string_view>

namespace weft {

enum class LogLevel { debug, info, warning, error };

/// "debug", "info", "warning" or "error".
std::string_view to_string(LogLevel level) noexcept;

/// Receives one message (no trailing newline). May run on any thread, on
/// several at once; it must not call set_log_handler.
using LogHandler = std::function<void(LogLevel, std::string_view)>;

/// Installs `handler` for the whole process, from any thread. An empty handler
/// restores the default: warnings and errors as one line each on stderr
/// ("weft: <message>"), debug and info dropped. Returns only once every call
/// into the previous handler has finished, so what it captured may go.
void set_log_handler(LogHandler handler);

namespace detail {
/// Sends `message` to the handler. Never throws: a handler that throws, or a
/// message that cannot be delivered, is written to stderr instead.
void log(LogLevel level, std::string_view message) noexcept;
}  // namespace detail

}  // namespace weft

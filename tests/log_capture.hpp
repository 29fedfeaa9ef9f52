#pragma once
// Collects what weft logs (weft/runtime/log.hpp) while it lives, from any
// thread; restores the default handler when it goes.

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

namespace weft_test {

struct LogLine {
  weft::LogLevel level;
  std::string text;
};

class LogCapture {
 public:
  LogCapture() {
    weft::set_log_handler([this](weft::LogLevel level, std::string_view text) {
      std::lock_guard lock(mutex_);
      lines_.push_back({level, std::string(text)});
    });
  }
  ~LogCapture() { weft::set_log_handler(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<LogLine> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::vector<LogLine> at(weft::LogLevel level) {
    std::vector<LogLine> found;
    for (LogLine& line : lines())
      if (line.level == level) found.push_back(std::move(line));
    return found;
  }

 private:
  std::mutex mutex_;
  std::vector<LogLine> lines_;
};

}  // namespace weft_test

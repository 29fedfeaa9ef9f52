#pragma once
// A fixture for tests that start child processes: HubWorkerLeakCheck, and no
// zombie (a child that exited and was never reaped) when a test ends.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <weft/process/step.hpp>

#include "hub_worker_check.hpp"

namespace weft_test {

/// Children of this process that have exited and not been reaped.
inline std::size_t zombie_children() {
  std::size_t count = 0;
  const std::string self = std::to_string(::getpid());
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');  // pid (comm) state ppid ...
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state, ppid;
    rest >> state >> ppid;
    if (ppid == self && state == "Z") ++count;
  }
  return count;
}

class ChildProcessLeakCheck : public HubWorkerLeakCheck {
 protected:
  void TearDown() override {
    HubWorkerLeakCheck::TearDown();
    EXPECT_EQ(zombie_children(), 0u) << "a child was left unreaped";
  }
};

/// Every event of `step` but StepIdle, up to and including the terminal one.
template <class Step>
auto read_all_events(Step& step) {
  std::vector<decltype(step.next())> events;
  while (!step.finished()) {
    auto event = step.next();
    if (!std::holds_alternative<weft::StepIdle>(event)) events.push_back(std::move(event));
  }
  return events;
}

}  // namespace weft_test

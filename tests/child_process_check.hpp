#pragma once
// A fixture for tests that start child processes: HubWorkerLeakCheck, and no
// zombie (a child that exited and was never reaped) when a test ends.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <weft/process/destroyable.hpp>
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

/// The forkserver children of process `parent` (at most one while it runs).
inline std::vector<pid_t> forkservers_of(pid_t parent) {
  std::vector<pid_t> servers;
  const std::string wanted = std::to_string(parent);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state, ppid;
    rest >> state >> ppid;
    if (ppid != wanted || state == "Z") continue;
    std::ifstream cmdline(entry.path() / "cmdline");
    const std::string arguments((std::istreambuf_iterator<char>(cmdline)),
                                std::istreambuf_iterator<char>());
    if (arguments.find("--weft-forkserver") != std::string::npos)
      servers.push_back(static_cast<pid_t>(std::stoi(entry.path().filename().string())));
  }
  return servers;
}

inline const weft::ProcessEntry<void()> forkserver_warm_up{"test.forkserver_warm_up", [] {}};

/// The forkserver keeps one fd of its parent's until exit, by design: a test
/// program that uses it starts it before any test counts fds.
inline void start_the_forkserver() {
  weft::DestroyableProcess warm_up(weft::StartMethod::forkserver, forkserver_warm_up);
  warm_up.start();
  warm_up.get_or_throw();
}

class ChildProcessLeakCheck : public HubWorkerLeakCheck {
 protected:
  void TearDown() override {
    HubWorkerLeakCheck::TearDown();
    EXPECT_EQ(zombie_children(), 0u) << "a child was left unreaped";
  }
};

/// Names the instances of a test parametrised over the start methods.
inline std::string start_method_name(const ::testing::TestParamInfo<weft::StartMethod>& info) {
  return weft::to_string(info.param);
}

/// All three start methods, for INSTANTIATE_TEST_SUITE_P.
inline auto all_start_methods() {
  return ::testing::Values(weft::StartMethod::fork, weft::StartMethod::spawn,
                           weft::StartMethod::forkserver);
}

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

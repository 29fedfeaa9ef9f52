#include <weft/process/step.hpp>

#include <cxxabi.h>
#include <sys/wait.h>

#include <cstdlib>
#include <memory>

#include "process/child_report.hpp"

namespace weft {

ThreadCrashError::ThreadCrashError(pid_t tid)
    : std::runtime_error("Thread " + std::to_string(tid) +
                         " crashed: the step ended without StepDone or StepSystemError."),
      tid_(tid) {}

std::string StepSummary::describe() const {
  if (failed.empty()) return {};
  std::string text = "During step execution errors occurred in steps:";
  for (std::size_t i = 0; i < failed.size(); ++i) {
    const StepFailure& failure = failed[i];
    text += i == 0 ? " " : "; ";
    text += "In step " + failure.step + " (" + std::to_string(failure.attempts) +
            (failure.attempts == 1 ? " attempt" : " attempts") + "): ";
    if (failure.crashed) text += "crashed: ";
    text += failure.type_name + ": " + failure.message;
  }
  return text;
}

ChildProcessCrashError::ChildProcessCrashError(pid_t pid, int exit_code, std::string output)
    : std::runtime_error("Child process " + std::to_string(pid) + " crashed with exit code " +
                         std::to_string(exit_code) + "." + (output.empty() ? "" : "\n" + output)),
      pid_(pid),
      exit_code_(exit_code),
      output_(std::move(output)) {}

namespace detail {

int exit_code_of(int wait_status) noexcept {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
  return wait_status;
}

ChildStepFrame parse_child_step_frame(std::string_view frame) {
  ChildStepFrame parsed;
  if (!frame.empty() && frame.front() == 'V') {
    parsed.kind = ChildStepFrame::Kind::value;
    parsed.value = frame.substr(1);
    return parsed;
  }
  std::exception_ptr error;
  decode_outcome(frame, error);
  if (!error) {
    parsed.kind = ChildStepFrame::Kind::done;
    return parsed;
  }
  parsed.kind = ChildStepFrame::Kind::error;
  try {
    std::rethrow_exception(error);
  } catch (const ChildError& e) {
    parsed.type_name = e.type_name();
    parsed.message = e.what();
  }
  return parsed;
}

std::string demangled_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

}  // namespace detail
}  // namespace weft

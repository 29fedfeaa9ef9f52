#include <weft/process/step.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

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

namespace detail {

std::string demangled_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

}  // namespace detail
}  // namespace weft

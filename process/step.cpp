#include <weft/process/step.hpp>

#include <cxxabi.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "process/child_report.hpp"

namespace weft {

ThreadCrashError::ThreadCrashError(pid_t tid)
    : std::runtime_error("Thread " + std::to_string(tid) +
                         " crashed: the step ended without StepDone or StepSystemError."),
      tid_(tid) {}

std::string StepSummary::describe() const {
  std::string text;
  if (!failed.empty()) text = "During step execution errors occurred in steps:";
  for (std::size_t i = 0; i < failed.size(); ++i) {
    const StepFailure& failure = failed[i];
    text += i == 0 ? " " : "; ";
    text += "In step " + failure.step + " (" + std::to_string(failure.attempts) +
            (failure.attempts == 1 ? " attempt" : " attempts") + "): ";
    if (failure.crashed) text += "crashed: ";
    text += failure.type_name + ": " + failure.message;
  }
  if (interrupted) {
    if (!text.empty()) text += ". ";
    text += "Execution was interrupted; unfinished steps:";
    for (std::size_t i = 0; i < unfinished.size(); ++i)
      text += (i == 0 ? " " : ", ") + unfinished[i];
    if (unfinished.empty()) text += " none";
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
namespace {

// SIGINTs counted while a watch is active; lock-free, so the handler may add.
std::atomic<unsigned long> sigints{0};
static_assert(std::atomic<unsigned long>::is_always_lock_free);

void count_sigint(int) {
  sigints.fetch_add(1, std::memory_order_relaxed);
}

struct SigintWatchers {
  std::mutex mutex;
  std::size_t active = 0;
};

SigintWatchers& sigint_watchers() {
  static SigintWatchers* const instance = new SigintWatchers;  // used by at-exit destructors too
  return *instance;
}

}  // namespace

SigintWatch::SigintWatch(bool enabled) {
  if (!enabled) return;
  SigintWatchers& watchers = sigint_watchers();
  std::lock_guard lock(watchers.mutex);
  if (watchers.active == 0) {
    struct sigaction current {};
    if (::sigaction(SIGINT, nullptr, &current) != 0) return;
    const bool default_disposition =
        (current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL;
    if (!default_disposition) return;  // the program handles SIGINT itself
    struct sigaction counting {};
    counting.sa_handler = count_sigint;
    sigemptyset(&counting.sa_mask);
    counting.sa_flags = SA_RESTART;
    if (::sigaction(SIGINT, &counting, nullptr) != 0) return;
  }
  ++watchers.active;
  active_ = true;
  first_ = sigints.load();
}

SigintWatch::~SigintWatch() {
  if (!active_) return;
  SigintWatchers& watchers = sigint_watchers();
  std::lock_guard lock(watchers.mutex);
  if (--watchers.active > 0) return;
  struct sigaction current {};
  // Back to the default, unless the program has set a handler of its own since.
  if (::sigaction(SIGINT, nullptr, &current) == 0 && current.sa_handler == count_sigint) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    ::sigaction(SIGINT, &default_action, nullptr);
  }
}

bool SigintWatch::seen() const noexcept {
  return active_ && sigints.load() != first_;
}

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

std::string demangled_name(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

std::string demangled_name(const std::type_info& type) {
  return demangled_name(type.name());
}

}  // namespace detail
}  // namespace weft

#include "runtime/stack_overflow.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <mutex>

#include "runtime/hub_core.hpp"

namespace weft::detail {

namespace {

struct sigaction previous_action;

// Async-signal-safe formatting: append text or a number to a fixed buffer.
struct Message {
  char text[256];
  std::size_t length = 0;

  void add(const char* s) {
    while (*s && length + 1 < sizeof text)
      text[length++] = *s++;
  }
  void add(std::uintptr_t n, int base = 10) {
    char digits[24];
    int count = 0;
    do {
      digits[count++] = "0123456789abcdef"[n % base];
      n /= base;
    } while (n);
    if (base == 16) add("0x");
    while (count && length + 1 < sizeof text)
      text[length++] = digits[--count];
  }
};

bool report_if_guard_hit(void* address) {
  HubCore* hub = HubCore::current();
  if (!hub) return false;
  const FiberBase* fiber = hub->running_fiber();
  if (!fiber) return false;
  const auto base = reinterpret_cast<std::uintptr_t>(FiberAccess::stack_base(*fiber));
  const auto fault = reinterpret_cast<std::uintptr_t>(address);
  const std::size_t guard = hub->stack_guard_size() ? hub->stack_guard_size() : 4096;
  if (base == 0 || fault >= base || fault < base - guard) return false;
  Message message;
  message.add("weft: stack overflow in fiber #");
  message.add(static_cast<std::uintptr_t>(fiber->id()));
  message.add(" '");
  message.add(fiber->name().empty() ? "-" : fiber->name().c_str());
  message.add("' (stack of ");
  message.add(static_cast<std::uintptr_t>(FiberAccess::stack_size(*fiber)));
  message.add(" bytes, guard page hit at ");
  message.add(fault, 16);
  message.add("); spawn it with a bigger SpawnOptions::stack_size\n");
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, message.text, message.length);
  return true;
}

void on_segv(int signal, siginfo_t* info, void* context) {
  // A SIGSEGV sent by raise() or kill() (si_code <= 0) has no fault address.
  const bool sent = info->si_code <= 0;
  if (!sent) report_if_guard_hit(info->si_addr);
  // Hand the fault on: to the previous handler, or back to the default action
  // (returning re-executes the faulting access, which then kills the process).
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction) return previous_action.sa_sigaction(signal, info, context);
  } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
    return previous_action.sa_handler(signal);
  }
  ::sigaction(SIGSEGV, &previous_action, nullptr);
  // A sent one re-executes nothing: send it again, to be delivered with the
  // default action once this handler returns (it is blocked until then).
  if (sent) ::raise(signal);
}

}  // namespace

void install_stack_overflow_handler() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction action {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGSEGV, &action, &previous_action);
  });
}

std::vector<char> make_signal_stack() {
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return {};
  std::vector<char> memory(std::max<std::size_t>(64 * 1024, SIGSTKSZ));
  stack_t stack{};
  stack.ss_sp = memory.data();
  stack.ss_size = memory.size();
  if (::sigaltstack(&stack, nullptr) != 0) return {};
  return memory;
}

void release_signal_stack(std::vector<char>& memory) noexcept {
  if (memory.empty()) return;
  stack_t disable{};
  disable.ss_flags = SS_DISABLE;
  ::sigaltstack(&disable, nullptr);
  memory.clear();
  memory.shrink_to_fit();
}

}  // namespace weft::detail

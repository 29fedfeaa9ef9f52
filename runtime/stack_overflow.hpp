#pragma once
// Names a fiber stack overflow instead of dying of a bare SIGSEGV: a handler on
// an alternate signal stack checks whether the fault hit the guard page of the
// running fiber's stack, says so on stderr (which fiber, which stack), and lets
// the process die of the SIGSEGV as it would have.

#include <vector>

namespace weft::detail {

/// Installs the process-wide SIGSEGV handler once; other faults go on to the
/// handler that was there before (ASan's, a crash reporter's, or the default).
void install_stack_overflow_handler();
/// An alternate signal stack for the calling thread if it has none; empty if it
/// had one already. Give it back with release_signal_stack on the same thread.
std::vector<char> make_signal_stack();
void release_signal_stack(std::vector<char>& stack) noexcept;

}  // namespace weft::detail

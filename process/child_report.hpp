#pragma once
/// What a child process sends its parent through its report pipe, as frames
/// (append_frame): the outcome of the work it ran, 'R' and the encoded result
/// or 'E' and its exception (type names and what()s, outermost first, one for
/// each level of nesting).

#include <exception>
#include <string>
#include <string_view>

#include <weft/process/process_entry.hpp>
#include <weft/runtime/detail/unique_function.hpp>

namespace weft::detail {

/// In the child: runs `work` (which returns the encoded result) and writes
/// its outcome, as one frame, to `fd`, blocking until all of it is written.
void report_outcome(int fd, UniqueFunction<std::string()> work) noexcept;

/// The current exception (inside a catch) as an 'E' payload.
std::string encode_current_exception();

/// In the parent: the outcome payload of report_outcome. Returns the result
/// bytes of an 'R' payload; for an 'E' payload sets `error` to the child's
/// exception as a ChildError, nested as it was.
std::string decode_outcome(std::string_view payload, std::exception_ptr& error);

/// In a child that process_main started (spawned, or forked by the
/// forkserver): runs the ProcessEntry `name` on the arguments frame it reads
/// from fd 3, reports its outcome on fd 4, and exits.
[[noreturn]] void run_spawned_entry(const char* name);

/// The ProcessEntry registered as `name` (for a child that runs entries it
/// was given by name), or an empty function if none is, or more than one.
EntryInvoker find_process_entry(std::string_view name);

/// Writes all of `bytes` to `fd`, blocking; false if the reader has gone.
bool write_fully(int fd, std::string_view bytes) noexcept;

}  // namespace weft::detail

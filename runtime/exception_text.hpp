#pragma once
/// What weft's log lines say of an exception it caught and cannot rethrow
/// (a looping call's failure, a managed thread's or process's end).

#include <exception>
#include <string>

namespace weft::detail {

/// The exception's what(): a std::exception's or FiberExit's; "unknown
/// exception" for anything else.
std::string exception_text(const std::exception_ptr& error);

}  // namespace weft::detail

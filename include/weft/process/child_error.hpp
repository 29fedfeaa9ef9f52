#pragma once
/// How a child process's failure reaches its parent: the child's exception as
/// ChildError (its type and what(), nested causes nested), and an out-of-memory
/// death as ChildOutOfMemoryError.

#include <stdexcept>
#include <string>

namespace weft {

/// An exception thrown in a child process, as the parent sees it: what()
/// is the original's, type_name() its type as written in C++ (e.g.
/// "std::invalid_argument"; for an exception thrown with
/// std::throw_with_nested, the type the user threw). A nested cause arrives
/// nested: std::rethrow_if_nested on a ChildError throws a ChildError for the
/// cause. An exception not derived from std::exception arrives with its type
/// name and what() "unknown exception".
class ChildError : public std::runtime_error {
 public:
  ChildError(std::string type_name, const std::string& message)
      : std::runtime_error(message), type_name_(std::move(type_name)) {}
  const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

/// The child was killed by a SIGKILL that weft did not send (the kernel's
/// out-of-memory killer, most likely), or exited with code 137.
class ChildOutOfMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace weft

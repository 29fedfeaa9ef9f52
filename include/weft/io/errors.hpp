#pragma once
/// Errors of weft's io beyond errno: std::system_error codes in weft's own
/// category.

#include <string>
#include <system_error>
#include <type_traits>

namespace weft {

enum class io_errc {
  /// The peer closed the stream before all the bytes asked for had come.
  end_of_stream = 1,
};

const std::error_category& io_category() noexcept;

/// getaddrinfo's failures: the error values are its EAI_* codes and the
/// messages gai_strerror's ("Name or service not known"). EAI_SYSTEM is
/// reported as the errno it stands for, in std::generic_category().
const std::error_category& resolver_category() noexcept;

inline std::error_code make_error_code(io_errc e) noexcept {
  return {static_cast<int>(e), io_category()};
}

}  // namespace weft

template <>
struct std::is_error_code_enum<weft::io_errc> : std::true_type {};

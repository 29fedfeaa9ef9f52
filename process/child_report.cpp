#include "process/child_report.hpp"

#include <cxxabi.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <typeinfo>
#include <utility>
#include <vector>

#include <weft/process/child_error.hpp>
#include <weft/process/codec.hpp>
#include <weft/process/process_entry.hpp>

namespace weft::detail {
namespace {

using Chain = std::vector<std::pair<std::string, std::string>>;  // (type, what), outermost first

// The type the user threw: std::throw_with_nested wraps it in a library type.
std::string thrown_type_name(const std::type_info& type) {
  std::string name = demangled_name(type);
  const std::string_view wrapper = "std::_Nested_exception<";
  if (name.starts_with(wrapper) && name.ends_with('>')) {
    name = name.substr(wrapper.size(), name.size() - wrapper.size() - 1);
  }
  return name;
}

Chain chain_of(std::exception_ptr current) {
  Chain chain;
  while (current) {
    try {
      std::rethrow_exception(current);
    } catch (const std::exception& e) {
      chain.emplace_back(thrown_type_name(typeid(e)), e.what());
      const auto* nested = dynamic_cast<const std::nested_exception*>(&e);
      current = nested ? nested->nested_ptr() : nullptr;
    } catch (...) {
      const std::type_info* type = abi::__cxa_current_exception_type();
      chain.emplace_back(type ? demangled_name(*type) : std::string("unknown"),
                         "unknown exception");
      current = nullptr;
    }
  }
  return chain;
}

// The ChildError for chain[from..], each level nesting the next.
std::exception_ptr nest(const Chain& chain, std::size_t from) {
  if (from + 1 == chain.size())
    return std::make_exception_ptr(ChildError(chain[from].first, chain[from].second));
  try {
    std::rethrow_exception(nest(chain, from + 1));
  } catch (...) {
    try {
      std::throw_with_nested(ChildError(chain[from].first, chain[from].second));
    } catch (...) {
      return std::current_exception();
    }
  }
  return nullptr;  // not reached
}

}  // namespace

bool write_fully(int fd, std::string_view bytes) noexcept {
  while (!bytes.empty()) {
    const ssize_t wrote = ::write(fd, bytes.data(), bytes.size());
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(wrote));
  }
  return true;
}

void write_child_frame(int fd, std::string_view payload) {
  std::string frame;
  append_frame(frame, payload);
  if (!write_fully(fd, frame))
    throw std::system_error(errno, std::generic_category(), "weft: writing to the parent");
}

std::string encode_current_exception() {
  std::string payload = "E";
  Codec<Chain>::encode(chain_of(std::current_exception()), payload);
  return payload;
}

void report_outcome(int fd, UniqueFunction<std::string()> work) noexcept {
  std::string payload;
  try {
    const std::string result = work();
    payload.reserve(result.size() + 1);
    payload.push_back('R');
    payload.append(result);
  } catch (...) {
    try {
      payload = encode_current_exception();
    } catch (...) {
      payload = "E";  // no memory to say more: an empty chain
    }
  }
  std::string frame;
  try {
    append_frame(frame, payload);
  } catch (...) {
    return;
  }
  write_fully(fd, frame);
}

std::string decode_outcome(std::string_view payload, std::exception_ptr& error) {
  if (payload.empty()) throw CodecError("weft: an empty report from a child");
  const char kind = payload.front();
  payload.remove_prefix(1);
  if (kind == 'R') return std::string(payload);
  if (kind != 'E') throw CodecError("weft: a report from a child of an unknown kind");
  const Chain chain = payload.empty() ? Chain{} : decode_whole<Chain>(payload);
  error = chain.empty() ? std::make_exception_ptr(ChildError("unknown", "unknown exception"))
                        : nest(chain, 0);
  return {};
}

}  // namespace weft::detail

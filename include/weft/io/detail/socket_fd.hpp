#pragma once
/// The fd an io object owns, and what its calls need to know about it. Not
/// part of the public contract.

#include <cstdint>

namespace weft::detail {

struct SocketFd {
  int fd = -1;
  std::uint64_t id = 0;      // names the open file (see io/backend.hpp, watch)
  bool nonblocking = false;  // its O_NONBLOCK, as last set
};

}  // namespace weft::detail

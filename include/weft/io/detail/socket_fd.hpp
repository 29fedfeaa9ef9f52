#pragma once
/// The fd an io object owns, and what its calls need to know about it. Not
/// part of the public contract.

#include <cstdint>

namespace weft::detail {

class AcceptQueue;

struct SocketFd {
  int fd = -1;
  std::uint64_t id = 0;                 // names the open file (see runtime/reactor/backend.hpp, watch)
  bool nonblocking = false;             // its O_NONBLOCK, as last set
  AcceptQueue* accept_queue = nullptr;  // listeners on io_uring: the multishot accept
  std::uint32_t calls_waiting = 0;      // fibers inside a call on it (close wakes them)
};

}  // namespace weft::detail

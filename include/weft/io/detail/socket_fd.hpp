#pragma once
/// The fd an io object owns, and what its calls need to know about it. Not
/// part of the public contract.

#include <cstdint>
#include <memory>

namespace weft::detail {

class AcceptQueue;
class HubLifeline;

struct SocketFd {
  int fd = -1;
  std::uint64_t id = 0;      // names the open file (see runtime/reactor/backend.hpp, watch)
  bool nonblocking = false;  // its O_NONBLOCK, as last set
  AcceptQueue* accept_queue = nullptr;   // listeners on io_uring: the multishot accept
  std::uint32_t calls_waiting = 0;       // fibers inside a call on it (close wakes them)
  std::shared_ptr<HubLifeline> used_on{};  // the hub whose fibers made the last call on it
};

}  // namespace weft::detail

#include "io/socket_fd.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include <weft/io/errors.hpp>

#include <weft/process/to_thread.hpp>

#include "runtime/hub_core.hpp"
#include "runtime/hub_lifeline.hpp"
#include "runtime/reactor/accept_queue.hpp"
#include "runtime/reactor/io_call.hpp"

namespace weft::detail {

void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

namespace {

bool parse_numeric(const std::string& host, int port, SocketAddress& out) {
  in_addr parsed{};
  if (host.empty() || inet_pton(AF_INET, host.c_str(), &parsed) == 1) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<std::uint16_t>(port));
    if (!host.empty()) inet_pton(AF_INET, host.c_str(), &v4.sin_addr);
    std::memcpy(&out.storage, &v4, sizeof v4);
    out.length = sizeof v4;
    return true;
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<std::uint16_t>(port));
    std::memcpy(&out.storage, &v6, sizeof v6);
    out.length = sizeof v6;
    return true;
  }
  return false;
}

std::vector<SocketAddress> lookup(const std::string& host, int port, int socktype, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc == EAI_SYSTEM) throw_errno(errno, "weft: resolving '" + host + "'");
  if (rc != 0) throw std::system_error(rc, resolver_category(), "weft: resolving '" + host + "'");
  std::vector<SocketAddress> addresses;
  for (addrinfo* a = found; a; a = a->ai_next) {
    SocketAddress address;
    std::memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
    address.length = a->ai_addrlen;
    addresses.push_back(address);
  }
  ::freeaddrinfo(found);
  return addresses;
}

}  // namespace

std::vector<SocketAddress> resolve(const std::string& host, int port, int socktype, bool passive) {
  if (port < 0 || port > 65535) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "weft: port " + std::to_string(port) + " out of range");
  }
  if (host.find('\0') != std::string::npos) {
    throw std::invalid_argument("weft: the host name '" + host.substr(0, host.find('\0')) +
                                "\\0...' has a NUL byte in it");
  }
  SocketAddress numeric;
  if (parse_numeric(host, port, numeric)) return {numeric};
  if (current_fiber()) {
    return to_thread::run_sync([&] { return lookup(host, port, socktype, passive); });
  }
  return lookup(host, port, socktype, passive);
}

SocketFd open_socket(int family, int type, const char* what) {
  HubCore* hub = HubCore::current();
  const bool nonblocking = !hub || !hub->backend().runs_operations();
  const int fd = ::socket(family, type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) throw_errno(errno, what);
  return SocketFd{fd, next_fd_id(), nonblocking};
}

SocketFd adopt_socket(int fd, bool nonblocking) noexcept {
  return SocketFd{fd, next_fd_id(), nonblocking};
}

namespace {

// epoll wants non-blocking calls; io_uring blocking ones, so that the kernel
// waits (a non-blocking file would answer EAGAIN from inside the ring).
HubCore& hub_for(SocketFd& socket, const char* what) {
  if (socket.fd < 0) throw_errno(EBADF, what);
  HubCore& hub = current_hub_core(what);
  if (socket.used_on != hub.lifeline()) [[unlikely]]
    socket.used_on = hub.lifeline();
  const bool wanted = !hub.backend().runs_operations();
  if (wanted != socket.nonblocking) {
    const int flags = ::fcntl(socket.fd, F_GETFL);
    if (flags < 0 ||
        ::fcntl(socket.fd, F_SETFL, wanted ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) < 0) {
      throw_errno(errno, what);
    }
    socket.nonblocking = wanted;
  }
  return hub;
}

// io_uring: one multishot accept per listener, started on the first accept.
// Returns the fd or -errno, or nullopt where it cannot serve (epoll, an older
// kernel, or a listener whose multishot runs on another hub).
std::optional<int> accept_multishot(HubCore& hub, SocketFd& listener, const char* what) {
  AcceptQueue*& queue = listener.accept_queue;
  // Another hub's: one-shot accepts here. Stopped (cancelled at its bound, or
  // failed): take() serves what it queued, then starts it again.
  if (queue && !queue->serves(hub)) return std::nullopt;
  if (!queue && !(queue = AcceptQueue::start(hub, listener.fd))) return std::nullopt;
  FiberBase& self = hub.require_fiber(what);
  if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
  return queue->take(hub, self, what);
}

}  // namespace

int socket_call(SocketFd& socket, IoRequest& request, const char* what) {
  hub_for(socket, what);
  request.fd = socket.fd;
  struct Waiting {  // close() from another fiber must know to wake this one
    std::uint32_t& count;
    explicit Waiting(std::uint32_t& c) : count(++c) {}
    ~Waiting() { --count; }
  } waiting(socket.calls_waiting);
  return run_io(request, socket.id, what);
}

SocketFd accept_socket(SocketFd& listener, const char* what) {
  HubCore& hub = hub_for(listener, what);
  std::optional<int> taken;
  if (hub.backend().runs_operations()) taken = accept_multishot(hub, listener, what);
  if (!taken) {
    IoRequest r;
    r.op = IoRequest::Op::accept;
    taken = socket_call(listener, r, what);
  }
  const int fd = *taken;
  if (fd < 0) throw_errno(-fd, what);
  // Non-blocking exactly when the listener is: epoll's accept4 asks for
  // SOCK_NONBLOCK, io_uring's does not.
  return adopt_socket(fd, listener.nonblocking);
}

int connect_socket(SocketFd& socket, const void* address, socklen_t length, const char* what,
                   std::int64_t deadline_ns) {
  IoRequest r;
  r.deadline_ns = deadline_ns;
  r.op = IoRequest::Op::connect;
  r.address = const_cast<void*>(address);
  r.address_length = length;
  return socket_call(socket, r, what);
}

namespace {

// What a close from another thread leaves to the hub whose fibers use the
// socket: its waiters, its lines and its multishot accept live there. Dropped
// unrun (the hub ended first), it closes the fd where it is.
class CloseOnItsHub {
 public:
  CloseOnItsHub(int fd, AcceptQueue* accept_queue) noexcept
      : fd_(fd), accept_queue_(accept_queue) {}
  CloseOnItsHub(CloseOnItsHub&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), accept_queue_(other.accept_queue_) {}
  CloseOnItsHub& operator=(CloseOnItsHub&&) = delete;
  ~CloseOnItsHub() {
    if (fd_ < 0) return;
    if (accept_queue_) accept_queue_->release();
    ::close(fd_);
  }

  void operator()() noexcept {
    if (accept_queue_) accept_queue_->release();
    HubCore::current()->backend().forget(fd_, true);  // wakes the fibers waiting on it
    ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_;
  AcceptQueue* accept_queue_;
};

}  // namespace

void close_socket(SocketFd& socket) noexcept {
  if (socket.fd >= 0 && socket.used_on && !socket.used_on->is_callers()) {
    UniqueFunction<void()> close;
    try {
      close =
          CloseOnItsHub(std::exchange(socket.fd, -1), std::exchange(socket.accept_queue, nullptr));
      socket.used_on->post_if_alive(close);
    } catch (const std::bad_alloc&) {
      // No memory to hand it over: `close` closes it here.
    }
    socket.used_on.reset();
    return;  // `close`, if the hub has ended, closes it here
  }
  if (socket.accept_queue) {
    socket.accept_queue->release();
    socket.accept_queue = nullptr;
  }
  if (socket.fd < 0) return;
  if (HubCore* hub = HubCore::current())
    hub->backend().forget(socket.fd, socket.calls_waiting != 0);
  ::close(socket.fd);
  socket.fd = -1;
  socket.used_on.reset();
}

int socket_port(const SocketFd& socket, bool peer) {
  const int fd = socket.fd;
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  if (rc < 0) throw_errno(errno, peer ? "getpeername" : "getsockname");
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

}  // namespace weft::detail

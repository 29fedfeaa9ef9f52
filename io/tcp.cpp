#include <weft/io/tcp.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/timeout.hpp>

#include "io/socket_fd.hpp"

namespace weft {

namespace {

constexpr detail::StreamNames tcp_stream_names{
    .read_some = "TcpStream::read_some",
    .read_exact = "TcpStream::read_exact",
    .readv = "TcpStream::readv",
    .write_all = "TcpStream::write_all",
    .writev = "TcpStream::writev",
    .shutdown = "TcpStream::shutdown",
};

}  // namespace

// --- TcpStream ------------------------------------------------------------------

TcpStream::TcpStream() noexcept : ByteStream(tcp_stream_names, {}) {}

TcpStream::TcpStream(detail::SocketFd socket) noexcept : ByteStream(tcp_stream_names, socket) {}

TcpStream TcpStream::connect(const std::string& host, int port) {
  return connect_before(host, port, 0);
}

TcpStream TcpStream::connect(const std::string& host, int port, std::chrono::nanoseconds timeout) {
  const std::int64_t deadline_ns = detail::deadline_after(timeout);
  // The largest deadline never passes: no timer for it, in the kernel or the hub.
  const bool forever = deadline_ns == std::numeric_limits<std::int64_t>::max();
  return connect_before(host, port, forever ? 0 : deadline_ns);
}

// Each attempt carries the deadline down to the kernel (a linked timeout on
// io_uring); only a name lookup needs a Timeout of its own.
TcpStream TcpStream::connect_before(const std::string& host, int port, std::int64_t deadline_ns) {
  const std::string where = "TcpStream::connect to " + host + ":" + std::to_string(port);
  std::vector<detail::SocketAddress> addresses;
  if (deadline_ns == 0) {
    addresses = detail::resolve(host, port, SOCK_STREAM, false);
  } else {
    const auto left = std::chrono::nanoseconds(deadline_ns) - weft::now().time_since_epoch();
    if (left.count() <= 0) detail::throw_errno(ETIMEDOUT, where);
    Timeout lookup(left);
    try {
      addresses = detail::resolve(host, port, SOCK_STREAM, false);
    } catch (const TimeoutError& e) {
      if (!e.is(lookup)) throw;
      detail::throw_errno(ETIMEDOUT, where);
    }
  }
  int last_error = EHOSTUNREACH;
  for (const auto& address : addresses) {
    TcpStream stream(detail::open_socket(address.family(), SOCK_STREAM, "socket (TcpStream)"));
    const int rc = detail::connect_socket(stream.socket_, &address.storage, address.length,
                                          "TcpStream::connect", deadline_ns);
    if (rc == 0) return stream;
    last_error = -rc;
    if (last_error == ETIMEDOUT) break;
  }
  detail::throw_errno(last_error, where);
}

void TcpStream::set_nodelay(bool enabled) {
  const int value = enabled ? 1 : 0;
  if (::setsockopt(socket_.fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) < 0) {
    detail::throw_errno(errno, "setsockopt(TCP_NODELAY)");
  }
}

int TcpStream::local_port() const {
  return detail::socket_port(socket_, false);
}

int TcpStream::peer_port() const {
  return detail::socket_port(socket_, true);
}

// --- TcpListener ----------------------------------------------------------------

TcpListener::TcpListener(TcpListener&& other) noexcept
    : socket_(std::exchange(other.socket_, {})) {}

TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
  if (this != &other) {
    close();
    socket_ = std::exchange(other.socket_, {});
  }
  return *this;
}

TcpListener::~TcpListener() {
  close();
}

TcpListener TcpListener::bind(const std::string& host, int port, int backlog) {
  return bind(host, port, ListenOptions{.backlog = backlog});
}

TcpListener TcpListener::bind(const std::string& host, int port, ListenOptions options) {
  const std::string where = host + ":" + std::to_string(port);
  int last_error = EADDRNOTAVAIL;
  for (const auto& address : detail::resolve(host, port, SOCK_STREAM, true)) {
    TcpListener listener(
        detail::open_socket(address.family(), SOCK_STREAM, "socket (TcpListener)"));
    const int fd = listener.socket_.fd;
    const int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)) {
      detail::throw_errno(errno, "TcpListener::bind " + where + ": setsockopt");
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) < 0) {
      last_error = errno;
      continue;
    }
    if (::listen(fd, options.backlog) < 0) {
      detail::throw_errno(errno, "TcpListener::bind " + where + ": listen");
    }
    return listener;
  }
  detail::throw_errno(last_error, "TcpListener::bind " + where);
}

TcpStream TcpListener::accept() {
  return TcpStream(detail::accept_socket(socket_, "TcpListener::accept"));
}

void TcpListener::close() noexcept {
  detail::close_socket(socket_);
}

int TcpListener::local_port() const {
  return detail::socket_port(socket_, false);
}

}  // namespace weft

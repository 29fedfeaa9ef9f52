#include <weft/io/tcp.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include <weft/runtime/timeout.hpp>

#include "io/socket_fd.hpp"

namespace weft {

namespace {

using Op = detail::IoRequest::Op;

detail::IoRequest request(Op op, void* buffer, std::size_t length) {
  detail::IoRequest r;
  r.op = op;
  r.buffer = buffer;
  r.length = length;
  return r;
}

std::size_t checked(int rc, const char* what) {
  if (rc < 0) detail::throw_errno(-rc, what);
  return static_cast<std::size_t>(rc);
}

}  // namespace

// --- TcpStream ------------------------------------------------------------------

TcpStream::TcpStream(TcpStream&& other) noexcept : socket_(std::exchange(other.socket_, {})) {}

TcpStream& TcpStream::operator=(TcpStream&& other) noexcept {
  if (this != &other) {
    close();
    socket_ = std::exchange(other.socket_, {});
  }
  return *this;
}

TcpStream::~TcpStream() {
  close();
}

TcpStream TcpStream::connect(const std::string& host, int port) {
  int last_error = EHOSTUNREACH;
  for (const auto& address : detail::resolve(host, port, SOCK_STREAM, false)) {
    TcpStream stream(detail::open_socket(address.family(), SOCK_STREAM, "socket (TcpStream)"));
    detail::IoRequest r;
    r.op = Op::connect;
    r.address = const_cast<sockaddr_storage*>(&address.storage);
    r.address_length = address.length;
    const int rc = detail::socket_call(stream.socket_, r, "TcpStream::connect");
    if (rc == 0) return stream;
    last_error = -rc;
  }
  detail::throw_errno(last_error, "TcpStream::connect to " + host + ":" + std::to_string(port));
}

TcpStream TcpStream::connect(const std::string& host, int port, std::chrono::nanoseconds timeout) {
  Timeout deadline(timeout);
  try {
    return connect(host, port);
  } catch (const TimeoutError& e) {
    if (!e.is(deadline)) throw;
    detail::throw_errno(ETIMEDOUT, "TcpStream::connect to " + host + ":" + std::to_string(port));
  }
}

std::size_t TcpStream::read_some(void* buffer, std::size_t size) {
  auto r = request(Op::recv, buffer, size);
  return checked(detail::socket_call(socket_, r, "TcpStream::read_some"), "TcpStream::read_some");
}

void TcpStream::read_exact(void* buffer, std::size_t size) {
  auto* bytes = static_cast<char*>(buffer);
  std::size_t done = 0;
  while (done < size) {
    const std::size_t got = read_some(bytes + done, size - done);
    if (got == 0) {
      throw std::system_error(make_error_code(io_errc::end_of_stream),
                              "TcpStream::read_exact: the peer closed the stream after " +
                                  std::to_string(done) + " of " + std::to_string(size) + " bytes");
    }
    done += got;
  }
}

std::size_t TcpStream::readv(const iovec* buffers, int count) {
  detail::IoRequest r;
  r.op = Op::readv;
  r.address = const_cast<iovec*>(buffers);
  r.address_length = static_cast<unsigned>(count);
  return checked(detail::socket_call(socket_, r, "TcpStream::readv"), "TcpStream::readv");
}

void TcpStream::write_all(const void* buffer, std::size_t size) {
  const auto* bytes = static_cast<const char*>(buffer);
  while (size > 0) {
    auto r = request(Op::send, const_cast<char*>(bytes), size);
    const std::size_t sent =
        checked(detail::socket_call(socket_, r, "TcpStream::write_all"), "TcpStream::write_all");
    bytes += sent;
    size -= sent;
  }
}

std::size_t TcpStream::writev(const iovec* buffers, int count) {
  std::vector<iovec> left(buffers, buffers + count);
  std::size_t total = 0;
  std::size_t first = 0;
  while (first < left.size()) {
    detail::IoRequest r;
    r.op = Op::writev;
    r.address = left.data() + first;
    r.address_length = static_cast<unsigned>(left.size() - first);
    std::size_t sent =
        checked(detail::socket_call(socket_, r, "TcpStream::writev"), "TcpStream::writev");
    total += sent;
    while (first < left.size() && sent >= left[first].iov_len) {
      sent -= left[first].iov_len;
      ++first;
    }
    if (first < left.size()) {
      left[first].iov_base = static_cast<char*>(left[first].iov_base) + sent;
      left[first].iov_len -= sent;
    }
  }
  return total;
}

void TcpStream::shutdown() {
  if (::shutdown(socket_.fd, SHUT_WR) < 0) detail::throw_errno(errno, "TcpStream::shutdown");
}

void TcpStream::close() noexcept {
  detail::close_socket(socket_);
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
  detail::IoRequest r;
  r.op = Op::accept;
  const int fd = static_cast<int>(
      checked(detail::socket_call(socket_, r, "TcpListener::accept"), "TcpListener::accept"));
  return TcpStream(detail::adopt_socket(fd, socket_.nonblocking));
}

void TcpListener::close() noexcept {
  detail::close_socket(socket_);
}

int TcpListener::local_port() const {
  return detail::socket_port(socket_, false);
}

}  // namespace weft

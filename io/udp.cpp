#include <weft/io/udp.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "io/socket_fd.hpp"

namespace weft {

namespace {

using Op = detail::IoRequest::Op;

// A datagram's message: one buffer, and the peer's address (to or from).
msghdr one_buffer_message(void* address, socklen_t address_length, iovec& part) {
  msghdr message{};
  message.msg_name = address;
  message.msg_namelen = address_length;
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  return message;
}

int message_call(detail::SocketFd& socket, Op op, msghdr& message, const char* what) {
  detail::IoRequest r;
  r.op = op;
  r.address = &message;
  return detail::socket_call(socket, r, what);
}

// The destination in the socket's own family: IPv4 on an IPv6 socket becomes
// IPv4-mapped; IPv6 on an IPv4 socket cannot be reached.
bool to_family(const detail::SocketAddress& in, int family, detail::SocketAddress& out) {
  if (in.family() == family) {
    out = in;
    return true;
  }
  if (family == AF_INET6 && in.family() == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(in.storage);
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_port = v4.sin_port;
    v6.sin6_addr.s6_addr[10] = 0xff;
    v6.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    out = detail::SocketAddress{};
    std::memcpy(&out.storage, &v6, sizeof v6);
    out.length = sizeof v6;
    return true;
  }
  return false;
}

void describe_sender(const sockaddr_storage& address, Datagram& out) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    out.port = ntohs(v6.sin6_port);
  } else if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    out.port = ntohs(v4.sin_port);
  }
  out.host = text;
}

}  // namespace

UdpSocket::UdpSocket(UdpSocket&& other) noexcept
    : socket_(std::exchange(other.socket_, {})), family_(std::exchange(other.family_, 0)) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    close();
    socket_ = std::exchange(other.socket_, {});
    family_ = std::exchange(other.family_, 0);
  }
  return *this;
}

UdpSocket::~UdpSocket() {
  close();
}

UdpSocket UdpSocket::bind(const std::string& host, int port) {
  const std::string where = host + ":" + std::to_string(port);
  int last_error = EADDRNOTAVAIL;
  for (const auto& address : detail::resolve(host, port, SOCK_DGRAM, true)) {
    UdpSocket socket(detail::open_socket(address.family(), SOCK_DGRAM, "socket (UdpSocket)"),
                     address.family());
    if (::bind(socket.socket_.fd, reinterpret_cast<const sockaddr*>(&address.storage),
               address.length) == 0) {
      return socket;
    }
    last_error = errno;
  }
  detail::throw_errno(last_error, "UdpSocket::bind " + where);
}

std::size_t UdpSocket::send_to(const void* data, std::size_t size, const std::string& host,
                               int port) {
  if (socket_.fd < 0) detail::throw_errno(EBADF, "UdpSocket::send_to");
  const std::string where = "UdpSocket::send_to " + host + ":" + std::to_string(port);
  detail::SocketAddress destination;
  bool reachable = false;
  for (const auto& address : detail::resolve(host, port, SOCK_DGRAM, false)) {
    if ((reachable = to_family(address, family_, destination))) break;
  }
  if (!reachable) detail::throw_errno(EAFNOSUPPORT, where + ": no address of the socket's family");
  iovec part{const_cast<void*>(data), size};
  msghdr message = one_buffer_message(&destination.storage, destination.length, part);
  const int rc = message_call(socket_, Op::sendmsg, message, "UdpSocket::send_to");
  if (rc < 0) detail::throw_errno(-rc, where);
  return static_cast<std::size_t>(rc);
}

std::size_t UdpSocket::recv(void* buffer, std::size_t size) {
  detail::IoRequest r;
  r.op = Op::recv;
  r.buffer = buffer;
  r.length = std::min(size, detail::IoRequest::max_length);
  const int rc = detail::socket_call(socket_, r, "UdpSocket::recv");
  if (rc < 0) detail::throw_errno(-rc, "UdpSocket::recv");
  return static_cast<std::size_t>(rc);
}

Datagram UdpSocket::recv_from(void* buffer, std::size_t size) {
  sockaddr_storage sender{};
  iovec part{buffer, std::min(size, detail::IoRequest::max_length)};
  msghdr message = one_buffer_message(&sender, sizeof sender, part);
  const int rc = message_call(socket_, Op::recvmsg, message, "UdpSocket::recv_from");
  if (rc < 0) detail::throw_errno(-rc, "UdpSocket::recv_from");
  Datagram datagram;
  datagram.bytes = static_cast<std::size_t>(rc);
  datagram.truncated = (message.msg_flags & MSG_TRUNC) != 0;
  describe_sender(sender, datagram);
  return datagram;
}

void UdpSocket::close() noexcept {
  detail::close_socket(socket_);
}

int UdpSocket::local_port() const {
  return detail::socket_port(socket_, false);
}

}  // namespace weft

#pragma once
/// UdpSocket: datagrams over IPv4 and IPv6. Every call that waits is a
/// suspension point (kill and Timeout interrupt it); errors are
/// std::system_error with the errno and what was being done.

#include <cstddef>
#include <string>

#include <weft/io/detail/socket_fd.hpp>

namespace weft {

/// One datagram as recv_from received it.
struct Datagram {
  /// Bytes copied into the buffer (at most its size).
  std::size_t bytes = 0;
  /// The sender's address, numeric ("127.0.0.1", "::1"; an IPv4 sender to a
  /// socket bound to "::" shows as "::ffff:127.0.0.1").
  std::string host = {};
  int port = 0;
  /// The datagram was longer than the buffer; the rest is lost.
  bool truncated = false;
};

/// A bound UDP socket; owns its fd (move-only, closed on destruction). Use it
/// from fibers of one hub at a time; one receiving and one sending fiber may
/// use it at once.
class UdpSocket {
 public:
  UdpSocket() noexcept = default;
  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  ~UdpSocket();

  /// Makes a socket bound to `host` and `port`. `host` "" or "0.0.0.0":
  /// every IPv4 address; "::": every IPv6 address (and IPv4-mapped ones);
  /// port 0: one the kernel picks. A name is resolved on the thread cache
  /// (from a fiber).
  static UdpSocket bind(const std::string& host, int port);

  /// Sends one datagram of `size` bytes to `host` (numeric, or a name resolved
  /// on the thread cache) and `port`; returns the bytes sent (all of them).
  /// An IPv4 destination from a socket bound to IPv6 goes as IPv4-mapped. From
  /// a fiber; waits only while the send buffer is full.
  std::size_t send_to(const void* data, std::size_t size, const std::string& host, int port);
  /// Waits for one datagram and copies it into `buffer`; returns the bytes
  /// copied. A datagram longer than `size` is truncated to `size` bytes and
  /// the rest is dropped (recv_from says so). From a fiber.
  std::size_t recv(void* buffer, std::size_t size);
  /// As recv, also telling who sent it.
  Datagram recv_from(void* buffer, std::size_t size);

  /// Closes the socket (also done by the destructor). Idempotent. Fibers
  /// waiting in it wake with EBADF. From any thread: called elsewhere than on
  /// the hub whose fibers last used it, the close is handed to that hub (its
  /// fibers and its io live there), which does it at its next round; the
  /// object reads closed at once, and if that hub has ended the close happens
  /// at once, here.
  void close() noexcept;

  bool is_open() const noexcept { return socket_.fd >= 0; }
  int native_handle() const noexcept { return socket_.fd; }
  int local_port() const;

 private:
  UdpSocket(detail::SocketFd socket, int family) noexcept : socket_(socket), family_(family) {}

  detail::SocketFd socket_;
  int family_ = 0;  // AF_INET or AF_INET6
};

}  // namespace weft

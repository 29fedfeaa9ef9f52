#pragma once
/// TcpListener and TcpStream: TCP over IPv4 and IPv6. Every call that waits is
/// a suspension point (kill and Timeout interrupt it); errors are
/// std::system_error with the errno and what was being done.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <weft/io/detail/byte_stream.hpp>
#include <weft/io/detail/socket_fd.hpp>
#include <weft/io/errors.hpp>

namespace weft {

/// A connected TCP socket; owns its fd (move-only, closed on destruction).
/// The stream calls (read_some, read_exact, readv, write_all, writev,
/// shutdown, close, is_open, native_handle) are detail::ByteStream's, shared
/// with UnixStream. Use it from fibers of one hub at a time; any number may
/// read and write at once, served in the order they came in each direction
/// (a fiber's write_all may be interleaved with another's at a short write).
class TcpStream : public detail::ByteStream {
 public:
  TcpStream() noexcept;
  TcpStream(TcpStream&& other) noexcept = default;
  TcpStream& operator=(TcpStream&& other) noexcept = default;
  ~TcpStream() = default;

  /// Connects to `host` (a name, resolved on the thread cache, or an IPv4 or
  /// IPv6 address) and `port`, trying each address in turn. From a fiber.
  static TcpStream connect(const std::string& host, int port);
  /// As connect, giving up after `timeout` (std::system_error, timed_out).
  static TcpStream connect(const std::string& host, int port, std::chrono::nanoseconds timeout);

  void set_nodelay(bool enabled);
  int local_port() const;
  int peer_port() const;

 private:
  friend class TcpListener;
  explicit TcpStream(detail::SocketFd socket) noexcept;
  static TcpStream connect_before(const std::string& host, int port, std::int64_t deadline_ns);
};

struct ListenOptions {
  int backlog = 128;
  /// SO_REUSEPORT: several listeners (one per hub) on one port.
  bool reuse_port = false;
};

/// A listening TCP socket (SO_REUSEADDR set); owns its fd.
class TcpListener {
 public:
  TcpListener() noexcept = default;
  TcpListener(TcpListener&& other) noexcept;
  TcpListener& operator=(TcpListener&& other) noexcept;
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  ~TcpListener();

  /// Binds and listens. `host` "" or "0.0.0.0": every IPv4 address; "::":
  /// every IPv6 (and IPv4-mapped) address; port 0: one the kernel picks.
  static TcpListener bind(const std::string& host, int port, int backlog = 128);
  static TcpListener bind(const std::string& host, int port, ListenOptions options);

  /// Waits for and accepts one connection. From a fiber. Any number of fibers
  /// of one hub may wait at once: each connection goes to the one that has
  /// waited longest; closing the listener wakes them all (EBADF).
  TcpStream accept();
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
  explicit TcpListener(detail::SocketFd socket) noexcept : socket_(socket) {}

  detail::SocketFd socket_;
};

}  // namespace weft

#pragma once
/// UnixListener and UnixStream: stream sockets in the file system (or, with a
/// leading '\0', Linux's abstract namespace). Every call that waits is a
/// suspension point (kill and Timeout interrupt it); errors are
/// std::system_error with the errno, what was being done and the path.

#include <string>

#include <weft/io/detail/byte_stream.hpp>
#include <weft/io/detail/socket_fd.hpp>
#include <weft/io/errors.hpp>

namespace weft {

/// A connected Unix stream socket; owns its fd (move-only, closed on
/// destruction). The stream calls (read_some, read_exact, readv, write_all,
/// writev, shutdown, close, is_open, native_handle) are the same as
/// TcpStream's (detail::ByteStream). Use it from fibers of one hub at a time;
/// one reading and one writing fiber may use it at once.
class UnixStream : public detail::ByteStream {
 public:
  UnixStream() noexcept;
  UnixStream(UnixStream&& other) noexcept = default;
  UnixStream& operator=(UnixStream&& other) noexcept = default;
  ~UnixStream() = default;

  /// Connects to the socket at `path`. From a fiber. A missing path throws
  /// (no_such_file_or_directory), one nobody listens on connection_refused; a
  /// path too long for sockaddr_un, filename_too_long. Waits while the
  /// listener's backlog is full.
  static UnixStream connect(const std::string& path);

 private:
  friend class UnixListener;
  explicit UnixStream(detail::SocketFd socket) noexcept;
};

/// A listening Unix stream socket; owns its fd.
///
/// bind() never removes what is at `path`: an existing file (a stale socket
/// included) makes it throw address_in_use, as Python's socket.bind does.
/// close() leaves the socket file in place too; remove it yourself (it is
/// not safe to do for you: another listener may have been bound there since).
/// Abstract-namespace paths (leading '\0') have no file.
class UnixListener {
 public:
  UnixListener() noexcept = default;
  UnixListener(UnixListener&& other) noexcept;
  UnixListener& operator=(UnixListener&& other) noexcept;
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;
  ~UnixListener();

  /// Binds to `path` and listens. Does not suspend; may be called outside a fiber.
  static UnixListener bind(const std::string& path, int backlog = 128);

  /// Waits for and accepts one connection. From a fiber.
  UnixStream accept();
  /// Closes the socket (also done by the destructor). Idempotent. Fibers
  /// waiting in it wake with EBADF. From any thread: called elsewhere than on
  /// the hub whose fibers last used it, the close is handed to that hub (its
  /// fibers and its io live there), which does it at its next round; the
  /// object reads closed at once, and if that hub has ended the close happens
  /// at once, here.
  void close() noexcept;

  bool is_open() const noexcept { return socket_.fd >= 0; }
  int native_handle() const noexcept { return socket_.fd; }

 private:
  explicit UnixListener(detail::SocketFd socket) noexcept : socket_(socket) {}

  detail::SocketFd socket_;
};

}  // namespace weft

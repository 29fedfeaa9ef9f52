#pragma once
/// ByteStream: the calls every connected stream socket shares (TcpStream,
/// UnixStream derive from it). Not part of the public contract by name: use
/// the derived classes.

#include <sys/uio.h>

#include <cstddef>

#include <weft/io/detail/socket_fd.hpp>
#include <weft/io/errors.hpp>

namespace weft::detail {

/// What a stream's calls are called in errors and fiber dumps
/// ("TcpStream::read_some"). Static strings: a waiting fiber keeps the pointer.
struct StreamNames {
  const char* read_some;
  const char* read_exact;
  const char* readv;
  const char* write_all;
  const char* writev;
  const char* shutdown;
};

/// A connected stream socket; owns its fd (move-only, closed on destruction).
/// Use it from fibers of one hub at a time; one reading and one writing fiber
/// may use it at once. Every call that waits is a suspension point (kill and
/// Timeout interrupt it); errors are std::system_error naming the call.
class ByteStream {
 public:
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  /// Reads what is there (at least one byte, waiting for it); 0 at end of
  /// stream. A reset by the peer throws (connection_reset). A `size` of 0
  /// throws std::invalid_argument (its answer could not be told from the end).
  std::size_t read_some(void* buffer, std::size_t size);
  /// Reads exactly `size` bytes; end of stream first throws io_errc::end_of_stream.
  void read_exact(void* buffer, std::size_t size);
  /// Scatter read: as read_some over several buffers. A negative `count`, or
  /// buffers of 0 bytes in all, throw std::invalid_argument.
  std::size_t readv(const iovec* buffers, int count);
  /// Writes all `size` bytes. A peer that has gone throws (broken_pipe or
  /// connection_reset); never SIGPIPE.
  void write_all(const void* buffer, std::size_t size);
  /// Gather write: writes every byte of every buffer; returns the total.
  /// Never SIGPIPE. A negative `count` throws std::invalid_argument.
  std::size_t writev(const iovec* buffers, int count);

  /// Half-closes the sending side (the peer reads end of stream).
  void shutdown();
  /// Closes the socket (also done by the destructor). Idempotent. Fibers
  /// waiting in it wake with EBADF. From any thread: called elsewhere than on
  /// the hub whose fibers last used it, the close is handed to that hub (its
  /// fibers and its io live there), which does it at its next round; the
  /// object reads closed at once, and if that hub has ended the close happens
  /// at once, here.
  void close() noexcept;

  bool is_open() const noexcept { return socket_.fd >= 0; }
  int native_handle() const noexcept { return socket_.fd; }

 protected:
  ByteStream(const StreamNames& names, SocketFd socket) noexcept
      : names_(&names), socket_(socket) {}
  ByteStream(ByteStream&& other) noexcept;
  ByteStream& operator=(ByteStream&& other) noexcept;
  ~ByteStream();

  const StreamNames* names_;
  SocketFd socket_;
};

}  // namespace weft::detail

#include <weft/io/unix.hpp>

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "io/socket_fd.hpp"

namespace weft {

namespace {

constexpr detail::StreamNames unix_stream_names{
    .read_some = "UnixStream::read_some",
    .read_exact = "UnixStream::read_exact",
    .readv = "UnixStream::readv",
    .write_all = "UnixStream::write_all",
    .writev = "UnixStream::writev",
    .shutdown = "UnixStream::shutdown",
};

// The path as errors show it ('\0' of an abstract name as '@', as ss does).
std::string printable(const std::string& path) {
  if (!path.empty() && path[0] == '\0') return "@" + path.substr(1);
  return path;
}

struct UnixAddress {
  sockaddr_un storage{};
  socklen_t length = 0;
};

UnixAddress unix_address(const std::string& path, const char* what) {
  UnixAddress address;
  address.storage.sun_family = AF_UNIX;
  const bool abstract = !path.empty() && path[0] == '\0';
  // A file-system path needs room for its terminating '\0'; an abstract name
  // is exactly its bytes.
  const std::size_t room = sizeof address.storage.sun_path - (abstract ? 0 : 1);
  if (path.empty()) {
    detail::throw_errno(EINVAL, std::string(what) + ": empty path");
  }
  if (path.size() > room) {
    detail::throw_errno(ENAMETOOLONG, std::string(what) + " " + printable(path) + ": " +
                                          std::to_string(path.size()) +
                                          " bytes, a Unix socket path holds at most " +
                                          std::to_string(room));
  }
  std::memcpy(address.storage.sun_path, path.data(), path.size());
  address.length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return address;
}

}  // namespace

// --- UnixStream -----------------------------------------------------------------

UnixStream::UnixStream() noexcept : ByteStream(unix_stream_names, {}) {}

UnixStream::UnixStream(detail::SocketFd socket) noexcept : ByteStream(unix_stream_names, socket) {}

UnixStream UnixStream::connect(const std::string& path) {
  const UnixAddress address = unix_address(path, "UnixStream::connect");
  UnixStream stream(detail::open_socket(AF_UNIX, SOCK_STREAM, "socket (UnixStream)"));
  const int rc = detail::connect_socket(stream.socket_, &address.storage, address.length,
                                        "UnixStream::connect");
  if (rc < 0) detail::throw_errno(-rc, "UnixStream::connect to " + printable(path));
  return stream;
}

// --- UnixListener ---------------------------------------------------------------

UnixListener::UnixListener(UnixListener&& other) noexcept
    : socket_(std::exchange(other.socket_, {})) {}

UnixListener& UnixListener::operator=(UnixListener&& other) noexcept {
  if (this != &other) {
    close();
    socket_ = std::exchange(other.socket_, {});
  }
  return *this;
}

UnixListener::~UnixListener() {
  close();
}

UnixListener UnixListener::bind(const std::string& path, int backlog) {
  const UnixAddress address = unix_address(path, "UnixListener::bind");
  UnixListener listener(detail::open_socket(AF_UNIX, SOCK_STREAM, "socket (UnixListener)"));
  const int fd = listener.socket_.fd;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) < 0) {
    detail::throw_errno(errno, "UnixListener::bind " + printable(path));
  }
  if (::listen(fd, backlog) < 0) {
    detail::throw_errno(errno, "UnixListener::bind " + printable(path) + ": listen");
  }
  return listener;
}

UnixStream UnixListener::accept() {
  return UnixStream(detail::accept_socket(socket_, "UnixListener::accept"));
}

void UnixListener::close() noexcept {
  detail::close_socket(socket_);
}

}  // namespace weft

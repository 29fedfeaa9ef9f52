#pragma once
// What every socket class does with its fd: open it, resolve and convert
// addresses, make each call through run_io in the mode the hub's backend
// wants, and close it.

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include <weft/io/detail/socket_fd.hpp>

#include "runtime/reactor/backend.hpp"

namespace weft::detail {

/// Resolved socket addresses. Numeric hosts are parsed in place; names go
/// through getaddrinfo on the thread cache (from a fiber) so the hub never
/// blocks on DNS. "" means the wildcard (IPv4) when `passive`.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const noexcept { return storage.ss_family; }
};
std::vector<SocketAddress> resolve(const std::string& host, int port, int socktype, bool passive);

/// socket(2) with CLOEXEC, non-blocking unless this thread's hub runs
/// operations in the kernel; throws std::system_error.
SocketFd open_socket(int family, int type, const char* what);
/// Takes over an fd from accept.
SocketFd adopt_socket(int fd, bool nonblocking) noexcept;
/// run_io on the socket, first switching it to the blocking mode the current
/// hub's backend needs (epoll: non-blocking; io_uring: blocking, so the kernel
/// waits rather than answering EAGAIN).
int socket_call(SocketFd& socket, IoRequest& request, const char* what);
/// Waits for and accepts one connection on a listening socket; throws
/// std::system_error naming `what`.
SocketFd accept_socket(SocketFd& listener, const char* what);
/// connect(2) through socket_call: 0, or -errno (-ETIMEDOUT past
/// `deadline_ns`, the hub's clock; 0: no deadline).
int connect_socket(SocketFd& socket, const void* address, socklen_t length, const char* what,
                   std::int64_t deadline_ns = 0);
/// Closes it (forgetting it in this thread's backend first). Idempotent.
void close_socket(SocketFd& socket) noexcept;
int socket_port(const SocketFd& socket, bool peer);

[[noreturn]] void throw_errno(int error, const std::string& what);

}  // namespace weft::detail

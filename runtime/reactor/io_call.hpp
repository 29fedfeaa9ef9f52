#pragma once
// How a fiber waits for I/O: the one function every socket and file call goes
// through, on either backend.

#include <cstdint>

#include "runtime/reactor/backend.hpp"

namespace weft::detail {

/// A process-unique name for a newly opened file (see Backend::watch).
std::uint64_t next_fd_id() noexcept;

/// Runs `request` for the calling fiber, which waits (a suspension point);
/// returns the result as the kernel gives it (>= 0, or -errno; never -EAGAIN;
/// a signal's -EINTR is retried, except for connect).
///
/// io_uring runs it in the kernel. epoll makes the non-blocking call and
/// waits for readiness in between (the fd must be non-blocking); it cannot
/// wait for files (fsync, or a read/write at an offset): io/file.cpp hands
/// those to a cached thread instead, and here they throw std::logic_error.
///
/// A kill or Timeout: with an operation in the kernel, it is cancelled there
/// and this returns only once the kernel has let go of the buffers. If the
/// operation completed anyway (data read, connection accepted), its result is
/// returned and the kill or Timeout stays pending for the next suspension
/// point, so nothing is lost; otherwise it is thrown. Throws NoHubError
/// outside a fiber.
///
/// `request.deadline_ns` (the hub's clock): past it the call returns
/// -ETIMEDOUT (io_uring: a timeout linked to the operation in the kernel;
/// epoll, or a hub on virtual time: a Timeout).
int run_io(IoRequest& request, std::uint64_t fd_id, const char* what);

/// Makes the call `request` describes at once, on the calling thread: the
/// system call itself (-errno on failure). Sockets are asked not to block
/// (MSG_DONTWAIT); a file call at an offset blocks, as files do.
int call_now(const IoRequest& request) noexcept;

}  // namespace weft::detail

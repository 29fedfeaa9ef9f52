#pragma once
// Which io_uring operations weft issues, and which of them a kernel lacks.
// io_uring came in Linux 5.1, but the operations weft needs arrived up to
// 5.6 (accept, connect, send, recv, read, write); a ring that lacks one is
// no use to weft, and the hub falls back to epoll instead of failing at the
// first socket call.

#include <liburing.h>

#include <string>

namespace weft::detail {

/// The name of the first operation weft issues that `probe` (the kernel's
/// answer to IORING_REGISTER_PROBE) says is missing; empty if none is.
std::string first_missing_uring_operation(const io_uring_probe& probe);

}  // namespace weft::detail

#include "io/io_call.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>

#include <weft/process/to_thread.hpp>
#include <weft/runtime/sleep.hpp>
#include <weft/runtime/timeout.hpp>

#include "runtime/hub_core.hpp"

namespace weft::detail {

std::uint64_t next_fd_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

namespace {

void wake_waiter(IoCompletion* completion, int result, std::uint32_t) noexcept {
  auto* request = static_cast<IoRequest*>(completion);
  request->result = result;
  request->completed = true;
  auto* fiber = static_cast<FiberBase*>(request->waiter);
  FiberAccess::hub(*fiber)->wake(fiber);
}

// io_uring: an interrupt cancels the operation in the kernel; the fiber stays
// suspended until the operation's own completion arrives.
class CancelInKernel final : public InterruptHook {
 public:
  CancelInKernel(Backend& backend, IoRequest& request) : backend_(backend), request_(request) {}
  void on_interrupt(FiberBase&) noexcept override {
    if (!request_.completed && !cancel_sent_) {
      backend_.cancel(request_);
      cancel_sent_ = true;
    }
  }

 private:
  Backend& backend_;
  IoRequest& request_;
  bool cancel_sent_ = false;
};

int run_in_kernel(HubCore& hub, FiberBase& self, IoRequest& request, const char* what) {
  request.waiter = &self;
  request.completed = false;
  request.complete = &wake_waiter;
  hub.backend().start(request);
  CancelInKernel hook(hub.backend(), request);
  while (!request.completed)
    hub.suspend_keeping_interrupt(self, what, &hook);
  // A cancelled operation ends with -ECANCELED, or with -EINTR when it was
  // running on one of the kernel's io-wq workers.
  const bool cut_short = request.result == -ECANCELED || request.result == -EINTR;
  if (cut_short && HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
  if (request.result == -ECANCELED) {
    // Neither a kill nor a Timeout: the linked deadline, or the fd was closed
    // by another fiber (Backend::forget).
    return request.deadline_ns != 0 ? -ETIMEDOUT : -EBADF;
  }
  return request.result;
}

// epoll: nothing is in the kernel while the fiber waits, so an interrupt
// withdraws the watch and resumes the fiber at once.
class StopWatching final : public InterruptHook {
 public:
  StopWatching(Backend& backend, int fd, bool for_write)
      : backend_(backend), fd_(fd), for_write_(for_write) {}
  void on_interrupt(FiberBase& fiber) noexcept override {
    backend_.unwatch(fd_, for_write_);
    FiberAccess::hub(fiber)->wake(&fiber);
  }

 private:
  Backend& backend_;
  int fd_;
  bool for_write_;
};

// 0 once `fd` may be ready; -EBADF if it was closed meanwhile (by another
// fiber: its number may already name another file, so no call is made).
[[nodiscard]] int wait_ready(HubCore& hub, FiberBase& self, int fd, std::uint64_t fd_id,
                             bool for_write, const char* what) {
  IoRequest readiness;
  readiness.waiter = &self;
  readiness.complete = &wake_waiter;
  hub.backend().watch(fd, fd_id, for_write, &readiness);
  StopWatching hook(hub.backend(), fd, for_write);
  hub.suspend_keeping_interrupt(self, what, &hook);
  if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
  if (readiness.result < 0) return readiness.result;
  // Woken by readiness, then closed by another fiber before this one ran.
  return hub.backend().still_open(fd, fd_id) ? 0 : -EBADF;
}

int result_of(ssize_t rc) noexcept {
  return rc < 0 ? -errno : static_cast<int>(rc);
}

int call_now(const IoRequest& r) noexcept {
  using Op = IoRequest::Op;
  switch (r.op) {
    case Op::read:
      return result_of(r.offset < 0 ? ::read(r.fd, r.buffer, r.length)
                                    : ::pread(r.fd, r.buffer, r.length, r.offset));
    case Op::write:
      return result_of(r.offset < 0 ? ::write(r.fd, r.buffer, r.length)
                                    : ::pwrite(r.fd, r.buffer, r.length, r.offset));
    case Op::readv: {
      auto* iov = static_cast<const iovec*>(r.address);
      const int count = static_cast<int>(r.address_length);
      return result_of(r.offset < 0 ? ::readv(r.fd, iov, count)
                                    : ::preadv(r.fd, iov, count, r.offset));
    }
    case Op::writev: {
      auto* iov = static_cast<const iovec*>(r.address);
      const int count = static_cast<int>(r.address_length);
      return result_of(r.offset < 0 ? ::writev(r.fd, iov, count)
                                    : ::pwritev(r.fd, iov, count, r.offset));
    }
    case Op::recv:
      return result_of(::recv(r.fd, r.buffer, r.length, r.flags | MSG_DONTWAIT));
    case Op::send:
      return result_of(::send(r.fd, r.buffer, r.length, r.flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    case Op::recvmsg:
      return result_of(::recvmsg(r.fd, static_cast<msghdr*>(r.address), r.flags | MSG_DONTWAIT));
    case Op::sendmsg:
      return result_of(::sendmsg(r.fd, static_cast<const msghdr*>(r.address),
                                 r.flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    case Op::accept:
      return result_of(::accept4(r.fd, static_cast<sockaddr*>(r.address),
                                 reinterpret_cast<socklen_t*>(r.address_length_out),
                                 SOCK_CLOEXEC | SOCK_NONBLOCK));
    case Op::connect:
      return result_of(::connect(r.fd, static_cast<const sockaddr*>(r.address), r.address_length));
    case Op::fsync:
      return result_of(::fsync(r.fd));
  }
  return -EINVAL;
}

bool waits_for_write(IoRequest::Op op) noexcept {
  using Op = IoRequest::Op;
  return op == Op::write || op == Op::writev || op == Op::send || op == Op::sendmsg ||
         op == Op::connect;
}

bool is_file_call(const IoRequest& r) noexcept {
  return r.op == IoRequest::Op::fsync || r.offset >= 0;
}

int run_with_readiness(HubCore& hub, FiberBase& self, IoRequest& request, std::uint64_t fd_id,
                       const char* what) {
  if (is_file_call(request)) {
    // Files are always "ready" to epoll: the call would block the hub.
    return to_thread::run_sync([&request] { return call_now(request); });
  }
  const bool for_write = waits_for_write(request.op);
  if (request.op == IoRequest::Op::connect) {
    // A Unix-domain connect to a listener with a full backlog answers EAGAIN
    // (not EINPROGRESS, as TCP does) and leaves nothing to wait for: no
    // readiness says "room now". Try again after a growing pause (a
    // suspension point: kill and Timeout apply). io_uring waits in the kernel.
    auto pause = std::chrono::microseconds(100);
    int rc;
    while ((rc = call_now(request)) == -EAGAIN) {
      weft::sleep(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(10'000));
    }
    if (rc != -EINPROGRESS) return rc;
    if (const int closed = wait_ready(hub, self, request.fd, fd_id, true, what)) return closed;
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(request.fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) return -errno;
    return -error;
  }
  Backend& backend = hub.backend();
  // A stream that came up short last time has had nothing since: the call
  // would only answer EAGAIN (a syscall per round trip in request/response
  // traffic), so wait for the edge first.
  if (!backend.maybe_ready(request.fd, fd_id, for_write)) {
    if (const int closed = wait_ready(hub, self, request.fd, fd_id, for_write, what)) return closed;
  }
  for (;;) {
    const int rc = call_now(request);
    if (rc != -EAGAIN && rc != -EWOULDBLOCK) {
      // A short stream transfer drained the buffer (or filled it).
      if (request.stream && rc > 0 && static_cast<std::size_t>(rc) < request.length) {
        backend.used_up(request.fd, for_write);
      }
      return rc;
    }
    if (const int closed = wait_ready(hub, self, request.fd, fd_id, for_write, what)) return closed;
  }
}

int run_io_once(HubCore& hub, FiberBase& self, IoRequest& request, std::uint64_t fd_id,
                const char* what) {
  if (hub.backend().runs_operations()) return run_in_kernel(hub, self, request, what);
  if (request.deadline_ns == 0) return run_with_readiness(hub, self, request, fd_id, what);
  // No kernel timeout to link to: a Timeout of the same length stands in.
  const std::int64_t left = request.deadline_ns - HubCore::now_ns();
  if (left <= 0) return -ETIMEDOUT;
  Timeout deadline{std::chrono::nanoseconds(left)};
  try {
    return run_with_readiness(hub, self, request, fd_id, what);
  } catch (const TimeoutError& e) {
    if (!e.is(deadline)) throw;
    return -ETIMEDOUT;
  }
}

}  // namespace

int run_io(IoRequest& request, std::uint64_t fd_id, const char* what) {
  HubCore& hub = current_hub_core(what);
  FiberBase& self = hub.require_fiber(what);
  if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
  for (;;) {
    const int rc = run_io_once(hub, self, request, fd_id, what);
    // A signal cut the call short: make it again, as SA_RESTART would. (Not
    // connect, which goes on in the kernel and would answer EALREADY.)
    if (rc != -EINTR || request.op == IoRequest::Op::connect) return rc;
    if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
  }
}

}  // namespace weft::detail

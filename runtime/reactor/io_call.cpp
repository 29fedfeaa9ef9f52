#include "runtime/reactor/io_call.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

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

// One fiber's place in the line of fibers waiting on an fd in one direction
// (Backend::watch), for the whole of one call. Leaving the scope leaves the
// line: the turn, if it had it (epoll: a readiness it did not use up), goes to
// the next fiber in line.
class Watching {
 public:
  Watching(HubCore& hub, FiberBase& self, int fd, std::uint64_t fd_id, bool for_write) noexcept
      : backend_(hub.backend()), fd_(fd), fd_id_(fd_id), for_write_(for_write) {
    watcher_.fiber = &self;
    watcher_.complete = &on_ready;
  }
  Watching(const Watching&) = delete;
  Watching& operator=(const Watching&) = delete;
  ~Watching() {
    if (watcher_.state != FdWatcher::State::idle) backend_.unwatch(fd_, for_write_, &watcher_);
  }

  // Waits for the fiber's turn (Backend::watch): 0 once it has come (epoll:
  // `fd` may be ready); -EBADF if the fd was closed meanwhile (by another
  // fiber: its number may already name another file, so no call is made).
  // `found_nothing`: the call before answered EAGAIN.
  [[nodiscard]] int wait(HubCore& hub, FiberBase& self, bool found_nothing, const char* what) {
    watcher_.result = 0;
    const bool at_once = backend_.watch(fd_, fd_id_, for_write_, &watcher_);
    if (found_nothing) backend_.used_up(fd_, for_write_);
    if (!at_once) {
      StopWatching hook(*this);
      hub.suspend_keeping_interrupt(self, what, &hook);
      // Interrupted after its turn came: the destructor passes the turn on.
      if (HubCore::interrupt_pending(self)) HubCore::rethrow_interrupt(self);
    }
    if (watcher_.result < 0) return watcher_.result;
    // Woken by readiness, then closed by another fiber before this one ran.
    return backend_.still_open(fd_, fd_id_) ? 0 : -EBADF;
  }

 private:
  struct Watcher final : FdWatcher {
    FiberBase* fiber = nullptr;
    int result = 0;
  };

  // Nothing is in the kernel while the fiber waits, so an interrupt withdraws
  // the watch and resumes the fiber at once.
  class StopWatching final : public InterruptHook {
   public:
    explicit StopWatching(Watching& watching) : watching_(watching) {}
    void on_interrupt(FiberBase& fiber) noexcept override {
      watching_.backend_.unwatch(watching_.fd_, watching_.for_write_, &watching_.watcher_);
      FiberAccess::hub(fiber)->wake(&fiber);
    }

   private:
    Watching& watching_;
  };

  static void on_ready(IoCompletion* completion, int result, std::uint32_t) noexcept {
    auto* watcher = static_cast<Watcher*>(completion);
    watcher->result = result;
    FiberAccess::hub(*watcher->fiber)->wake(watcher->fiber);
  }

  Backend& backend_;
  int fd_;
  std::uint64_t fd_id_;
  bool for_write_;
  Watcher watcher_;
};

int result_of(ssize_t rc) noexcept {
  return rc < 0 ? -errno : static_cast<int>(rc);
}

}  // namespace

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
    case Op::poll_in: {
      pollfd one{.fd = r.fd, .events = POLLIN, .revents = 0};
      const int ready = ::poll(&one, 1, 0);
      if (ready < 0) return -errno;
      return ready == 0 ? -EAGAIN : one.revents;
    }
  }
  return -EINVAL;
}

namespace {

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
    // Readiness means nothing for files: io/file.cpp hands them to a thread.
    throw std::logic_error(std::string(what) + ": a file call on a readiness backend");
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
    Watching watching(hub, self, request.fd, fd_id, true);
    if (const int closed = watching.wait(hub, self, false, what)) return closed;
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(request.fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) return -errno;
    return -error;
  }
  Backend& backend = hub.backend();
  Watching watching(hub, self, request.fd, fd_id, for_write);
  // A stream that came up short last time has had nothing since: the call
  // would only answer EAGAIN (a syscall per round trip in request/response
  // traffic), so wait for the edge first. So does a fiber that finds others
  // waiting on the fd: it queues behind them.
  if (!backend.maybe_ready(request.fd, fd_id, for_write)) {
    if (const int closed = watching.wait(hub, self, false, what)) return closed;
  }
  for (;;) {
    const int rc = call_now(request);
    if (rc != -EAGAIN && rc != -EWOULDBLOCK) {
      // A short stream transfer drained the buffer (or filled it). Otherwise
      // leaving the line (watching's destructor) hands what may be left to
      // the next fiber in it.
      if (request.stream && rc > 0 && static_cast<std::size_t>(rc) < request.length) {
        backend.used_up(request.fd, for_write);
      }
      return rc;
    }
    if (const int closed = watching.wait(hub, self, true, what)) return closed;
  }
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

int run_in_kernel(HubCore& hub, FiberBase& self, IoRequest& request, std::uint64_t fd_id,
                  const char* what) {
  // Fibers on one socket (or pipe) take turns, in the order they came; calls
  // on a file at an offset run side by side.
  Watching turn(hub, self, request.fd, fd_id, waits_for_write(request.op));
  if (!is_file_call(request)) {
    if (const int closed = turn.wait(hub, self, false, what)) return closed;
  }
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

int run_io_once(HubCore& hub, FiberBase& self, IoRequest& request, std::uint64_t fd_id,
                const char* what) {
  const bool in_kernel = hub.backend().runs_operations();
  auto run = [&] {
    return in_kernel ? run_in_kernel(hub, self, request, fd_id, what)
                     : run_with_readiness(hub, self, request, fd_id, what);
  };
  // The kernel's timeout runs on CLOCK_MONOTONIC, not on a virtual clock.
  if (request.deadline_ns == 0 || (in_kernel && !hub.virtual_clock())) return run();
  // No kernel timeout to link to: a Timeout of the same length stands in.
  const std::int64_t left = request.deadline_ns - hub.now_ns();
  if (left <= 0) return -ETIMEDOUT;
  Timeout deadline{std::chrono::nanoseconds(left)};
  struct WithoutKernelDeadline {
    IoRequest& request;
    const std::int64_t deadline_ns = std::exchange(request.deadline_ns, 0);
    ~WithoutKernelDeadline() { request.deadline_ns = deadline_ns; }  // for a retry
  } without_kernel_deadline{request};
  try {
    return run();
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

#pragma once
// The seam between a hub and the kernel: what every event-loop backend
// (io_uring, epoll) implements. A hub calls wait() once per scheduling round;
// the backend submits everything queued during the round in one go, then
// collects completions and calls them back.

#include <linux/time_types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include <weft/runtime/hub.hpp>

namespace weft::detail {

/// An operation in flight. The backend calls `complete` on the hub's thread
/// with the kernel's result (-errno on failure, as liburing reports it).
/// `flags` carries IORING_CQE_F_MORE for a multishot operation that goes on.
struct IoCompletion {
  void (*complete)(IoCompletion* self, int result, std::uint32_t flags) noexcept = nullptr;
  /// No fiber waits for it (a multishot accept): it does not keep the hub busy.
  bool detached = false;
};

/// A fiber's place in the line of fibers waiting on one fd in one direction
/// (Backend::watch). The backend links it in (intrusive: a wait allocates
/// nothing); it lives on the waiting fiber's stack, from its first watch()
/// until its last unwatch().
struct FdWatcher : IoCompletion {
  enum class State : std::uint8_t {
    idle,     // in no line
    waiting,  // in the line
    woken,    // has the turn (epoll: the fd's readiness); not done yet
  };
  State state = State::idle;
  FdWatcher* previous = nullptr;
  FdWatcher* next = nullptr;
};

/// One I/O operation, described as the kernel takes it. Lives on the stack
/// of the fiber that waits for it (runtime/reactor/io_call.hpp).
struct IoRequest : IoCompletion {
  /// The most one call may ask for: the kernel moves at most this much per
  /// call (MAX_RW_COUNT), and run_io's result is an int.
  static constexpr std::size_t max_length = 0x7ffff000;

  enum class Op : std::uint8_t {
    read,     // read(fd, buf, len) / pread at offset >= 0
    write,    // write / pwrite
    readv,    // readv(fd, iov, count)
    writev,   // writev
    recv,     // recv(fd, buf, len, flags)
    send,     // send(fd, buf, len, flags | MSG_NOSIGNAL)
    recvmsg,  // recvmsg(fd, msg, flags)
    sendmsg,  // sendmsg(fd, msg, flags | MSG_NOSIGNAL)
    accept,   // accept4(fd, addr, addrlen, SOCK_CLOEXEC | SOCK_NONBLOCK)
    connect,  // connect(fd, addr, addrlen_value)
    fsync,    // fsync(fd)
    poll_in,  // until fd is readable (a pidfd: the process has exited); the revents
  };
  Op op = Op::read;
  int fd = -1;
  int flags = 0;
  void* buffer = nullptr;
  std::size_t length = 0;
  std::int64_t offset = -1;     // files: -1 = the current position
  void* address = nullptr;      // sockaddr* (accept, connect), iovec* (readv, writev), msghdr*
  unsigned address_length = 0;  // connect's addrlen, readv/writev's iovec count
  unsigned* address_length_out = nullptr;  // accept's addrlen (in/out)
  /// A deadline for this one operation (the hub's clock, in ns; 0: none):
  /// past it the operation ends with -ETIMEDOUT. io_uring links a timeout to
  /// it in the kernel (IORING_OP_LINK_TIMEOUT, on CLOCK_MONOTONIC), so no hub
  /// timer is involved; on a hub with a virtual clock run_io clears it before
  /// start() and arms a hub timer instead.
  std::int64_t deadline_ns = 0;
  __kernel_timespec deadline_spec{};  // the backend's copy of it, for the kernel
  /// A byte stream (recv/send on TCP or a Unix stream): a transfer shorter
  /// than asked means the socket's buffer was drained (or filled), which a
  /// readiness backend uses to wait before trying again.
  bool stream = false;
  int result = 0;  // what the kernel returned: >= 0, or -errno
  bool completed = false;
  void* waiter = nullptr;  // the fiber waiting for it
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const noexcept = 0;
  /// Submits queued work, then waits up to `timeout` (nullopt: no limit, zero:
  /// just collect) for completions or a wake-up, and dispatches completions.
  /// `collect`: enter the kernel even for a zero timeout with nothing in
  /// flight (a wake-up may be waiting to be consumed: embedding).
  virtual void wait(std::optional<std::chrono::nanoseconds> timeout, bool collect = false) = 0;
  /// Submits what is queued without waiting (embedding: before the host loop sleeps).
  virtual void flush() {}
  /// An fd that cross-thread kicks must also write (io_uring: the eventfd
  /// behind poll_fd, once a host loop asked for it), or -1.
  virtual int extra_kick_fd() const noexcept { return -1; }
  /// True while user operations are in flight whose completions need polling.
  /// Not virtual: the hub asks at the end of every round.
  bool has_operations_in_flight() const noexcept { return in_flight_ != 0; }
  /// True while anything in the kernel may post a completion, detached
  /// operations (multishot accepts) included: the hub must keep polling then,
  /// though such operations alone do not keep it from being idle.
  bool needs_polling() const noexcept { return in_flight_ != 0 || detached_in_flight_ != 0; }
  /// Readable when completions or wake-ups are waiting (for embedding). From
  /// the hub's thread; what it needs is set up on the first call, so hubs
  /// that are not embedded pay nothing for it.
  virtual int poll_fd() noexcept = 0;

  /// Tests: runs inside wait() once completions are collected, to make
  /// something happen at that exact point of the round (io_uring only).
  void set_after_collect_for_test(std::function<void()> hook) { after_collect_ = std::move(hook); }
  /// Tests: while set, cancel() finds no room in the ring and keeps the
  /// cancel for a later round (io_uring only; otherwise a ring that the
  /// kernel will not drain, as with an overflowing completion queue).
  void set_ring_full_for_cancels_for_test(bool full) noexcept { ring_full_for_test_ = full; }

  /// Completion-based backends (io_uring) run operations in the kernel:
  /// start() queues `request` for the next submission, cancel() asks the
  /// kernel to drop it; either way `request.complete` is called exactly once,
  /// from wait(). Readiness-based backends (epoll) return false from
  /// runs_operations(): the caller makes the non-blocking call itself and
  /// waits for readiness with watch().
  virtual bool runs_operations() const noexcept = 0;
  virtual void start(IoRequest& request) = 0;
  virtual void cancel(IoCompletion& operation) noexcept = 0;

  /// Multishot accept on listening socket `fd`: `receiver->complete` is called
  /// with each accepted fd (or -errno), flag IORING_CQE_F_MORE set while the
  /// operation goes on, and a last time without it (after cancel(), an error,
  /// or when the hub is destroyed). No fiber waits for it, so it does not keep
  /// the hub busy. Returns false where the backend or kernel lacks it. One per
  /// listener: its receiver (runtime/reactor/accept_queue.hpp) shares the connections out
  /// among the fibers waiting in accept().
  virtual bool start_multishot_accept(int fd, IoCompletion* receiver) = 0;

  /// Lines: any number of fibers may wait on one fd in each direction; they
  /// are served first come, first served, one turn at a time. `watcher` joins
  /// the line for `fd` reading (`for_write` false) or writing; true: its turn
  /// has come at once (no call is made), false: `watcher->complete` is called
  /// (from wait(), or as the fiber before leaves) when it has come.
  ///  - epoll: a turn is a readiness: the first in line is woken when `fd`
  ///    may be ready (never at once), and the next only once the one before
  ///    left (unwatch) without using it up (used_up()). A fiber that had the
  ///    turn and comes back (its call found nothing) goes first in line again.
  ///  - io_uring: a turn is one operation in the kernel: the next fiber's
  ///    operation is started once the one before has ended, as the kernel
  ///    would serve several waiting on one socket newest first.
  /// `fd_id` names the open file behind `fd` (unique for the process's life),
  /// so a number that was closed and reused is registered afresh.
  virtual bool watch(int fd, std::uint64_t fd_id, bool for_write, FdWatcher* watcher) = 0;
  /// `watcher` leaves its line, withdrawn (kill, Timeout) or done: no call is
  /// made to it, and a turn it had passes to the next fiber in line. A no-op
  /// for a watcher in no line.
  virtual void unwatch(int fd, bool for_write, FdWatcher* watcher) noexcept = 0;
  /// False when `fd` is known to have nothing (to read, or no room to write)
  /// since it last reported readiness, or when fibers already wait on it in
  /// that direction (a newcomer queues behind them): the caller watches
  /// first. True when it may be ready, or is not known.
  virtual bool maybe_ready(int fd, std::uint64_t fd_id, bool for_write) const noexcept = 0;
  /// False once `fd` no longer names the open file `fd_id` (closed by
  /// another fiber, the number perhaps reused): a woken watcher must not call.
  virtual bool still_open(int fd, std::uint64_t fd_id) const noexcept = 0;
  /// A call just used up what was there (a short stream transfer, EAGAIN).
  virtual void used_up(int fd, bool for_write) noexcept = 0;
  /// The fd is being closed: drop what the backend keeps about it. Fibers
  /// still waiting on it (another fiber closes it) wake with -EBADF; on
  /// io_uring that takes `in_use` (Linux 5.19+, whose cancel can match an fd).
  virtual void forget(int fd, bool in_use = false) noexcept = 0;

 protected:
  std::size_t in_flight_ = 0;  // operations submitted and not yet completed (or fds watched)
  std::size_t detached_in_flight_ = 0;  // multishot operations the kernel still holds
  std::function<void()> after_collect_;
  bool ring_full_for_test_ = false;
};

/// Makes the backend `requested` names, honouring WEFT_BACKEND and falling back
/// from io_uring to epoll (one line on stderr) when `automatic`. `wake_fd` is
/// an eventfd the backend watches and drains.
std::unique_ptr<Backend> make_backend(BackendKind requested, int wake_fd);

std::unique_ptr<Backend> make_uring_backend(int wake_fd);  // throws std::system_error
std::unique_ptr<Backend> make_epoll_backend(int wake_fd);  // throws std::system_error

}  // namespace weft::detail

// io_uring backend: one io_uring_enter per round submits everything queued and
// waits for completions. The hub's wake-up eventfd is read by a standing READ
// that is re-armed each time it completes.

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "runtime/out_of_memory.hpp"
#include "runtime/reactor/backend.hpp"
#include "runtime/reactor/fd_line.hpp"
#include "runtime/reactor/uring_probe.hpp"
#include "runtime/switch_annotations.hpp"

namespace weft::detail {

namespace {

constexpr unsigned ring_entries = 256;
// user_data values that are not IoCompletion pointers (those are aligned).
constexpr std::uint64_t wake_tag = 1;    // the standing eventfd read
constexpr std::uint64_t cancel_tag = 3;  // an ASYNC_CANCEL or LINK_TIMEOUT of our own

// Features that io_uring's probe does not report (flags of an opcode) go by
// the kernel's version.
bool kernel_at_least(int major, int minor) noexcept {
  utsname name{};
  int have_major = 0;
  int have_minor = 0;
  if (::uname(&name) != 0 || std::sscanf(name.release, "%d.%d", &have_major, &have_minor) != 2) {
    return false;
  }
  return have_major > major || (have_major == major && have_minor >= minor);
}

}  // namespace

std::string first_missing_uring_operation(const io_uring_probe& probe) {
  static constexpr struct {
    int op;
    const char* name;
  } needed[] = {
      {IORING_OP_READV, "READV"},
      {IORING_OP_WRITEV, "WRITEV"},
      {IORING_OP_FSYNC, "FSYNC"},
      {IORING_OP_SENDMSG, "SENDMSG"},
      {IORING_OP_RECVMSG, "RECVMSG"},
      {IORING_OP_ACCEPT, "ACCEPT"},
      {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
      {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
      {IORING_OP_CONNECT, "CONNECT"},
      {IORING_OP_READ, "READ"},
      {IORING_OP_WRITE, "WRITE"},
      {IORING_OP_SEND, "SEND"},
      {IORING_OP_RECV, "RECV"},
  };
  for (const auto& operation : needed) {
    if (!io_uring_opcode_supported(&probe, operation.op)) {
      return std::string("IORING_OP_") + operation.name;
    }
  }
  return {};
}

namespace {

#ifdef WEFT_TSAN
// Whose address ThreadSanitizer orders ring unmaps before ring maps by.
char ring_lifetimes;
#endif

class UringBackend final : public Backend {
 public:
  explicit UringBackend(int wake_fd) : wake_fd_(wake_fd) {
    setup_ring();
    try {
      require_operations();
    } catch (...) {
      io_uring_queue_exit(&ring_);
      throw;
    }
    multishot_accept_ = kernel_at_least(5, 19);
    io_uring_ring_dontfork(&ring_);
    arm_wake_read();
    io_uring_submit(&ring_);
  }

  ~UringBackend() override {
    cancel_everything();
    annotate_ring_unmapping();
    io_uring_queue_exit(&ring_);
    if (notify_fd_ >= 0) ::close(notify_fd_);
  }

  std::string_view name() const noexcept override { return "io_uring"; }

  // liburing maps the rings with raw system calls, which ThreadSanitizer does
  // not see: a ring mapped at the address of one that another thread has
  // unmapped looks to it like memory shared without synchronisation. The
  // kernel orders the unmap before the map; say so.
  static void annotate_ring_unmapping() noexcept {
#ifdef WEFT_TSAN
    __tsan_release(&ring_lifetimes);
#endif
  }
  static void annotate_ring_mapped() noexcept {
#ifdef WEFT_TSAN
    __tsan_acquire(&ring_lifetimes);
#endif
  }

  void wait(std::optional<std::chrono::nanoseconds> timeout, bool collect) override {
    queue_pending_cancels();
    if (timeout && timeout->count() <= 0) {
      // Nothing to submit and nothing to collect: stay out of the kernel.
      if (io_uring_sq_ready(&ring_) == 0 && !needs_polling() && !collect) {
        drain_completions();
        return;
      }
      const int rc = io_uring_submit_and_get_events(&ring_);
      if (rc < 0 && rc != -EINTR && rc != -EBUSY) check(rc, "io_uring_submit_and_get_events");
    } else {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{};
      if (timeout) {
        ts.tv_sec = static_cast<long long>(timeout->count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long long>(timeout->count() % 1'000'000'000);
      }
      int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout ? &ts : nullptr, nullptr);
      if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
        check(rc, "io_uring_submit_and_wait_timeout");
      }
    }
    drain_completions();
    if (after_collect_) after_collect_();
    if (notify_fd_ >= 0) consume_notification();
  }

  // With DEFER_TASKRUN the ring fd does not signal poll/epoll when
  // completions are posted, so a host loop watches an eventfd registered with
  // the ring instead (and kicks from other threads write it too).
  int poll_fd() noexcept override {
    if (notify_fd_ < 0) {
      const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd < 0) return ring_.ring_fd;
      if (io_uring_register_eventfd(&ring_, fd) < 0) {
        ::close(fd);
        return ring_.ring_fd;
      }
      notify_fd_ = fd;
      // Work that came before the eventfd existed signalled nothing (a post
      // from another thread completes the standing wake-up read): say so now.
      if (io_uring_cq_ready(&ring_) != 0 || task_work_pending()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t written = ::write(notify_fd_, &one, sizeof one);
      }
    }
    return notify_fd_;
  }
  int extra_kick_fd() const noexcept override {
    return notify_fd_;
  }

  void flush() override {
    if (io_uring_sq_ready(&ring_) != 0) check(io_uring_submit(&ring_), "io_uring_submit");
  }

  bool runs_operations() const noexcept override {
    return true;
  }

  void start(IoRequest& request) override {
    // A linked pair must not be split by a flush in between.
    if (request.deadline_ns != 0 && io_uring_sq_space_left(&ring_) < 2) {
      check(io_uring_submit(&ring_), "io_uring_submit");
    }
    io_uring_sqe* sqe = next_sqe();
    prepare(sqe, request);
    io_uring_sqe_set_data(sqe, static_cast<IoCompletion*>(&request));
    ++in_flight_;
    if (request.deadline_ns != 0) link_deadline(sqe, request);
  }

  // Called from completion callbacks too (a multishot accept at its bound):
  // never reaps completions itself. With the ring full, the cancel waits in
  // a list that the next wait() submits first.
  void cancel(IoCompletion& operation) noexcept override {
    if (io_uring_sqe* sqe = ring_full_for_test_ ? nullptr : free_sqe()) {
      prepare_cancel(sqe, operation);
    } else {
      try {
        pending_cancels_.push_back(&operation);
      } catch (const std::bad_alloc&) {
        out_of_memory("keeping a cancel until the ring has room");
      }
    }
  }

  bool start_multishot_accept(int fd, IoCompletion* receiver) override {
    if (!multishot_accept_) return false;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, receiver);
    ++detached_in_flight_;
    return true;
  }

  // Several fibers on one fd and direction take turns, in the order they
  // came: one operation in the kernel at a time, the next one's started when
  // it ends. (The kernel would wake several operations waiting on a socket
  // newest first.)
  bool watch(int fd, std::uint64_t fd_id, bool for_write, FdWatcher* watcher) override {
    if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "weft: watching fd");
    if (static_cast<std::size_t>(fd) >= lines_.size()) lines_.resize(fd + 1);
    FdLines& lines = lines_[fd];
    if (lines.fd_id != fd_id) {  // new, or a number reused without forget()
      drop(lines);
      lines.fd_id = fd_id;
    }
    FdLine& line = for_write ? lines.write : lines.read;
    if (line.idle()) {
      line.serve(watcher);
      return true;
    }
    line.push_back(watcher);
    return false;
  }
  void unwatch(int fd, bool for_write, FdWatcher* watcher) noexcept override {
    if (watcher->state == FdWatcher::State::idle) return;
    FdLine& line = for_write ? lines_[fd].write : lines_[fd].read;
    if (line.leave(watcher) == FdLine::Left::turn) line.serve_first(0);
  }
  // The kernel waits for readiness itself. (IORING_RECVSEND_POLL_FIRST after a
  // short transfer was tried: no gain measurable on the echo benchmark.)
  bool maybe_ready(int, std::uint64_t, bool) const noexcept override {
    return true;
  }
  // Asked by a fiber whose turn came: forget() cleared the record if its fd
  // was closed meanwhile.
  bool still_open(int fd, std::uint64_t fd_id) const noexcept override {
    return fd >= 0 && static_cast<std::size_t>(fd) < lines_.size() && lines_[fd].fd_id == fd_id;
  }
  void used_up(int, bool) noexcept override {}
  // Fibers waiting for their turn on the fd wake with -EBADF. An operation
  // still in the kernel holds its own reference to the file, so closing the
  // fd would not end it: cancel them now, before the number is closed (and
  // perhaps reused), with a submit of its own.
  void forget(int fd, bool in_use) noexcept override {
    if (fd >= 0 && static_cast<std::size_t>(fd) < lines_.size()) drop(lines_[fd]);
    if (!in_use || !multishot_accept_ || fd < 0) return;  // matching by fd: 5.19+, as multishot
    io_uring_sqe* sqe = free_sqe();
    if (!sqe) return;  // ring jammed: the waiter wakes when its operation ends
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, cancel_tag);
    io_uring_submit(&ring_);
  }

 private:
  void setup_ring() {
    // Newest flags first; a kernel that does not know one answers EINVAL.
    const unsigned attempts[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
            IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (unsigned flags : attempts) {
      rc = io_uring_queue_init(ring_entries, &ring_, flags);
      if (rc != -EINVAL) break;
    }
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
    annotate_ring_mapped();
  }

  // Embedded: clears the eventfd the host loop woke for, once the round has
  // collected (the completions collected signalled it too), then looks again.
  // A completion that arrived between the collection and the clear signalled
  // before the clear: left in the ring, it would never run while the host
  // loop sleeps on poll_fd. One that arrives after the clear signals anew.
  void consume_notification() {
    std::uint64_t count;
    [[maybe_unused]] ssize_t got = ::read(notify_fd_, &count, sizeof count);
    if (io_uring_cq_ready(&ring_) == 0 && !task_work_pending()) return;
    const int rc = io_uring_get_events(&ring_);
    if (rc < 0 && rc != -EINTR && rc != -EBUSY) check(rc, "io_uring_get_events");
    drain_completions();
  }

  // With DEFER_TASKRUN, completions wait as task work until the next
  // io_uring_enter; IORING_SETUP_TASKRUN_FLAG makes the kernel say so here.
  bool task_work_pending() const noexcept {
    return (__atomic_load_n(ring_.sq.kflags, __ATOMIC_ACQUIRE) & IORING_SQ_TASKRUN) != 0;
  }

  // A kernel from before 5.6 has io_uring but not every operation weft
  // issues: refuse it here, so the hub falls back to epoll.
  void require_operations() {
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    if (!probe) {
      throw std::system_error(ENOSYS, std::generic_category(),
                              "io_uring: the kernel cannot list its operations (Linux < 5.6)");
    }
    const std::string missing = first_missing_uring_operation(*probe);
    io_uring_free_probe(probe);
    if (!missing.empty()) {
      throw std::system_error(ENOSYS, std::generic_category(),
                              "io_uring: the kernel lacks " + missing + ", which weft uses");
    }
  }

  static void check(int rc, const char* what) {
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), what);
  }

  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // ring full: flush what is queued and retry
      check(io_uring_submit(&ring_), "io_uring_submit");
      sqe = io_uring_get_sqe(&ring_);
    }
    if (!sqe) throw std::system_error(EBUSY, std::generic_category(), "io_uring_get_sqe");
    return sqe;
  }

  static void prepare(io_uring_sqe* sqe, IoRequest& r) {
    using Op = IoRequest::Op;
    const auto offset = static_cast<std::uint64_t>(r.offset);  // -1: the file position
    const auto length = static_cast<unsigned>(r.length);
    switch (r.op) {
      case Op::read:
        return io_uring_prep_read(sqe, r.fd, r.buffer, length, offset);
      case Op::write:
        return io_uring_prep_write(sqe, r.fd, r.buffer, length, offset);
      case Op::readv:
        return io_uring_prep_readv(sqe, r.fd, static_cast<const iovec*>(r.address),
                                   r.address_length, offset);
      case Op::writev:
        return io_uring_prep_writev(sqe, r.fd, static_cast<const iovec*>(r.address),
                                    r.address_length, offset);
      case Op::recv:
        return io_uring_prep_recv(sqe, r.fd, r.buffer, r.length, r.flags);
      case Op::send:
        return io_uring_prep_send(sqe, r.fd, r.buffer, r.length, r.flags | MSG_NOSIGNAL);
      case Op::recvmsg:
        return io_uring_prep_recvmsg(sqe, r.fd, static_cast<msghdr*>(r.address),
                                     static_cast<unsigned>(r.flags));
      case Op::sendmsg:
        return io_uring_prep_sendmsg(sqe, r.fd, static_cast<const msghdr*>(r.address),
                                     static_cast<unsigned>(r.flags | MSG_NOSIGNAL));
      case Op::accept:
        return io_uring_prep_accept(sqe, r.fd, static_cast<sockaddr*>(r.address),
                                    reinterpret_cast<socklen_t*>(r.address_length_out),
                                    SOCK_CLOEXEC);
      case Op::connect:
        return io_uring_prep_connect(sqe, r.fd, static_cast<const sockaddr*>(r.address),
                                     r.address_length);
      case Op::fsync:
        return io_uring_prep_fsync(sqe, r.fd, 0);
      case Op::poll_in:
        return io_uring_prep_poll_add(sqe, r.fd, POLLIN);
    }
  }

  // The kernel cancels the operation at its deadline (the result is then
  // -ECANCELED, which run_io reports as -ETIMEDOUT). The timespec is read at
  // submission, while the request (on its fiber's stack) is still there.
  void link_deadline(io_uring_sqe* operation, IoRequest& request) {
    operation->flags |= IOSQE_IO_LINK;
    request.deadline_spec.tv_sec = request.deadline_ns / 1'000'000'000;
    request.deadline_spec.tv_nsec = request.deadline_ns % 1'000'000'000;
    io_uring_sqe* timeout = next_sqe();
    io_uring_prep_link_timeout(timeout, &request.deadline_spec, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(timeout, cancel_tag);
  }

  void arm_wake_read() {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_read(sqe, wake_fd_, &wake_counter_, sizeof wake_counter_, 0);
    io_uring_sqe_set_data64(sqe, wake_tag);
    wake_read_armed_ = true;
  }

  // An SQE for a cancellation, which must go out (or a fiber waits forever):
  // with the ring full, what is queued is submitted first.
  // An SQE if one can be had (submitting what is queued to make room), else null.
  io_uring_sqe* free_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  static void prepare_cancel(io_uring_sqe* sqe, IoCompletion& operation) noexcept {
    io_uring_prep_cancel(sqe, &operation, 0);
    io_uring_sqe_set_data64(sqe, cancel_tag);
  }

  void queue_pending_cancels() noexcept {
    while (!pending_cancels_.empty() && !ring_full_for_test_) {
      io_uring_sqe* sqe = free_sqe();
      if (!sqe) return;
      prepare_cancel(sqe, *pending_cancels_.back());
      pending_cancels_.pop_back();
    }
  }

  // The operation has ended: a cancel of it still waiting for room in the
  // ring would reach whatever operation comes next at the same address (a
  // request lives on its fiber's stack).
  void forget_pending_cancel(IoCompletion* op) noexcept {
    std::erase(pending_cancels_, op);
  }

  // The hub is going: take back from the kernel everything it still holds
  // (the standing read targets wake_counter_, a member; multishot accepts
  // belong to listeners that may outlive the hub) before the memory goes.
  void cancel_everything() noexcept {
    io_uring_sqe* sqe = free_sqe();
    while (!sqe) {  // the destructor reaps completions until there is room
      io_uring_submit_and_wait(&ring_, 1);
      drain_completions();
      sqe = free_sqe();
    }
    if (multishot_accept_) {  // Linux 5.19+, as IORING_ASYNC_CANCEL_ANY
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    } else {  // only the standing read can be left: fibers have all ended
      io_uring_prep_cancel64(sqe, wake_tag, 0);
    }
    io_uring_sqe_set_data64(sqe, cancel_tag);
    closing_ = true;
    while (wake_read_armed_ || in_flight_ != 0 || detached_in_flight_ != 0) {
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -EBUSY)
        return;  // the ring is broken: nothing to wait for
      drain_completions();
    }
  }

  void drain_completions() {
    unsigned head;
    unsigned seen = 0;
    bool rearm = false;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      if (cqe->user_data == wake_tag) {
        rearm = true;
        continue;
      }
      if (cqe->user_data == cancel_tag) continue;
      auto* op = reinterpret_cast<IoCompletion*>(static_cast<std::uintptr_t>(cqe->user_data));
      if (!(cqe->flags & IORING_CQE_F_MORE)) {  // else a multishot operation goes on
        if (op->detached) {
          --detached_in_flight_;
        } else {
          --in_flight_;
        }
        if (!pending_cancels_.empty()) [[unlikely]]
          forget_pending_cancel(op);
      }
      op->complete(op, cqe->res, cqe->flags);
    }
    io_uring_cq_advance(&ring_, seen);
    if (rearm) {
      wake_read_armed_ = false;
      if (!closing_) arm_wake_read();
    }
  }

  struct FdLines {
    std::uint64_t fd_id = 0;  // 0: none
    FdLine read;
    FdLine write;
  };
  static void drop(FdLines& lines) noexcept {
    lines.read.drop();
    lines.write.drop();
    lines = FdLines{};
  }

  io_uring ring_{};
  std::vector<FdLines> lines_;                  // by fd
  std::vector<IoCompletion*> pending_cancels_;  // cancels that found the ring full
  bool multishot_accept_ = false;               // the kernel has IORING_ACCEPT_MULTISHOT (5.19)
  bool wake_read_armed_ = false;
  bool closing_ = false;
  int wake_fd_;
  int notify_fd_ = -1;
  std::uint64_t wake_counter_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_uring_backend(int wake_fd) {
  return std::make_unique<UringBackend>(wake_fd);
}

}  // namespace weft::detail

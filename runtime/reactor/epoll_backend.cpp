// epoll backend: the fallback where io_uring is unavailable (old kernels,
// seccomp profiles that deny io_uring_setup, kernel.io_uring_disabled).

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <limits>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "runtime/reactor/backend.hpp"
#include "runtime/reactor/fd_line.hpp"

namespace weft::detail {

namespace {

constexpr int max_events = 128;
constexpr std::uint64_t wake_tag = ~std::uint64_t{0};  // fds are the other tags

// epoll_wait's timeout: whole milliseconds, rounded up (a timer must never
// fire early), none for a zero or negative wait, and at most INT_MAX (about
// 24.8 days; the hub waits again after that).
int wait_milliseconds(std::chrono::nanoseconds timeout) noexcept {
  if (timeout.count() <= 0) return 0;
  const std::int64_t ms = timeout.count() / 1'000'000 + (timeout.count() % 1'000'000 != 0);
  return static_cast<int>(std::min<std::int64_t>(ms, std::numeric_limits<int>::max()));
}

// Set once a kernel before 5.11 has answered ENOSYS to epoll_pwait2.
std::atomic<bool> no_epoll_pwait2{false};

// Waits for events up to `timeout` (none: no limit). epoll_pwait2 (Linux
// 5.11) takes nanoseconds; epoll_wait, where it is missing, whole
// milliseconds rounded up, which makes every timer up to 1 ms late.
int wait_for_events(int epoll_fd, epoll_event* events,
                    std::optional<std::chrono::nanoseconds> timeout) noexcept {
#if defined(__GLIBC_PREREQ) && __GLIBC_PREREQ(2, 35)
  if (!no_epoll_pwait2.load(std::memory_order_relaxed)) {
    timespec limit{};
    if (timeout) {
      const std::int64_t ns = std::max<std::int64_t>(0, timeout->count());
      limit.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      limit.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    const int count =
        ::epoll_pwait2(epoll_fd, events, max_events, timeout ? &limit : nullptr, nullptr);
    if (count >= 0 || errno != ENOSYS) return count;
    no_epoll_pwait2.store(true, std::memory_order_relaxed);
  }
#endif
  return ::epoll_wait(epoll_fd, events, max_events, timeout ? wait_milliseconds(*timeout) : -1);
}

class EpollBackend final : public Backend {
 public:
  explicit EpollBackend(int wake_fd)
      : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), wake_fd_(wake_fd) {
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = wake_tag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) < 0) {
      const int error = errno;
      ::close(epoll_fd_);
      throw std::system_error(error, std::generic_category(), "epoll_ctl(ADD, hub eventfd)");
    }
  }

  ~EpollBackend() override { ::close(epoll_fd_); }

  std::string_view name() const noexcept override { return "epoll"; }

  void wait(std::optional<std::chrono::nanoseconds> timeout, bool collect) override {
    // Nothing could be ready.
    if (timeout && timeout->count() <= 0 && in_flight_ == 0 && !collect) return;
    epoll_event events[max_events];
    const int count = wait_for_events(epoll_fd_, events, timeout);
    if (count < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < count; ++i) {
      if (events[i].data.u64 == wake_tag) {
        drain_wake_fd();
        continue;
      }
      const int fd = static_cast<int>(events[i].data.u64);
      const std::uint32_t ready = events[i].events;
      const bool failed = ready & (EPOLLERR | EPOLLHUP);
      if (ready & (EPOLLIN | EPOLLRDHUP) || failed) notify(fd, false, ready);
      if (ready & EPOLLOUT || failed) notify(fd, true, ready);
    }
  }

  int poll_fd() noexcept override { return epoll_fd_; }

  bool runs_operations() const noexcept override { return false; }
  void start(IoRequest&) override {
    throw std::logic_error("weft: epoll runs no operations; make the call and watch the fd");
  }
  void cancel(IoCompletion&) noexcept override {}
  bool start_multishot_accept(int, IoCompletion*) override { return false; }

  // Each fd is registered once, edge-triggered, for both directions. That is
  // enough because a fiber watches only after learning that nothing is there
  // (EAGAIN, or a short stream transfer) or behind fibers already waiting,
  // and events are only looked at between fiber runs: an edge that came
  // before is used up by that call, and any later one wakes a watcher (or
  // marks the fd ready for the next call).
  //
  // Several fibers on one fd and direction wait in a line (FIFO). An edge
  // wakes the first; the next is woken only when that one is done with the
  // readiness without using it up (a whole transfer, an accepted connection,
  // end of stream, a kill before it ran), so one edge for several arrivals
  // serves them all, in turn. One that finds nothing goes back first in line.
  bool watch(int fd, std::uint64_t fd_id, bool for_write, FdWatcher* watcher) override {
    if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "weft: watching fd");
    if (static_cast<std::size_t>(fd) >= watches_.size()) watches_.resize(fd + 1);
    FdWatch& watch = watches_[fd];
    if (!watch.registered || watch.fd_id != fd_id) {
      // New, or a reused number whose old file was closed without forget()
      // (closing removed it from the epoll set, unless it was dup'ed: MOD).
      // Fibers still waiting on the old file get -EBADF.
      drop(watch);
      epoll_event event{};
      event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      event.data.u64 = static_cast<std::uint64_t>(fd);
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) < 0 &&
          (errno != EEXIST || ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) < 0)) {
        throw std::system_error(errno, std::generic_category(), "epoll_ctl(ADD)");
      }
      watch.registered = true;
      watch.fd_id = fd_id;
    }
    Line& line = for_write ? watch.write : watch.read;
    if (line.served == watcher) {
      line.served = nullptr;  // its call found nothing: it keeps its place
      line.push_front(watcher);
    } else {
      line.push_back(watcher);
    }
    ++in_flight_;
    return false;  // a turn is a readiness, which only wait() brings
  }

  void unwatch(int fd, bool for_write, FdWatcher* watcher) noexcept override {
    if (watcher->state == FdWatcher::State::idle) return;
    // Not idle: it is in a line of this registered fd, or has its turn.
    Line& line = for_write ? watches_[fd].write : watches_[fd].read;
    switch (line.leave(watcher)) {
      case FdLine::Left::place:
        --in_flight_;
        break;
      case FdLine::Left::turn:
        if (line.ready || line.closed) serve_first(line, 0);  // what it left is the next one's
        break;
      case FdLine::Left::nothing:
        break;
    }
  }

  bool maybe_ready(int fd, std::uint64_t fd_id, bool for_write) const noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= watches_.size()) return true;
    const FdWatch& watch = watches_[fd];
    if (!watch.registered || watch.fd_id != fd_id) return true;
    const Line& line = for_write ? watch.write : watch.read;
    if (!line.idle()) return false;  // others came first: wait behind them
    return line.ready || line.closed;
  }

  // A watcher's fd is registered; forget() (on close) clears the record and a
  // later file with the same number registers with its own id.
  bool still_open(int fd, std::uint64_t fd_id) const noexcept override {
    return fd >= 0 && static_cast<std::size_t>(fd) < watches_.size() && watches_[fd].registered &&
           watches_[fd].fd_id == fd_id;
  }

  // Only for a registered fd, whose edges are seen: one that is not yet stays
  // "maybe ready", and its next call finds out (and registers it on EAGAIN).
  void used_up(int fd, bool for_write) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= watches_.size() || !watches_[fd].registered) {
      return;
    }
    (for_write ? watches_[fd].write : watches_[fd].read).ready = false;
  }

  // Fibers still waiting on the fd (another fiber closed it) wake with -EBADF
  // rather than waiting forever; one that has its turn already finds it
  // closed (still_open).
  void forget(int fd, bool) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= watches_.size()) return;
    FdWatch& watch = watches_[fd];
    if (watch.registered) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    drop(watch);
  }

 private:
  struct Line : FdLine {
    bool ready = true;  // an edge came since the last EAGAIN / short transfer
    // Sticky: after the peer's FIN (or an error) a read never waits again, and
    // no further edge comes; a short read just before end of stream must not
    // make the next read wait for one.
    bool closed = false;
  };

  struct FdWatch {
    bool registered = false;
    std::uint64_t fd_id = 0;
    Line read;
    Line write;
  };

  void serve_first(Line& line, int result) noexcept {
    if (line.first) --in_flight_;
    line.serve_first(result);
  }

  // The file behind the record is gone: the record starts afresh.
  void drop(FdWatch& watch) noexcept {
    in_flight_ -= watch.read.drop() + watch.write.drop();
    watch = FdWatch{};
  }

  void notify(int fd, bool for_write, std::uint32_t events) noexcept {
    if (static_cast<std::size_t>(fd) >= watches_.size()) return;
    FdWatch& watch = watches_[fd];
    if (!watch.registered) return;  // forgotten earlier in this batch
    if (events & (EPOLLHUP | EPOLLERR)) watch.read.closed = watch.write.closed = true;
    if (events & EPOLLRDHUP) watch.read.closed = true;
    Line& line = for_write ? watch.write : watch.read;
    line.ready = true;
    // One that has the turn has not made its call yet: it sees this too.
    if (!line.served) serve_first(line, static_cast<int>(events));
  }

  void drain_wake_fd() noexcept {
    std::uint64_t counter;
    [[maybe_unused]] ssize_t got = ::read(wake_fd_, &counter, sizeof counter);
  }

  std::vector<FdWatch> watches_;
  int epoll_fd_;
  int wake_fd_;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend(int wake_fd) {
  return std::make_unique<EpollBackend>(wake_fd);
}

}  // namespace weft::detail

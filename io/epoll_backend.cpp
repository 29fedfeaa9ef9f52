// epoll backend: the fallback where io_uring is unavailable (old kernels,
// seccomp profiles that deny io_uring_setup, kernel.io_uring_disabled).

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "io/backend.hpp"

namespace weft::detail {

namespace {

constexpr int max_events = 128;

class EpollBackend final : public Backend {
 public:
  explicit EpollBackend(int wake_fd)
      : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), wake_fd_(wake_fd) {
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = 0;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) < 0) {
      const int error = errno;
      ::close(epoll_fd_);
      throw std::system_error(error, std::generic_category(), "epoll_ctl(ADD, hub eventfd)");
    }
  }

  ~EpollBackend() override { ::close(epoll_fd_); }

  std::string_view name() const noexcept override { return "epoll"; }

  void wait(std::optional<std::chrono::nanoseconds> timeout) override {
    int timeout_ms = -1;
    if (timeout) {
      if (timeout->count() <= 0 && in_flight_ == 0) return;  // nothing could be ready
      // Round up: a timer must never fire early.
      timeout_ms = static_cast<int>((timeout->count() + 999'999) / 1'000'000);
    }
    epoll_event events[max_events];
    const int count = ::epoll_wait(epoll_fd_, events, max_events, timeout_ms);
    if (count < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < count; ++i) {
      if (events[i].data.u64 == 0) {
        drain_wake_fd();
        continue;
      }
      auto* op = reinterpret_cast<IoCompletion*>(static_cast<std::uintptr_t>(events[i].data.u64));
      op->complete(op, static_cast<int>(events[i].events), 0);
    }
  }

  int poll_fd() const noexcept override { return epoll_fd_; }

 private:
  void drain_wake_fd() noexcept {
    std::uint64_t counter;
    [[maybe_unused]] ssize_t got = ::read(wake_fd_, &counter, sizeof counter);
  }

  int epoll_fd_;
  int wake_fd_;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend(int wake_fd) {
  return std::make_unique<EpollBackend>(wake_fd);
}

}  // namespace weft::detail

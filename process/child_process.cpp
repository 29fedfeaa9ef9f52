#include "process/child_process.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/process/codec.hpp>

#include "process/forkserver.hpp"
#include "runtime/hub_core.hpp"
#include "runtime/reactor/io_call.hpp"

extern char** environ;

namespace weft::detail {
namespace {

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// An fd that closes itself unless released (for the set-up paths that throw).
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno("fcntl(O_NONBLOCK)");
}

// Moves `fd` to a number above the ones a spawned child is given (3 and 4), so
// that its dup2 onto them always makes a new descriptor without close-on-exec.
int above_child_fds(int fd) {
  if (fd > 4) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 5);
  const int error = errno;
  ::close(fd);
  if (moved < 0) {
    errno = error;
    throw_errno("fcntl(F_DUPFD_CLOEXEC)");
  }
  return moved;
}

// A pidfd is always close-on-exec.
int open_pidfd(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw_errno("pidfd_open");
  return fd;
}

void kill_and_reap(pid_t pid) noexcept {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void forget_on_this_hub(int fd) noexcept {
  if (HubCore* hub = HubCore::current()) hub->backend().forget(fd);
}

}  // namespace

ChildProcess::ChildProcess(pid_t pid, Fds fds)
    : pid_(pid),
      pidfd_(fds.pidfd),
      status_fd_(fds.status),
      report_fd_(fds.report),
      arguments_fd_(fds.arguments),
      output_fd_(fds.output),
      pidfd_id_(next_fd_id()),
      output_id_(next_fd_id()),
      report_id_(next_fd_id()),
      arguments_id_(next_fd_id()) {}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      status_fd_(std::exchange(other.status_fd_, -1)),
      report_fd_(std::exchange(other.report_fd_, -1)),
      arguments_fd_(std::exchange(other.arguments_fd_, -1)),
      output_fd_(std::exchange(other.output_fd_, -1)),
      pidfd_id_(other.pidfd_id_),
      output_id_(other.output_id_),
      report_id_(other.report_id_),
      arguments_id_(other.arguments_id_),
      reaped_(std::exchange(other.reaped_, true)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill();
    try {
      wait_status_blocking();
    } catch (const std::system_error&) {
      // waitpid failed: not ours to reap after all
    }
  }
  close_fds();
}

ChildProcess ChildProcess::fork_running(UniqueFunction<void(int report_fd)> body,
                                        bool capture_output) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) < 0) throw_errno("pipe2");
  OwnedFd report_read(report[0]), report_write(report[1]);
  OwnedFd output_read, output_write;
  if (capture_output) {
    int output[2];
    if (::pipe2(output, O_CLOEXEC) < 0) throw_errno("pipe2");
    output_read.reset(output[0]);
    output_write.reset(output[1]);
  }
  std::fflush(nullptr);  // or the child would print the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    report_read.reset();
    if (capture_output) {
      ::dup2(output_write.get(), STDOUT_FILENO);
      ::dup2(output_write.get(), STDERR_FILENO);
      output_read.reset();
      output_write.reset();
    }
    int code = 0;
    try {
      body(report_write.get());
    } catch (...) {
      code = 70;  // EX_SOFTWARE: body reports its own errors; this is a failure to
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::setpgid(pid, pid);  // also here, so that a signal sent at once reaches the group
  report_write.reset();
  output_write.reset();
  try {
    set_nonblocking(report_read.get());
    if (capture_output) set_nonblocking(output_read.get());
    const int pidfd = open_pidfd(pid);
    return ChildProcess(pid, Fds{.pidfd = pidfd,
                                 .report = report_read.release(),
                                 .output = output_read.release()});
  } catch (...) {
    kill_and_reap(pid);
    throw;
  }
}

ChildProcess ChildProcess::spawn_entry(const std::string& entry, bool capture_output) {
  return start_entry(entry, capture_output, false);
}

ChildProcess ChildProcess::serve_entry(const std::string& entry, bool capture_output) {
  return start_entry(entry, capture_output, true);
}

namespace {

// posix_spawn of /proc/self/exe running `entry`, with the child's fds
// (arguments 3, report 4, output 1 and 2 if not -1).
pid_t spawn_entry_process(const std::string& entry, int arguments, int report, int output) {
  std::vector<std::pair<int, int>> fds{{arguments, 3}, {report, 4}};
  if (output >= 0) {
    fds.emplace_back(output, STDOUT_FILENO);
    fds.emplace_back(output, STDERR_FILENO);
  }
  return spawn_this_program({"--weft-process-entry", entry}, fds, "posix_spawn");
}

}  // namespace

ChildProcess ChildProcess::start_entry(const std::string& entry, bool capture_output,
                                       bool served) {
  int arguments[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, arguments) < 0)
    throw_errno("socketpair");
  OwnedFd arguments_parent(arguments[0]), arguments_child(above_child_fds(arguments[1]));
  int report[2];
  if (::pipe2(report, O_CLOEXEC) < 0) throw_errno("pipe2");
  OwnedFd report_read(report[0]), report_write(above_child_fds(report[1]));
  OwnedFd output_read, output_write;
  if (capture_output) {
    int output[2];
    if (::pipe2(output, O_CLOEXEC) < 0) throw_errno("pipe2");
    output_read.reset(output[0]);
    output_write.reset(above_child_fds(output[1]));
  }
  Fds fds;
  pid_t pid = -1;
  if (served) {
    const ServedChild child =
        forkserver_start(entry, arguments_child.get(), report_write.get(), output_write.get());
    pid = child.pid;
    fds.pidfd = child.pidfd;
    fds.status = child.status_fd;
  } else {
    pid = spawn_entry_process(entry, arguments_child.get(), report_write.get(),
                              output_write.get());
  }
  arguments_child.reset();
  report_write.reset();
  output_write.reset();
  try {
    set_nonblocking(report_read.get());
    set_nonblocking(arguments_parent.get());
    if (capture_output) set_nonblocking(output_read.get());
    if (!served) fds.pidfd = open_pidfd(pid);
  } catch (...) {
    ChildProcess abandoned(pid, fds);  // its destructor kills and reaps it
    throw;
  }
  fds.report = report_read.release();
  fds.arguments = arguments_parent.release();
  fds.output = output_read.release();
  return ChildProcess(pid, fds);
}

void ChildProcess::send_arguments(std::string_view arguments) {
  std::string frame;
  append_frame(frame, arguments);
  std::string_view bytes = frame;
  while (!bytes.empty() && arguments_fd_ >= 0) {
    IoRequest request;
    request.op = IoRequest::Op::send;
    request.fd = arguments_fd_;
    request.buffer = const_cast<char*>(bytes.data());
    request.length = std::min(bytes.size(), IoRequest::max_length);
    const int sent = run_io(request, arguments_id_, "weft: sending a child its arguments");
    if (sent < 0) break;  // it has gone (EPIPE): its exit status says why
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  if (arguments_fd_ >= 0) {
    forget_on_this_hub(arguments_fd_);
    ::close(std::exchange(arguments_fd_, -1));
  }
}

void ChildProcess::read_reports(const std::function<void(std::string_view)>& sink) {
  read_until_end(report_fd_, report_id_, sink);
}

void ChildProcess::read_output(const std::function<void(std::string_view)>& sink) {
  read_until_end(output_fd_, output_id_, sink);
}

std::size_t ChildProcess::drain_reports(const std::function<void(std::string_view)>& sink) {
  return drain(report_fd_, sink);
}

std::size_t ChildProcess::drain_output(const std::function<void(std::string_view)>& sink) {
  return drain(output_fd_, sink);
}

void ChildProcess::read_until_end(int fd, std::uint64_t id,
                                  const std::function<void(std::string_view)>& sink) {
  if (fd < 0) return;
  // On the heap, one for each reader: two fibers on small stacks may read
  // from one child at once (its report and its output). Not zeroed: after a
  // fork every page the parent writes is copied, so it writes only what
  // read() fills.
  const auto buffer = std::make_unique_for_overwrite<char[]>(read_buffer_size);
  for (;;) {
    IoRequest request;
    request.op = IoRequest::Op::read;
    request.fd = fd;
    request.buffer = buffer.get();
    request.length = read_buffer_size;
    const int got = run_io(request, id, "weft: reading from a child");
    if (got == 0) return;
    if (got < 0) throw std::system_error(-got, std::generic_category(), "reading from a child");
    sink(std::string_view(buffer.get(), static_cast<std::size_t>(got)));
  }
}

std::size_t ChildProcess::drain(int fd, const std::function<void(std::string_view)>& sink) {
  if (fd < 0) return 0;
  std::size_t total = 0;
  const auto buffer = std::make_unique_for_overwrite<char[]>(read_buffer_size);
  for (;;) {
    const ssize_t got = ::read(fd, buffer.get(), read_buffer_size);
    if (got > 0) {
      total += static_cast<std::size_t>(got);
      sink(std::string_view(buffer.get(), static_cast<std::size_t>(got)));
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    return total;  // EOF, or nothing more now (EAGAIN)
  }
}

bool ChildProcess::wait_exited(std::optional<std::int64_t> deadline_ns) {
  if (exited()) return true;
  IoRequest request;
  request.op = IoRequest::Op::poll_in;
  request.fd = exit_fd();
  if (deadline_ns) request.deadline_ns = *deadline_ns;
  const int rc = run_io(request, pidfd_id_, "weft: waiting for a child to exit");
  if (rc == -ETIMEDOUT) return false;
  if (rc < 0) throw std::system_error(-rc, std::generic_category(), "waiting for a child to exit");
  return true;
}

bool ChildProcess::exited() const noexcept {
  if (reaped_) return true;
  pollfd one{.fd = exit_fd(), .events = POLLIN, .revents = 0};
  return ::poll(&one, 1, 0) == 1;
}

void ChildProcess::terminate() noexcept {
  signal(SIGTERM);
}

void ChildProcess::kill() noexcept {
  signal(SIGKILL);
}

void ChildProcess::signal(int signal) noexcept {
  if (reaped_) return;
  // A served child may already be reaped by the server, its pid free for
  // reuse: the pidfd still names it, and its group is signalled only while
  // it has not exited.
  if (status_fd_ >= 0 && exited()) return;
  ::kill(-pid_, signal);
  if (pidfd_ >= 0) {
    ::syscall(SYS_pidfd_send_signal, pidfd_, signal, nullptr, 0);
  } else {
    ::kill(pid_, signal);  // in case it left its group
  }
}

int ChildProcess::reap() {
  const int status = wait_status_blocking();
  close_fds();
  return status;
}

int ChildProcess::wait_status_blocking() {
  int status = 0;
  if (status_fd_ >= 0) {
    status = forkserver_read_status(status_fd_);
  } else {
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) throw_errno("waitpid");
    }
  }
  reaped_ = true;
  return status;
}

void ChildProcess::close_fds() noexcept {
  for (int* fd : {&pidfd_, &status_fd_, &report_fd_, &arguments_fd_, &output_fd_}) {
    if (*fd < 0) continue;
    forget_on_this_hub(*fd);
    ::close(std::exchange(*fd, -1));
  }
}

pid_t spawn_this_program(const std::vector<std::string>& arguments,
                         const std::vector<std::pair<int, int>>& fds, const char* what) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attributes);
  for (const auto& [from, to] : fds)
    ::posix_spawn_file_actions_adddup2(&actions, from, to);
  ::posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  ::posix_spawnattr_setsigmask(&attributes, &no_signals);
  ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  std::string program = "/proc/self/exe";
  std::vector<std::string> copies = arguments;
  std::vector<char*> argv{program.data()};
  for (std::string& argument : copies)
    argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, program.c_str(), &actions, &attributes, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attributes);
  if (error != 0) throw std::system_error(error, std::generic_category(), what);
  return pid;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = ::sigabbrev_np(signal);
    return "signal " + std::to_string(signal) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "wait status " + std::to_string(status);
}

}  // namespace weft::detail

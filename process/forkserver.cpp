#include "process/forkserver.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/runtime/log.hpp>

#include "process/child_process.hpp"
#include "process/child_report.hpp"

namespace weft::detail {
namespace {

// A request is one datagram: a flag byte (1 when output_fd is sent) and the
// entry's name, with the fds attached in this order: arguments, report,
// status, and output when flagged.
constexpr std::size_t max_request_fds = 4;
constexpr std::size_t max_entry_name = 4096;

// The server's answer on a child's status socket: first its pid (or -errno
// when the fork failed) with its pidfd attached, then its wait status.
struct StartAnswer {
  std::int32_t pid;
};
struct ExitAnswer {
  std::int32_t status;
};

[[noreturn]] void throw_errno(int error, const char* what) {
  throw std::system_error(error, std::generic_category(), what);
}

bool send_with_fds(int socket, const void* data, std::size_t size, const int* fds,
                   std::size_t fd_count) noexcept {
  iovec part{.iov_base = const_cast<void*>(data), .iov_len = size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_request_fds)] = {};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  if (fd_count > 0) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
    std::memcpy(CMSG_DATA(header), fds, sizeof(int) * fd_count);
  }
  for (;;) {
    if (::sendmsg(socket, &message, MSG_NOSIGNAL) >= 0) return true;
    if (errno != EINTR) return false;
  }
}

// Receives one datagram into `data`; its fds (close-on-exec) go to `fds`.
// Returns the bytes received (0 when the peer has gone), or -errno.
ssize_t receive_with_fds(int socket, void* data, std::size_t size, std::vector<int>& fds) {
  iovec part{.iov_base = data, .iov_len = size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_request_fds)] = {};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t got;
  do {
    got = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return -errno;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* received = reinterpret_cast<const int*>(CMSG_DATA(header));
    fds.insert(fds.end(), received, received + count);
  }
  return got;
}

void close_all(const std::vector<int>& fds) noexcept {
  for (int fd : fds) ::close(fd);
}

// ----- the parent's side -----

// The parent's connection to its server. Forked children of the parent
// forget it (closing their copy of the socket), so that the server sees EOF
// when the parent itself exits, and make their own server when they need one.
struct Connection {
  std::mutex mutex;
  int socket = -1;
  pid_t server = -1;
};

Connection& connection() {
  static Connection* const instance = new Connection;  // used until exit, by at-exit code too
  return *instance;
}

void lock_before_fork() {
  connection().mutex.lock();
}
void unlock_in_parent() {
  connection().mutex.unlock();
}
void forget_server_in_child() {
  Connection& self = connection();
  if (self.socket >= 0) ::close(self.socket);
  self.socket = -1;
  self.server = -1;  // not this process's child
  self.mutex.unlock();
}

void start_server(Connection& self) {
  static const int installed =
      ::pthread_atfork(lock_before_fork, unlock_in_parent, forget_server_in_child);
  if (installed != 0) throw_errno(installed, "pthread_atfork");
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
    throw_errno(errno, "socketpair");
  if (pair[1] <= 3) {  // stdin was closed: a dup2 onto itself would keep close-on-exec
    const int moved = ::fcntl(pair[1], F_DUPFD_CLOEXEC, 4);
    ::close(pair[1]);
    if (moved < 0) {
      ::close(pair[0]);
      throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
    }
    pair[1] = moved;
  }
  // Its own group (spawn_this_program): a signal to a child's group, or the
  // terminal's, is not for it.
  pid_t pid = -1;
  try {
    pid = spawn_this_program({forkserver_flag}, {{pair[1], 3}},
                             "weft: starting the forkserver (posix_spawn)");
  } catch (...) {
    ::close(pair[0]);
    ::close(pair[1]);
    throw;
  }
  ::close(pair[1]);
  self.socket = pair[0];
  self.server = pid;
}

// The server has gone (it was killed): reap it, so that it is no zombie.
void forget_dead_server(Connection& self) noexcept {
  ::close(self.socket);
  self.socket = -1;
  int status;
  while (::waitpid(self.server, &status, 0) < 0 && errno == EINTR) {
  }
  log(LogLevel::warning, "weft: the forkserver had exited (" + std::to_string(status) +
                             "); starting a new one");
  self.server = -1;
}

void send_request(const std::string& entry, const int* fds, std::size_t fd_count,
                  bool with_output) {
  if (entry.size() > max_entry_name)
    throw std::invalid_argument("weft: a ProcessEntry name longer than 4096 bytes");
  std::string request(1, with_output ? '\1' : '\0');
  request.append(entry);
  Connection& self = connection();
  std::lock_guard lock(self.mutex);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (self.socket < 0) start_server(self);
    if (send_with_fds(self.socket, request.data(), request.size(), fds, fd_count)) return;
    const int error = errno;
    if (error != EPIPE && error != ECONNRESET) throw_errno(error, "weft: asking the forkserver");
    forget_dead_server(self);
  }
  throw std::system_error(EPIPE, std::generic_category(), "weft: the forkserver keeps exiting");
}

// ----- the server's side -----

struct Server {
  int control = -1;
  int child_exits = -1;               // a signalfd for SIGCHLD
  std::map<pid_t, int> status_fds;    // live children: where their status goes
  sigset_t child_signal;
};

// In the forked child: nothing of the server's stays open but its own fds,
// which become 3 (arguments), 4 (report), and stdout/stderr (output).
[[noreturn]] void become_child(Server& server, const std::string& entry,
                               const std::vector<int>& fds, bool with_output) {
  ::close(server.control);
  ::close(server.child_exits);
  for (const auto& [pid, fd] : server.status_fds)
    ::close(fd);
  ::close(fds[2]);
  ::sigprocmask(SIG_UNBLOCK, &server.child_signal, nullptr);
  ::setpgid(0, 0);
  // Above 4 first, so that no dup2 below overwrites an fd still needed.
  const int arguments = ::fcntl(fds[0], F_DUPFD, 5);
  const int report = ::fcntl(fds[1], F_DUPFD, 5);
  const int output = with_output ? ::fcntl(fds[3], F_DUPFD, 5) : -1;
  if (arguments < 0 || report < 0 || (with_output && output < 0)) ::_exit(71);
  ::dup2(arguments, 3);
  ::dup2(report, 4);
  if (with_output) {
    ::dup2(output, STDOUT_FILENO);
    ::dup2(output, STDERR_FILENO);
    ::close(output);
  }
  ::close(arguments);
  ::close(report);
  for (int fd : fds)
    if (fd > 4) ::close(fd);
  run_spawned_entry(entry.c_str());
}

void serve_request(Server& server) {
  char request[1 + max_entry_name];
  std::vector<int> fds;
  const ssize_t got = receive_with_fds(server.control, request, sizeof request, fds);
  if (got <= 0) {
    close_all(fds);
    if (got == 0 || got == -ECONNRESET) ::_exit(0);  // the parent has gone
    return;
  }
  const bool with_output = request[0] == '\1';
  if (fds.size() != (with_output ? 4u : 3u)) {
    close_all(fds);  // not from weft: nothing to answer on
    return;
  }
  const std::string entry(request + 1, static_cast<std::size_t>(got - 1));
  const int status_fd = fds[2];
  const pid_t pid = ::fork();
  if (pid == 0) become_child(server, entry, fds, with_output);
  StartAnswer answer{.pid = pid > 0 ? pid : -errno};
  const int pidfd = pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1;
  send_with_fds(status_fd, &answer, sizeof answer, &pidfd, pidfd >= 0 ? 1 : 0);
  if (pidfd >= 0) ::close(pidfd);
  for (std::size_t i = 0; i < fds.size(); ++i)
    if (i != 2 || pid < 0) ::close(fds[i]);
  if (pid > 0) server.status_fds[pid] = status_fd;
}

void reap_children(Server& server) {
  signalfd_siginfo info;
  while (::read(server.child_exits, &info, sizeof info) > 0) {
  }
  int status;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    const auto found = server.status_fds.find(pid);
    if (found == server.status_fds.end()) continue;
    const ExitAnswer answer{.status = status};
    send_with_fds(found->second, &answer, sizeof answer, nullptr, 0);
    ::close(found->second);
    server.status_fds.erase(found);
  }
}

}  // namespace

ServedChild forkserver_start(const std::string& entry, int arguments_fd, int report_fd,
                             int output_fd) {
  int status[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) < 0)
    throw_errno(errno, "socketpair");
  const bool with_output = output_fd >= 0;
  const std::array<int, max_request_fds> fds{arguments_fd, report_fd, status[1], output_fd};
  try {
    send_request(entry, fds.data(), with_output ? 4 : 3, with_output);
  } catch (...) {
    ::close(status[0]);
    ::close(status[1]);
    throw;
  }
  ::close(status[1]);
  StartAnswer answer{};
  std::vector<int> pidfd;
  const ssize_t got = receive_with_fds(status[0], &answer, sizeof answer, pidfd);
  if (got != static_cast<ssize_t>(sizeof answer) || answer.pid <= 0) {
    close_all(pidfd);
    ::close(status[0]);
    const int error = got < 0 ? static_cast<int>(-got) : answer.pid < 0 ? -answer.pid : EPIPE;
    throw_errno(error, "weft: the forkserver could not start a child");
  }
  return ServedChild{
      .pid = answer.pid, .pidfd = pidfd.empty() ? -1 : pidfd.front(), .status_fd = status[0]};
}

int forkserver_read_status(int status_fd) {
  ExitAnswer answer{};
  std::vector<int> none;
  const ssize_t got = receive_with_fds(status_fd, &answer, sizeof answer, none);
  close_all(none);
  if (got == static_cast<ssize_t>(sizeof answer)) return answer.status;
  log(LogLevel::error, "weft: the forkserver went away before it reported a child's exit");
  return 255 << 8;  // as waitpid would say "exit code 255"
}

void run_forkserver(int control_fd) {
  Server server;
  server.control = control_fd;
  sigemptyset(&server.child_signal);
  sigaddset(&server.child_signal, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &server.child_signal, nullptr);
  server.child_exits = ::signalfd(-1, &server.child_signal, SFD_CLOEXEC | SFD_NONBLOCK);
  if (server.child_exits < 0) ::_exit(71);
  for (;;) {
    pollfd waiting[2] = {{.fd = server.control, .events = POLLIN, .revents = 0},
                         {.fd = server.child_exits, .events = POLLIN, .revents = 0}};
    if (::poll(waiting, 2, -1) < 0) {
      if (errno == EINTR) continue;
      ::_exit(71);
    }
    if (waiting[1].revents != 0) reap_children(server);
    if (waiting[0].revents != 0) serve_request(server);
  }
}

}  // namespace weft::detail

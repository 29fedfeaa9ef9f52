#pragma once
/// A child process weft started, from the parent's side: its pid, a pidfd
/// that turns readable when it exits (for a child of the forkserver, its
/// status socket does), the read end of the pipe it reports through, and
/// (spawn, forkserver) the socket its arguments go down.
/// The child runs in a process group of its own, so the signals of
/// terminate() and kill() reach its own children too. weft reaps only the
/// children it started (waitid on the pidfd; never waitpid(-1)).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/runtime/detail/unique_function.hpp>

namespace weft::detail {

class ChildProcess {
 public:
  /// fork(): the child runs `body(report_fd)`, then flushes stdio and
  /// _exits with 0 (an exception escaping `body` exits with 70). The parent
  /// returns at once. Throws std::system_error if no process can be made.
  /// With `capture_output`, the child's stdout and stderr go to a pipe that
  /// read_output() reads.
  static ChildProcess fork_running(UniqueFunction<void(int report_fd)> body,
                                   bool capture_output = false);
  /// posix_spawn of /proc/self/exe running the ProcessEntry `entry` (see
  /// process_main): its arguments are read from fd 3, its report written to
  /// fd 4. Throws std::system_error.
  static ChildProcess spawn_entry(const std::string& entry, bool capture_output = false);
  /// The same, forked by the forkserver (process/forkserver.hpp), so not
  /// this process's child: its exit status comes from the server.
  static ChildProcess serve_entry(const std::string& entry, bool capture_output = false);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  /// A child never reaped is killed (SIGKILL to its group) and reaped here,
  /// blocking: weft never leaves a zombie. Closes every fd.
  ~ChildProcess();

  pid_t pid() const noexcept { return pid_; }

  /// From a fiber of the hub that does all the waiting (a suspension point):
  /// sends `bytes` down the arguments socket as one frame, then closes it.
  void send_arguments(std::string_view bytes);
  /// Hands the parent's end of the arguments socket (spawn, forkserver) to
  /// the caller, who owns it from now on (and sends the arguments frame
  /// itself): a two-way channel to the child. -1 for a forked child or once
  /// handed over or sent.
  int release_arguments_fd() noexcept { return std::exchange(arguments_fd_, -1); }
  /// From that fiber: reads the report pipe until the child closes it (it
  /// exits); each chunk goes to `sink`. A suspension point.
  void read_reports(const std::function<void(std::string_view)>& sink);
  /// Reads what the report pipe holds now, without waiting (after the child
  /// has exited: what it wrote last); each chunk goes to `sink`.
  std::size_t drain_reports(const std::function<void(std::string_view)>& sink);
  /// read_reports and drain_reports for the captured stdout and stderr (no-ops
  /// without capture).
  void read_output(const std::function<void(std::string_view)>& sink);
  std::size_t drain_output(const std::function<void(std::string_view)>& sink);
  /// From that fiber: waits until the child has exited, at most until
  /// `deadline_ns` (the hub's clock); false if the deadline came first.
  bool wait_exited(std::optional<std::int64_t> deadline_ns);
  /// Has it exited (a zombie, not reaped yet)? Never waits.
  bool exited() const noexcept;

  /// SIGTERM / SIGKILL to the child's process group; a no-op once reaped.
  void terminate() noexcept;
  void kill() noexcept;

  /// Reaps the child, which has exited; returns its wait status (as
  /// waitpid's: WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG). Closes the
  /// pidfd and the pipes.
  int reap();

 private:
  struct Fds {
    int pidfd = -1;
    int status = -1;  // a served child's status socket
    int report = -1;
    int arguments = -1;
    int output = -1;
  };
  ChildProcess(pid_t pid, Fds fds);
  static ChildProcess start_entry(const std::string& entry, bool capture_output, bool served);
  // What turns readable when the child has exited.
  int exit_fd() const noexcept { return status_fd_ >= 0 ? status_fd_ : pidfd_; }
  void signal(int signal) noexcept;
  int wait_status_blocking();
  void read_until_end(int fd, std::uint64_t id, const std::function<void(std::string_view)>& sink);
  std::size_t drain(int fd, const std::function<void(std::string_view)>& sink);
  void close_fds() noexcept;

  static constexpr std::size_t read_buffer_size = 65536;

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int status_fd_ = -1;
  int report_fd_ = -1;
  int arguments_fd_ = -1;
  int output_fd_ = -1;
  std::uint64_t pidfd_id_ = 0;
  std::uint64_t output_id_ = 0;
  std::uint64_t report_id_ = 0;
  std::uint64_t arguments_id_ = 0;
  bool reaped_ = false;
};

/// posix_spawn of this program (/proc/self/exe) with `arguments` after
/// argv[0], each (from, to) of `fds` dup2'd, in a process group of its own
/// and with no signal blocked. Throws std::system_error naming `what`.
pid_t spawn_this_program(const std::vector<std::string>& arguments,
                         const std::vector<std::pair<int, int>>& fds, const char* what);

/// The wait status `status` in words: "exit code N", "signal N (SIGNAME)".
std::string describe_wait_status(int status);

}  // namespace weft::detail

#pragma once
/// StartMethod::forkserver: one clean server process, spawned from this
/// program (/proc/self/exe) on first use, forks every child. Since a fork
/// copies only the small server, a big parent pays nothing for its own size.
///
/// The parent keeps one fd: a SOCK_SEQPACKET socket to the server, which
/// every request goes down with the child's fds (SCM_RIGHTS). Each child also
/// gets a status socket of its own: the server answers on it with the child's
/// pid and a pidfd, and later with its wait status, since only the server can
/// reap it. The server exits when the parent does (its end of the socket
/// reads EOF); it never forks from a thread that may end (it has one), and
/// the parent's socket is closed in every fork child, so a child of the
/// parent never keeps the server alive.

#include <sys/types.h>

#include <string>

namespace weft::detail {

/// A child the forkserver started: its pid, a pidfd for it (or -1), and the
/// status socket on which its wait status arrives once it has been reaped.
struct ServedChild {
  pid_t pid = -1;
  int pidfd = -1;
  int status_fd = -1;
};

/// Asks the forkserver (started on first use) to fork a child that runs the
/// ProcessEntry named `entry` with `arguments_fd` as its fd 3, `report_fd` as
/// its fd 4 and, if not -1, `output_fd` as its stdout and stderr. Blocks
/// until the child exists. The fds stay the caller's. Throws
/// std::system_error if the server cannot be started or cannot fork.
ServedChild forkserver_start(const std::string& entry, int arguments_fd, int report_fd,
                             int output_fd);

/// The status a served child's status socket carries, read (blocking) once
/// it is readable; if the server went away first, an exit code of 255.
int forkserver_read_status(int status_fd);

/// The server's side: serves the parent on `control_fd` until the parent
/// has gone, then exits. Called by process_main.
[[noreturn]] void run_forkserver(int control_fd);

/// The argv[1] that makes process_main run the server.
inline constexpr const char* forkserver_flag = "--weft-forkserver";

}  // namespace weft::detail

// Backend choice: io_uring by default, epoll where io_uring is denied (as
// Docker's default seccomp profile does), WEFT_BACKEND to force one.

#include <fcntl.h>
#include <liburing.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "runtime/reactor/uring_probe.hpp"

namespace {

// Makes io_uring_setup fail with EPERM for this process and its children.
bool deny_io_uring_setup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

struct ChildResult {
  int exit_code;
  std::string output;  // the child's stdout and stderr
};

// Runs `body` in a forked child; its exit code and output come back.
template <class Body>
ChildResult in_child(Body body) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return {-1, "pipe failed"};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    _exit(body());
  }
  close(pipe_fds[1]);
  ChildResult result{-1, {}};
  char buffer[512];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
    result.output.append(buffer, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

int print_backend_after_a_fiber_ran() {
  try {
    std::string name = weft::run([] {
      auto child = weft::spawn([] {
        weft::sleep(std::chrono::milliseconds(1));
        return weft::backend_name();
      });
      return child.wait();
    });
    std::printf("backend=%s\n", name.c_str());
    std::fflush(stdout);
    return 0;
  } catch (const std::exception& e) {
    std::printf("error=%s\n", e.what());
    std::fflush(stdout);
    return 3;
  }
}

}  // namespace

TEST(Backend, FallsBackToEpollWhenSeccompDeniesIoUringSetupAndSaysWhyInOneLine) {
  ChildResult child = in_child([] {
    unsetenv("WEFT_BACKEND");
    if (!deny_io_uring_setup()) return 2;
    return print_backend_after_a_fiber_ran();
  });
  ASSERT_NE(child.exit_code, 2) << "could not install the seccomp filter";
  EXPECT_EQ(child.exit_code, 0) << child.output;
  EXPECT_NE(child.output.find("backend=epoll"), std::string::npos) << child.output;
  const std::string why =
      "weft: io_uring unavailable (io_uring_queue_init: Operation not permitted), using epoll\n";
  EXPECT_NE(child.output.find(why), std::string::npos) << child.output;
  // One line, not one per hub or per round.
  EXPECT_EQ(child.output.find(why), child.output.rfind(why));
}

TEST(Backend, ForcingIoUringWhereItIsDeniedIsAnErrorNotASilentFallback) {
  ChildResult child = in_child([] {
    setenv("WEFT_BACKEND", "io_uring", 1);
    if (!deny_io_uring_setup()) return 2;
    return print_backend_after_a_fiber_ran();
  });
  EXPECT_EQ(child.exit_code, 3) << child.output;
  EXPECT_NE(child.output.find("Operation not permitted"), std::string::npos) << child.output;
}

TEST(Backend, WeftBackendSelectsEachBackend) {
  for (const char* name : {"epoll", "io_uring"}) {
    ChildResult child = in_child([name] {
      setenv("WEFT_BACKEND", name, 1);
      return print_backend_after_a_fiber_ran();
    });
    EXPECT_EQ(child.exit_code, 0) << child.output;
    EXPECT_NE(child.output.find(std::string("backend=") + name), std::string::npos) << child.output;
  }
}

TEST(Backend, AnUnknownWeftBackendValueIsAnError) {
  ChildResult child = in_child([] {
    setenv("WEFT_BACKEND", "kqueue", 1);
    return print_backend_after_a_fiber_ran();
  });
  EXPECT_EQ(child.exit_code, 3) << child.output;
  EXPECT_NE(child.output.find("WEFT_BACKEND='kqueue' names no backend"), std::string::npos)
      << child.output;
}

namespace {

// A probe as a kernel answers IORING_REGISTER_PROBE: every operation up to
// `last_op` supported, except `lacking`.
std::vector<unsigned char> fake_probe(int last_op, int lacking = -1) {
  std::vector<unsigned char> bytes(sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op));
  auto* probe = reinterpret_cast<io_uring_probe*>(bytes.data());
  probe->last_op = static_cast<std::uint8_t>(last_op);
  probe->ops_len = static_cast<std::uint8_t>(last_op + 1);
  for (int op = 0; op <= last_op; ++op) {
    probe->ops[op].op = static_cast<std::uint8_t>(op);
    if (op != lacking) probe->ops[op].flags = IO_URING_OP_SUPPORTED;
  }
  return bytes;
}

const io_uring_probe& as_probe(const std::vector<unsigned char>& bytes) {
  return *reinterpret_cast<const io_uring_probe*>(bytes.data());
}

}  // namespace

// Before: Linux 5.1 to 5.5 have io_uring but not every operation weft
// issues; weft chose io_uring there and failed at the first socket call.
TEST(Backend, AKernelLackingAnOperationWeftUsesIsNoIoUringForWeft) {
  using weft::detail::first_missing_uring_operation;
  EXPECT_EQ(first_missing_uring_operation(as_probe(fake_probe(IORING_OP_LAST - 1))), "");
  EXPECT_EQ(
      first_missing_uring_operation(as_probe(fake_probe(IORING_OP_LAST - 1, IORING_OP_ACCEPT))),
      "IORING_OP_ACCEPT");
  // Linux 5.5 stops at IORING_OP_CONNECT: no send, recv, read or write yet.
  EXPECT_EQ(first_missing_uring_operation(as_probe(fake_probe(IORING_OP_CONNECT))),
            "IORING_OP_READ");
  io_uring_probe* here = io_uring_get_probe();
  if (here) {  // this kernel: everything weft uses (else the suite runs on epoll)
    if (weft::run([] { return weft::backend_name(); }) == "io_uring") {
      EXPECT_EQ(first_missing_uring_operation(*here), "");
    }
    io_uring_free_probe(here);
  }
}

// Backend choice: io_uring by default, epoll where io_uring is denied (as
// Docker's default seccomp profile does), WEFT_BACKEND to force one.

#include <fcntl.h>
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
#include <string>

#include <weft/weft.hpp>

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

// fork(): the child starts with no hub, whichever thread or fiber forked, and
// may make its own.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

namespace {

class Fork : public weft_test::FdLeakCheck {};

// Forks; the child runs `child` and exits with its result (3 if it threw).
// Returns the child's exit status, reaped: no zombie is left.
int exit_status_of_child(const std::function<int()>& child) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int code = 3;
    try {
      code = child();
    } catch (...) {
    }
    std::_Exit(code);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_a_hub_with_timers_and_fibers() {
  return weft::run([] {
    weft::sleep(1ms);
    auto answer = weft::spawn([] { return 41; });
    return answer.wait() == 41 ? 0 : 1;
  });
}

}  // namespace

// Before: the child still had the parent's hub in its thread-local state, so
// weft::run threw "this thread already runs a hub".
TEST_F(Fork, ChildForkedFromAFiberCanRunAHubOfItsOwn) {
  weft::run([] { EXPECT_EQ(exit_status_of_child(run_a_hub_with_timers_and_fibers), 0); });
}

TEST_F(Fork, ChildForkedFromAFiberHasNoHubUntilItMakesOne) {
  weft::run([] {
    EXPECT_EQ(exit_status_of_child([] {
                try {
                  weft::Hub::current();
                } catch (const weft::NoHubError&) {
                  return 0;
                }
                return 1;
              }),
              0);
  });
}

TEST_F(Fork, ChildForkedFromAnEmbeddedHubsThreadCanRunAHubOfItsOwn) {
  weft::Hub hub;
  EXPECT_EQ(exit_status_of_child(run_a_hub_with_timers_and_fibers), 0);
  hub.run_once();
}

TEST_F(Fork, ChildOfAFiberCanDoIo) {
  weft::run([] {
    EXPECT_EQ(exit_status_of_child([] {
                return weft::run([] {
                  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
                  auto server = weft::spawn([&] {
                    auto stream = listener.accept();
                    char byte = 0;
                    stream.read_exact(&byte, 1);
                    return byte;
                  });
                  auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
                  client.write_all("k", 1);
                  return server.wait() == 'k' ? 0 : 1;
                });
              }),
              0);
  });
}

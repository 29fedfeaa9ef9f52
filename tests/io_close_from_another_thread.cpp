// close() of a socket from a thread other than the hub whose fibers use it
// (a plain thread, or a fiber of another hub): the close is handed to that
// hub, which wakes the fibers waiting on it with EBADF and closes the fd; if
// that hub has ended, the close happens at once where it is called. The suite
// runs again with WEFT_BACKEND=epoll, and under ThreadSanitizer.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"
#include "hang_watchdog.hpp"

namespace {

class CloseFromAnotherThread : public weft_test::FdLeakCheck {};

bool fd_is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

// A plain blocking client connected to `port` on the loopback address.
int connect_client(int port) {
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return client;
}

// Runs `f` on hub `hub` of `runtime` and returns its result to this plain
// thread (GreenThread::wait needs a fiber until the fiber has ended).
template <class F>
auto on_hub(weft::Runtime& runtime, std::size_t hub, F f) {
  std::promise<decltype(f())> result;
  runtime.spawn_on(hub, [&] { result.set_value(f()); });
  return result.get_future().get();
}

// What a call that the close cut short threw: its errno, or 0.
template <class Call>
int error_of(Call call) {
  try {
    call();
    return 0;
  } catch (const std::system_error& e) {
    return e.code().value();
  }
}

}  // namespace

TEST_F(CloseFromAnotherThread, APlainThreadClosingAListenerWakesEveryAcceptorWithEbadf) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 1});
  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
  const int fd = listener.native_handle();
  std::atomic<int> waiting{0};
  std::atomic<int> got_ebadf{0};
  std::atomic<int> ended{0};
  for (int i = 0; i < 3; ++i) {
    runtime.spawn_on(0, [&] {
      ++waiting;
      if (error_of([&] { listener.accept(); }) == EBADF) ++got_ebadf;
      ++ended;
    });
  }
  while (waiting < 3)
    std::this_thread::yield();
  // A fiber started after them runs once all three wait in accept: its answer
  // orders their start of accept() before the close (a close that races with
  // a call being started is a data race, as for any fd).
  on_hub(runtime, 0, [] { return 0; });

  HangWatchdog watchdog("the acceptors, after a close from a plain thread");
  listener.close();
  EXPECT_FALSE(listener.is_open());  // at once, for the caller
  while (ended < 3)
    std::this_thread::yield();
  EXPECT_EQ(got_ebadf, 3);
  EXPECT_FALSE(fd_is_open(fd));  // closed in the round that woke them
}

TEST_F(CloseFromAnotherThread, AFiberOfAnotherHubClosingAStreamWakesItsReaderWithEbadf) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
  const int client = connect_client(listener.local_port());
  std::optional<weft::TcpStream> stream;
  std::atomic<bool> reading{false};
  std::promise<int> read_error;
  runtime.spawn_on(0, [&] {
    stream.emplace(listener.accept());
    reading = true;
    char byte;
    read_error.set_value(error_of([&] { stream->read_some(&byte, 1); }));
  });
  while (!reading)
    std::this_thread::yield();
  on_hub(runtime, 0, [] { return 0; });  // runs once the read waits

  HangWatchdog watchdog("the reader, after a close from another hub");
  on_hub(runtime, 1, [&] {
    stream->close();
    return 0;
  });
  EXPECT_EQ(read_error.get_future().get(), EBADF);
  listener.close();
  ::close(client);
}

TEST_F(CloseFromAnotherThread, ACloseHandedToAHubThatEndsBeforeRunningItStillClosesTheFd) {
  int fd = -1;
  {
    weft::Hub hub;
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    fd = listener.native_handle();
    const int client = connect_client(listener.local_port());
    auto acceptor = hub.spawn([&] { listener.accept(); });  // the listener is this hub's now
    hub.run_until([&] { return acceptor.dead(); });
    acceptor.wait();
    std::thread([&] { listener.close(); }).join();  // handed to the hub, which runs no more rounds
    EXPECT_FALSE(listener.is_open());
    ::close(client);
  }
  EXPECT_FALSE(fd_is_open(fd));
}

TEST_F(CloseFromAnotherThread, AfterItsHubHasEndedACloseHappensAtOnceWhereItIsCalled) {
  std::optional<weft::TcpListener> listener;
  weft::run([&] {
    listener.emplace(weft::TcpListener::bind("127.0.0.1", 0));
    const int client = connect_client(listener->local_port());
    listener->accept();
    ::close(client);
  });
  const int fd = listener->native_handle();
  std::thread([&] { listener->close(); }).join();
  EXPECT_FALSE(fd_is_open(fd));
}

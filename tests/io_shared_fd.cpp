// Several fibers on one fd (the suite runs again with WEFT_BACKEND=epoll): a
// pool of fibers accepting on one listener, several readers or writers on one
// stream, served first come, first served; closing the fd, a kill or a
// Timeout of one of them leaves the others served; no fd left behind.
//
// Fibers get parked deterministically: a spawned fiber starts at the next
// round, and yield() returns once every ready fiber has run to its next
// suspension point. The timeouts below only turn a fiber that waits forever
// into a failure.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

namespace {

class SharedFdTest : public weft_test::FdLeakCheck {};

constexpr auto forever = 5s;  // a fiber still waiting after this never gets served

// The peer's port of the connection accepted, or -errno.
int accept_port_or_errno(weft::TcpListener& listener) {
  try {
    return listener.accept().peer_port();
  } catch (const std::system_error& e) {
    return -e.code().value();
  }
}

// A blocking connect from outside the hub: the connection waits in the
// listener's backlog until the hub looks.
int raw_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int raw_local_port(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

// `count` connections, made one after another from a plain thread while the
// hub thread waits for it: all of them are in the backlog at the next poll.
std::vector<int> connect_burst(int port, int count) {
  std::vector<int> fds;
  std::thread connector([&] {
    for (int i = 0; i < count; ++i)
      fds.push_back(raw_connect(port));
  });
  connector.join();
  return fds;
}

std::vector<weft::GreenThread<int>> spawn_acceptors(weft::TcpListener& listener, int count) {
  std::vector<weft::GreenThread<int>> acceptors;
  for (int i = 0; i < count; ++i)
    acceptors.push_back(weft::spawn([&listener] { return accept_port_or_errno(listener); }));
  weft::yield();  // each waits in accept() now, in the order spawned
  return acceptors;
}

template <class R>
R wait_for(const weft::GreenThread<R>& fiber) {
  return weft::with_timeout(forever, [&] { return fiber.wait(); });
}

// A read of one byte: the byte, or -errno.
int read_byte_or_errno(weft::TcpStream& stream) {
  try {
    char byte;
    return stream.read_some(&byte, 1) == 1 ? byte : -1;
  } catch (const std::system_error& e) {
    return -e.code().value();
  }
}

struct Connection {
  weft::TcpListener listener;
  weft::TcpStream client;
  weft::TcpStream peer;
};

Connection connected() {
  Connection c;
  c.listener = weft::TcpListener::bind("127.0.0.1", 0);
  c.client = weft::TcpStream::connect("127.0.0.1", c.listener.local_port());
  c.peer = c.listener.accept();
  return c;
}

}  // namespace

TEST_F(SharedFdTest, SeveralFibersAcceptingOnOneListenerAreServedInTheOrderTheyCame) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto acceptors = spawn_acceptors(listener, 4);
    for (std::size_t i = 0; i < acceptors.size(); ++i) {
      auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
      EXPECT_EQ(wait_for(acceptors[i]), client.local_port()) << "acceptor " << i;
    }
  });
}

// One readiness edge (epoll) or one round of completions (io_uring) for
// several connections: each waiting acceptor gets one, in order.
TEST_F(SharedFdTest, ABurstOfConnectionsIsSharedOutAmongTheWaitingAcceptorsInOrder) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto acceptors = spawn_acceptors(listener, 4);
    const auto clients = connect_burst(listener.local_port(), 4);
    for (std::size_t i = 0; i < acceptors.size(); ++i) {
      ASSERT_GE(clients[i], 0);
      EXPECT_EQ(wait_for(acceptors[i]), raw_local_port(clients[i])) << "acceptor " << i;
    }
    for (int fd : clients)
      ::close(fd);
  });
}

TEST_F(SharedFdTest, ClosingAListenerWakesEveryWaitingAcceptorWithEbadf) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto acceptors = spawn_acceptors(listener, 3);
    listener.close();
    for (std::size_t i = 0; i < acceptors.size(); ++i)
      EXPECT_EQ(wait_for(acceptors[i]), -EBADF) << "acceptor " << i;
  });
}

// io_uring: the multishot queue remembered one waiter, so after it was served
// the close freed the queue under the others.
TEST_F(SharedFdTest, ClosingAListenerAfterOneAcceptorWasServedWakesTheOthersWithEbadf) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto acceptors = spawn_acceptors(listener, 3);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    EXPECT_EQ(wait_for(acceptors[0]), client.local_port());
    listener.close();
    EXPECT_EQ(wait_for(acceptors[1]), -EBADF);
    EXPECT_EQ(wait_for(acceptors[2]), -EBADF);
  });
}

TEST_F(SharedFdTest, KillingOneOfSeveralWaitingAcceptorsLeavesTheOthersServedInOrder) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto acceptors = spawn_acceptors(listener, 3);
    acceptors[1].kill();
    EXPECT_THROW(acceptors[1].wait(), weft::FiberExit);
    for (std::size_t i : {0, 2}) {
      auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
      EXPECT_EQ(wait_for(acceptors[i]), client.local_port()) << "acceptor " << i;
    }
  });
}

TEST_F(SharedFdTest, ATimeoutOfOneOfSeveralWaitingAcceptorsLeavesTheOthersServedInOrder) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto first = weft::spawn([&] { return accept_port_or_errno(listener); });
    auto timed = weft::spawn(
        [&] { return weft::with_timeout(1ms, [&] { return accept_port_or_errno(listener); }); });
    auto last = weft::spawn([&] { return accept_port_or_errno(listener); });
    weft::yield();  // all three wait
    EXPECT_THROW(wait_for(timed), weft::TimeoutError);
    for (auto* acceptor : {&first, &last}) {
      auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
      EXPECT_EQ(wait_for(*acceptor), client.local_port());
    }
  });
}

// The first acceptor is handed the connection (io_uring) or woken by its
// readiness (epoll), then killed before it runs: the connection goes to the
// next one, not down with the killed fiber.
TEST_F(SharedFdTest, AnAcceptorKilledAfterItWasWokenLeavesTheConnectionToTheNext) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto acceptors = spawn_acceptors(listener, 2);
    const auto clients = connect_burst(listener.local_port(), 1);
    ASSERT_GE(clients[0], 0);
    weft::yield();  // the hub polls: the connection reaches the first acceptor
    acceptors[0].kill();
    EXPECT_THROW(acceptors[0].wait(), weft::FiberExit);
    EXPECT_EQ(wait_for(acceptors[1]), raw_local_port(clients[0]));
    ::close(clients[0]);
  });
}

TEST_F(SharedFdTest, SeveralReadersOnOneStreamAreServedInTheOrderTheyCame) {
  weft::run([] {
    auto c = connected();
    std::vector<weft::GreenThread<int>> readers;
    for (int i = 0; i < 3; ++i)
      readers.push_back(weft::spawn([&] { return read_byte_or_errno(c.client); }));
    weft::yield();  // all three wait
    const std::string bytes = "abc";
    for (std::size_t i = 0; i < readers.size(); ++i) {
      c.peer.write_all(&bytes[i], 1);
      EXPECT_EQ(wait_for(readers[i]), bytes[i]) << "reader " << i;
    }
  });
}

// One edge (epoll) for bytes enough for all: each reader gets its share.
TEST_F(SharedFdTest, DataForSeveralWaitingReadersIsSharedOutInOrder) {
  weft::run([] {
    auto c = connected();
    std::vector<weft::GreenThread<int>> readers;
    for (int i = 0; i < 3; ++i)
      readers.push_back(weft::spawn([&] { return read_byte_or_errno(c.client); }));
    weft::yield();
    c.peer.write_all("abc", 3);
    std::string got;
    for (auto& reader : readers)
      got += static_cast<char>(wait_for(reader));
    EXPECT_EQ(got, "abc");
  });
}

TEST_F(SharedFdTest, AReaderKilledAfterItWasWokenLeavesTheDataToTheNext) {
  weft::run([] {
    auto c = connected();
    auto first = weft::spawn([&] { return read_byte_or_errno(c.client); });
    auto second = weft::spawn([&] { return read_byte_or_errno(c.client); });
    weft::yield();  // both wait
    c.peer.write_all("x", 1);
    weft::yield();  // the hub polls: the byte's readiness reaches the first reader
    first.kill();
    // io_uring may have finished the first read in the kernel already: then
    // the byte is the first reader's, and nothing is lost either.
    int first_got = 0;
    try {
      first_got = first.wait();
    } catch (const weft::FiberExit&) {
    }
    if (first_got == 'x') {
      second.kill();
    } else {
      EXPECT_EQ(wait_for(second), 'x');
    }
  });
}

TEST_F(SharedFdTest, KillingOneOfSeveralWaitingReadersLeavesTheOthersServedInOrder) {
  weft::run([] {
    auto c = connected();
    std::vector<weft::GreenThread<int>> readers;
    for (int i = 0; i < 3; ++i)
      readers.push_back(weft::spawn([&] { return read_byte_or_errno(c.client); }));
    weft::yield();
    readers[0].kill();
    EXPECT_THROW(readers[0].wait(), weft::FiberExit);
    c.peer.write_all("m", 1);
    EXPECT_EQ(wait_for(readers[1]), 'm');
    c.peer.write_all("n", 1);
    EXPECT_EQ(wait_for(readers[2]), 'n');
  });
}

// Two readers and two writers at once on one stream, the writers stuck on a
// full socket buffer: everyone is served, no byte is lost.
TEST_F(SharedFdTest, TwoReadersAndTwoWritersUseOneStreamAtOnce) {
  weft::run([] {
    auto c = connected();
    constexpr std::size_t chunk = 16 << 20;  // more than the socket buffers hold
    std::vector<weft::GreenThread<int>> readers;
    for (int i = 0; i < 2; ++i)
      readers.push_back(weft::spawn([&] { return read_byte_or_errno(c.client); }));
    std::vector<weft::GreenThread<void>> writers;
    for (char fill : {'1', '2'}) {
      writers.push_back(weft::spawn([&c, fill] {
        const std::vector<char> bytes(chunk, fill);
        c.client.write_all(bytes.data(), bytes.size());
      }));
    }
    weft::yield();  // the readers wait; the writers have filled the buffers and wait
    c.peer.write_all("rs", 2);
    EXPECT_EQ(wait_for(readers[0]), 'r');
    EXPECT_EQ(wait_for(readers[1]), 's');
    std::size_t count[2] = {0, 0};
    std::vector<char> buffer(1 << 16);
    weft::with_timeout(forever, [&] {
      for (std::size_t total = 0; total < 2 * chunk;) {
        const std::size_t got = c.peer.read_some(buffer.data(), buffer.size());
        ASSERT_GT(got, 0u);
        for (std::size_t i = 0; i < got; ++i)
          ++count[buffer[i] - '1'];
        total += got;
      }
    });
    EXPECT_EQ(count[0], chunk);
    EXPECT_EQ(count[1], chunk);
    for (auto& writer : writers)
      wait_for(writer);
  });
}

TEST_F(SharedFdTest, ClosingAStreamWakesEveryFiberWaitingOnItWithEbadf) {
  weft::run([] {
    auto c = connected();
    std::vector<weft::GreenThread<int>> waiting;
    for (int i = 0; i < 2; ++i)
      waiting.push_back(weft::spawn([&] { return read_byte_or_errno(c.client); }));
    for (int i = 0; i < 2; ++i) {
      waiting.push_back(weft::spawn([&]() -> int {
        const std::vector<char> bytes(16 << 20, 'w');
        try {
          c.client.write_all(bytes.data(), bytes.size());
          return 0;
        } catch (const std::system_error& e) {
          return -e.code().value();
        }
      }));
    }
    weft::yield();  // two readers and two writers wait
    c.client.close();
    for (std::size_t i = 0; i < waiting.size(); ++i)
      EXPECT_EQ(wait_for(waiting[i]), -EBADF) << (i < 2 ? "reader " : "writer ") << i;
  });
}

// Datagrams (epoll: one edge for all three): each waiting receiver gets one,
// in the order the receivers came.
TEST_F(SharedFdTest, SeveralFibersReceivingOnOneUdpSocketGetADatagramEachInOrder) {
  weft::run([] {
    auto receiver = weft::UdpSocket::bind("127.0.0.1", 0);
    auto sender = weft::UdpSocket::bind("127.0.0.1", 0);
    std::vector<weft::GreenThread<int>> receivers;
    for (int i = 0; i < 3; ++i) {
      receivers.push_back(weft::spawn([&] {
        char byte;
        return receiver.recv(&byte, 1) == 1 ? int{byte} : -1;
      }));
    }
    weft::yield();  // all three wait
    for (const char* datagram : {"a", "b", "c"})
      sender.send_to(datagram, 1, "127.0.0.1", receiver.local_port());
    std::string got;
    for (auto& fiber : receivers)
      got += static_cast<char>(wait_for(fiber));
    EXPECT_EQ(got, "abc");
  });
}

// TcpListener / TcpStream on the hub's backend (the suite runs again with
// WEFT_BACKEND=epoll): echo, errors as std::system_error, kill and Timeout
// during every blocking call, and no fd left behind.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

namespace {

class TcpTest : public weft_test::FdLeakCheck {};

std::vector<char> pattern(std::size_t size) {
  std::vector<char> bytes(size);
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<char>(i * 131 + 7);
  return bytes;
}

// Echoes everything it reads until end of stream.
void echo(weft::TcpStream stream) {
  char buffer[16384];
  while (std::size_t got = stream.read_some(buffer, sizeof buffer))
    stream.write_all(buffer, got);
}

}  // namespace

TEST_F(TcpTest, EchoesOneByteToOneMebibyte) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto server = weft::spawn([&] {
      for (int i = 0; i < 4; ++i)
        weft::spawn(echo, listener.accept());
    });
    for (std::size_t size :
         {std::size_t{1}, std::size_t{1000}, std::size_t{65536}, std::size_t{1} << 20}) {
      auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
      const auto sent = pattern(size);
      auto writer = weft::spawn([&] {
        client.write_all(sent.data(), sent.size());
        client.shutdown();
      });
      std::vector<char> got(size);
      client.read_exact(got.data(), got.size());
      writer.wait();
      EXPECT_EQ(got, sent) << size << " bytes";
      char extra;
      EXPECT_EQ(client.read_some(&extra, 1), 0u);  // end of stream after the echo
    }
    server.wait();
  });
}

TEST_F(TcpTest, EchoesOverIpv6Loopback) {
  weft::run([] {
    weft::TcpListener listener;
    try {
      listener = weft::TcpListener::bind("::1", 0);
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    weft::spawn([&] { echo(listener.accept()); });
    auto client = weft::TcpStream::connect("::1", listener.local_port());
    client.write_all("hello", 5);
    char got[5];
    client.read_exact(got, 5);
    EXPECT_EQ(std::string(got, 5), "hello");
    EXPECT_EQ(client.peer_port(), listener.local_port());
  });
}

TEST_F(TcpTest, ConnectByNameResolvesOnTheThreadCache) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    weft::spawn([&] { echo(listener.accept()); });
    auto client = weft::TcpStream::connect("localhost", listener.local_port());
    client.write_all("x", 1);
    char got;
    client.read_exact(&got, 1);
    EXPECT_EQ(got, 'x');
  });
}

TEST_F(TcpTest, ConnectRefusedThrowsSystemErrorWithEconnrefused) {
  weft::run([] {
    int port;
    {
      auto probe = weft::TcpListener::bind("127.0.0.1", 0);
      port = probe.local_port();
    }  // closed: nobody listens there now
    try {
      weft::TcpStream::connect("127.0.0.1", port);
      FAIL() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
      EXPECT_NE(std::string(e.what()).find("connect"), std::string::npos);
    }
  });
}

TEST_F(TcpTest, ReadExactAtEndOfStreamThrowsEndOfStream) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    weft::spawn([&] {
      auto peer = listener.accept();
      peer.write_all("ab", 2);
    });  // closes after two bytes
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    char got[4];
    try {
      client.read_exact(got, 4);
      FAIL() << "read 4 bytes from a stream of 2";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), weft::io_errc::end_of_stream);
    }
  });
}

TEST_F(TcpTest, PeerResetMidReadThrowsConnectionReset) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    weft::spawn([&] {
      auto peer = listener.accept();
      const linger abort_on_close{1, 0};  // close sends RST
      ::setsockopt(peer.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                   sizeof abort_on_close);
      weft::sleep(5ms);
    });
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    char buffer[16];
    try {
      client.read_some(buffer, sizeof buffer);
      FAIL() << "read from a reset connection";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNRESET) << e.what();
    }
  });
}

TEST_F(TcpTest, WriteToAClosedPeerThrowsInsteadOfRaisingSigpipe) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    listener.accept().close();
    const auto chunk = pattern(65536);
    try {
      for (int i = 0; i < 1000; ++i) {
        client.write_all(chunk.data(), chunk.size());
        weft::sleep(1ms);
      }
      FAIL() << "kept writing to a closed peer";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(e.code().value() == EPIPE || e.code().value() == ECONNRESET) << e.what();
    }
  });
}

TEST_F(TcpTest, KillDuringReadUnwindsTheReader) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();
    bool unwound = false;
    auto reader = weft::spawn([&] {
      struct Mark {
        bool& flag;
        ~Mark() { flag = true; }
      } mark{unwound};
      char buffer[64];
      client.read_some(buffer, sizeof buffer);
    });
    weft::sleep(2ms);
    reader.kill();
    EXPECT_THROW(reader.wait(), weft::FiberExit);
    EXPECT_TRUE(unwound);
    // The stream still works: nothing of a later read went to the dead reader.
    peer.write_all("z", 1);
    char got;
    client.read_exact(&got, 1);
    EXPECT_EQ(got, 'z');
  });
}

TEST_F(TcpTest, TimeoutDuringAcceptThrowsTimeoutError) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    EXPECT_THROW(weft::with_timeout(5ms, [&] { return listener.accept(); }), weft::TimeoutError);
    // Still accepts afterwards.
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();
    EXPECT_EQ(peer.peer_port(), client.local_port());
  });
}

// epoll: after a short read the backend waits for the next edge instead of
// trying a read that would answer EAGAIN. Data (or end of stream) that comes
// while the reader is busy elsewhere must not be waited for a second time.
TEST_F(TcpTest, DataThatArrivesAfterAShortReadWhileTheReaderIsBusyIsReadAtOnce) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();
    char buffer[256];
    for (int round = 0; round < 3; ++round) {
      peer.write_all("ab", 2);
      EXPECT_EQ(client.read_some(buffer, sizeof buffer), 2u);  // short: the buffer is drained
      peer.write_all("cd", 2);
      weft::sleep(5ms);  // the reader is away when the edge comes
      const std::size_t got = weft::with_timeout(1s, [&] { return client.read_some(buffer, 256); });
      EXPECT_EQ(std::string(buffer, got), "cd");
    }
    peer.write_all("e", 1);
    EXPECT_EQ(client.read_some(buffer, sizeof buffer), 1u);
    peer.close();
    weft::sleep(5ms);
    EXPECT_EQ(weft::with_timeout(1s, [&] { return client.read_some(buffer, 256); }), 0u);
  });
}

TEST_F(TcpTest, EndOfStreamThatCameWithTheLastBytesIsSeenAfterAShortRead) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();
    peer.write_all("ab", 2);
    peer.shutdown();  // the FIN follows the bytes: one edge for both
    weft::sleep(5ms);
    char buffer[64];
    EXPECT_EQ(client.read_some(buffer, sizeof buffer), 2u);  // short, and the FIN is still queued
    EXPECT_EQ(weft::with_timeout(1s, [&] { return client.read_some(buffer, 64); }), 0u);
  });
}

TEST_F(TcpTest, DataThatArrivesAfterAShortReadWakesTheWaitingReader) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();
    auto writer = weft::spawn([&] {
      for (char c = 'a'; c <= 'e'; ++c) {
        weft::sleep(2ms);
        peer.write_all(&c, 1);
      }
    });
    std::string got;
    char buffer[64];
    while (got.size() < 5) {  // every read is short
      const std::size_t n = weft::with_timeout(1s, [&] { return client.read_some(buffer, 64); });
      got.append(buffer, n);
    }
    EXPECT_EQ(got, "abcde");
    writer.wait();
  });
}

TEST_F(TcpTest, ConnectionsThatArriveWhileNobodyAcceptsWaitForTheNextAccept) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto first = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto first_peer = listener.accept();  // io_uring: starts the multishot accept
    std::vector<weft::TcpStream> clients;
    for (int i = 0; i < 5; ++i)
      clients.push_back(weft::TcpStream::connect("127.0.0.1", listener.local_port()));
    weft::sleep(5ms);  // accepted by the kernel operation, with no fiber in accept()
    for (auto& client : clients) {
      auto peer = listener.accept();
      EXPECT_EQ(peer.peer_port(), client.local_port());  // in the order they came
      peer.write_all("k", 1);
      char got;
      client.read_exact(&got, 1);
      EXPECT_EQ(got, 'k');
    }
  });
}

TEST_F(TcpTest, ClosingAListenerClosesTheConnectionsNobodyTook) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto first = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto first_peer = listener.accept();
    std::vector<weft::TcpStream> clients;
    for (int i = 0; i < 3; ++i)
      clients.push_back(weft::TcpStream::connect("127.0.0.1", listener.local_port()));
    weft::sleep(5ms);
    listener.close();
    for (auto& client : clients) {
      char got;
      try {
        EXPECT_EQ(client.read_some(&got, 1), 0u);  // end of stream: the server side is closed
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNRESET) << e.what();
      }
    }
  });  // the fixture checks that no accepted fd was left open
}

TEST_F(TcpTest, AConnectionThatArrivesAfterAnAcceptTimedOutIsNotLost) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    for (int round = 0; round < 3; ++round) {
      EXPECT_THROW(weft::with_timeout(2ms, [&] { return listener.accept(); }), weft::TimeoutError);
      auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
      weft::sleep(2ms);
      auto peer = weft::with_timeout(1s, [&] { return listener.accept(); });
      EXPECT_EQ(peer.peer_port(), client.local_port());
    }
  });
}

TEST_F(TcpTest, AConnectDeadlineThatDidNotFireLeavesLaterCallsAlone) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port(), 20ms);
    auto peer = listener.accept();
    auto writer = weft::spawn([&] {
      weft::sleep(40ms);  // past the connect's deadline
      peer.write_all("late", 4);
    });
    char got[4];
    client.read_exact(got, 4);  // neither cancelled nor timed out by the connect's deadline
    EXPECT_EQ(std::string(got, 4), "late");
    writer.wait();
  });
}

TEST_F(TcpTest, TimeoutDuringReadThrowsTimeoutError) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();
    char buffer[8];
    EXPECT_THROW(weft::with_timeout(5ms, [&] { return client.read_some(buffer, 8); }),
                 weft::TimeoutError);
  });
}

TEST_F(TcpTest, KillDuringABlockedWriteUnwindsTheWriter) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();  // never reads: the writer fills the buffers and waits
    auto writer = weft::spawn([&] {
      const auto chunk = pattern(1 << 20);
      for (;;)
        client.write_all(chunk.data(), chunk.size());
    });
    weft::sleep(20ms);
    writer.kill();
    EXPECT_THROW(writer.wait(), weft::FiberExit);
  });
}

TEST_F(TcpTest, ConnectWithTimeoutToAnUnansweringAddressThrowsTimedOut) {
  weft::run([] {
    // A listener whose backlog is full never completes a new handshake.
    auto listener = weft::TcpListener::bind("127.0.0.1", 0, 0);
    std::vector<weft::TcpStream> filling;
    try {
      for (int i = 0; i < 8; ++i)
        filling.push_back(weft::TcpStream::connect("127.0.0.1", listener.local_port(), 50ms));
      GTEST_SKIP() << "this kernel completes handshakes beyond the backlog";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ETIMEDOUT) << e.what();
    }
  });
}

TEST_F(TcpTest, AThousandConcurrentConnectionsEachEchoTheirOwnBytes) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 2200) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4096);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur < 2200) GTEST_SKIP() << "RLIMIT_NOFILE too low for 1000 connections";
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0, 1024);
    constexpr int clients = 1000;
    weft::spawn([&] {
      for (int i = 0; i < clients; ++i)
        weft::spawn(echo, listener.accept());
    });
    std::vector<weft::GreenThread<bool>> calls;
    for (int i = 0; i < clients; ++i) {
      calls.push_back(weft::spawn([&, i] {
        auto stream = weft::TcpStream::connect("127.0.0.1", listener.local_port());
        const std::string message = "client " + std::to_string(i);
        stream.write_all(message.data(), message.size());
        std::string got(message.size(), '\0');
        stream.read_exact(got.data(), got.size());
        return got == message;
      }));
    }
    int ok = 0;
    for (auto& c : calls)
      ok += c.wait() ? 1 : 0;
    EXPECT_EQ(ok, clients);
  });
}

TEST_F(TcpTest, ReadvAndWritevMoveEveryByte) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    weft::spawn([&] { echo(listener.accept()); });
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    std::string a = "scatter ", b = "gather";
    iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    EXPECT_EQ(client.writev(out, 2), a.size() + b.size());
    std::string x(8, '\0'), y(6, '\0');
    iovec in[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
    std::size_t got = 0;
    while (got < 14) {
      got += client.readv(in, 2);
      if (got < 14) {  // short read: move the vectors on
        std::size_t skip = got;
        in[0] = {x.data() + std::min(skip, x.size()), x.size() - std::min(skip, x.size())};
        skip -= std::min(skip, x.size());
        in[1] = {y.data() + skip, y.size() - skip};
      }
    }
    EXPECT_EQ(x + y, "scatter gather");
  });
}

TEST_F(TcpTest, CallsOutsideAFiberThrowNoHubError) {
  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
  EXPECT_THROW(listener.accept(), weft::NoHubError);
}

// A signal handler installed without SA_RESTART makes the hub's wait (and any
// call in progress) return EINTR: neither the hub nor the calls may fail.
TEST_F(TcpTest, SignalsDeliveredToTheHubThreadDoNotDisturbIo) {
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = [](int) {};
  ::sigaction(SIGUSR1, &action, &previous);  // no SA_RESTART
  std::atomic<bool> done{false};
  const pthread_t hub_thread = ::pthread_self();
  std::thread signaller([&] {
    while (!done.load()) {
      ::pthread_kill(hub_thread, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    weft::spawn(echo, listener.accept());
    for (int i = 0; i < 300; ++i) {
      const auto sent = pattern(1 + i * 37);
      client.write_all(sent.data(), sent.size());
      std::vector<char> got(sent.size());
      client.read_exact(got.data(), got.size());
      ASSERT_EQ(got, sent);
      if (i % 50 == 0) weft::sleep(1ms);  // the hub blocks in its wait now and then
    }
  });
  done = true;
  signaller.join();
  ::sigaction(SIGUSR1, &previous, nullptr);
}

TEST_F(TcpTest, EveryHubAcceptsOnASharedPortWithReusePort) {
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
  std::atomic<int> accepted_by[2] = {0, 0};
  runtime.run([&] {
    const weft::ListenOptions shared{.backlog = 128, .reuse_port = true};
    auto first = weft::TcpListener::bind("127.0.0.1", 0, shared);
    const int port = first.local_port();
    auto second = weft::TcpListener::bind("127.0.0.1", port, shared);
    std::vector<weft::GreenThread<void>> acceptors;
    std::pair<weft::TcpListener*, int> listeners[] = {{&first, 0}, {&second, 1}};
    for (auto [listener, hub] : listeners) {
      acceptors.push_back(runtime.spawn_on(hub, [&, listener, hub] {
        for (;;) {
          auto stream = listener->accept();
          ++accepted_by[hub];
          stream.write_all("h", 1);
        }
      }));
    }
    for (int i = 0; i < 64; ++i) {
      auto client = weft::TcpStream::connect("127.0.0.1", port);
      char greeting;
      client.read_exact(&greeting, 1);
    }
    for (auto& acceptor : acceptors)
      acceptor.kill();
    for (auto& acceptor : acceptors)
      EXPECT_THROW(acceptor.wait(), weft::FiberExit);
  });
  EXPECT_EQ(accepted_by[0] + accepted_by[1], 64);
  // The kernel spreads connections by a hash of their ports: 64 all landing
  // on one listener would happen once in 2^63 runs.
  EXPECT_GT(accepted_by[0], 0);
  EXPECT_GT(accepted_by[1], 0);
}

TEST_F(TcpTest, ClosingAListenerWakesAFiberWaitingInAcceptWithEbadf) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto first = listener.accept();  // io_uring: the multishot accept is running
    auto acceptor = weft::spawn([&] { listener.accept(); });
    weft::sleep(2ms);  // the acceptor now waits
    listener.close();
    try {
      weft::with_timeout(1s, [&] { acceptor.wait(); });
      ADD_FAILURE() << "accept on a closed listener returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
  });
}

TEST_F(TcpTest, ClosingAStreamWakesAFiberReadingItWithEbadf) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto peer = listener.accept();  // never writes
    auto reader = weft::spawn([&] {
      char buffer[64];
      client.read_some(buffer, sizeof buffer);
    });
    weft::sleep(2ms);  // the reader now waits (io_uring: in the kernel)
    client.close();
    try {
      weft::with_timeout(1s, [&] { reader.wait(); });
      ADD_FAILURE() << "a read on a closed stream returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
  });
}

// io_uring: the multishot accept stops at 128 unclaimed connections; the next
// accept() must still hand out every one of them.
TEST_F(TcpTest, ConnectionsQueuedPastTheListenersBoundAreAllAccepted) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0, 512);
    auto first = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto first_peer = listener.accept();
    std::vector<weft::TcpStream> clients;
    for (int i = 0; i < 200; ++i)
      clients.push_back(weft::TcpStream::connect("127.0.0.1", listener.local_port()));
    weft::sleep(10ms);
    for (int i = 0; i < 200; ++i) {
      auto peer = weft::with_timeout(1s, [&] { return listener.accept(); });
      peer.write_all("w", 1);
    }
    for (auto& client : clients) {
      char got;
      client.read_exact(&got, 1);  // a connection closed by mistake throws here
      EXPECT_EQ(got, 'w');
    }
  });
}

TEST_F(TcpTest, AFiberThatKeepsYieldingDoesNotStarveAnAccept) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto warm = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto warm_peer = listener.accept();  // io_uring: a multishot accept now runs
    std::atomic<bool> accepted{false};
    std::atomic<bool> gave_up{false};
    auto acceptor = weft::spawn([&] {
      auto peer = listener.accept();
      accepted = true;
    });
    weft::yield();  // the acceptor waits
    // Connected from a plain thread, so that this hub has nothing else in the
    // kernel: only the accept's completion can end the yielding below.
    const int port = listener.local_port();
    std::thread connector([port, &accepted, &gave_up] {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<std::uint16_t>(port));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
      while (!accepted && !gave_up)  // open until the accept has taken it
        std::this_thread::yield();
      ::close(fd);
    });
    long yields = 0;
    while (!accepted && yields < 20'000'000) {
      weft::yield();
      ++yields;
    }
    gave_up = true;
    connector.join();
    EXPECT_TRUE(accepted) << "still waiting after " << yields << " yields";
    acceptor.wait();
  });
}

// epoll: a reader woken by readiness whose stream another fiber closes before
// the reader runs must not read whatever file reuses the fd number.
TEST_F(TcpTest, AReaderWokenJustBeforeItsStreamIsClosedGetsEbadfNotAnotherFile) {
  weft::run([] {
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto closer_client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto closer_peer = listener.accept();
    auto reader_client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    auto reader_peer = listener.accept();
    int pipe_fds[2] = {-1, -1};
    int reader_error = 0;
    std::string reader_got;
    auto reader = weft::spawn([&] {
      char buffer[16];
      try {
        reader_got.assign(buffer, reader_client.read_some(buffer, sizeof buffer));
      } catch (const std::system_error& e) {
        reader_error = e.code().value();
      }
    });
    auto closer = weft::spawn([&] {
      char byte;
      closer_client.read_some(&byte, 1);  // woken first: its data came first
      reader_client.close();
      ASSERT_EQ(::pipe(pipe_fds), 0);  // takes the lowest free number: the reader's
      ASSERT_EQ(::write(pipe_fds[1], "p", 1), 1);
    });
    weft::yield();  // both wait now
    // Both peers write while this hub is busy, so one poll sees both, in order.
    std::thread writer([&] {
      ::send(closer_peer.native_handle(), "c", 1, MSG_NOSIGNAL);
      ::send(reader_peer.native_handle(), "r", 1, MSG_NOSIGNAL);
    });
    writer.join();
    const auto until = std::chrono::steady_clock::now() + 5ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    closer.wait();
    reader.wait();
    // io_uring finished the read in the kernel before the close: its own
    // byte. epoll: EBADF. Never the pipe (ENOTSOCK, or its byte).
    if (reader_error != 0) {
      EXPECT_EQ(reader_error, EBADF);
    } else {
      EXPECT_EQ(reader_got, "r");
    }
    for (int fd : pipe_fds)
      if (fd >= 0) ::close(fd);
  });
}

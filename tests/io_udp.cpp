// UdpSocket on the hub's backend (the suite runs again with
// WEFT_BACKEND=epoll): datagrams over IPv4 and IPv6, senders' addresses,
// truncation, errors as std::system_error, kill and Timeout during recv, and
// no fd left behind.

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

namespace {

class UdpTest : public weft_test::FdLeakCheck {};

}  // namespace

TEST_F(UdpTest, RoundTripOverIpv4TellsEachSideTheOthersAddress) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    auto b = weft::UdpSocket::bind("127.0.0.1", 0);
    EXPECT_NE(a.local_port(), 0);
    EXPECT_EQ(a.send_to("ping", 4, "127.0.0.1", b.local_port()), 4u);
    char buffer[64];
    const weft::Datagram got = b.recv_from(buffer, sizeof buffer);
    EXPECT_EQ(std::string(buffer, got.bytes), "ping");
    EXPECT_EQ(got.host, "127.0.0.1");
    EXPECT_EQ(got.port, a.local_port());
    EXPECT_FALSE(got.truncated);
    // Answer to where it came from.
    b.send_to("pong", 4, got.host, got.port);
    EXPECT_EQ(a.recv(buffer, sizeof buffer), 4u);
    EXPECT_EQ(std::string(buffer, 4), "pong");
  });
}

TEST_F(UdpTest, RoundTripOverIpv6Loopback) {
  weft::run([] {
    weft::UdpSocket a, b;
    try {
      a = weft::UdpSocket::bind("::1", 0);
      b = weft::UdpSocket::bind("::1", 0);
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    EXPECT_EQ(a.send_to("six", 3, "::1", b.local_port()), 3u);
    char buffer[16];
    const weft::Datagram got = b.recv_from(buffer, sizeof buffer);
    EXPECT_EQ(std::string(buffer, got.bytes), "six");
    EXPECT_EQ(got.host, "::1");
    EXPECT_EQ(got.port, a.local_port());
  });
}

TEST_F(UdpTest, Ipv4DestinationFromAnIpv6WildcardSocketGoesIpv4Mapped) {
  weft::run([] {
    weft::UdpSocket a;
    try {
      a = weft::UdpSocket::bind("::", 0);
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "no IPv6 here: " << e.what();
    }
    auto b = weft::UdpSocket::bind("127.0.0.1", 0);
    a.send_to("m", 1, "127.0.0.1", b.local_port());
    char c;
    const weft::Datagram got = b.recv_from(&c, 1);
    EXPECT_EQ(got.host, "127.0.0.1");
    EXPECT_EQ(got.port, a.local_port());
    b.send_to("n", 1, "127.0.0.1", a.local_port());
    const weft::Datagram back = a.recv_from(&c, 1);
    EXPECT_EQ(c, 'n');
    EXPECT_EQ(back.host, "::ffff:127.0.0.1");
  });
}

TEST_F(UdpTest, SendToByNameResolvesOnTheThreadCache) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    auto b = weft::UdpSocket::bind("127.0.0.1", 0);
    a.send_to("n", 1, "localhost", b.local_port());
    char c = 0;
    EXPECT_EQ(b.recv(&c, 1), 1u);
    EXPECT_EQ(c, 'n');
  });
}

TEST_F(UdpTest, RecvWaitsUntilADatagramArrives) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    auto b = weft::UdpSocket::bind("127.0.0.1", 0);
    bool sent = false;
    weft::spawn([&] {
      weft::sleep(20ms);
      sent = true;
      a.send_to("late", 4, "127.0.0.1", b.local_port());
    });
    const auto start = std::chrono::steady_clock::now();
    char buffer[8];
    EXPECT_EQ(b.recv(buffer, sizeof buffer), 4u);
    EXPECT_TRUE(sent);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
  });
}

TEST_F(UdpTest, DatagramLongerThanTheBufferIsTruncatedAndTheRestDropped) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    auto b = weft::UdpSocket::bind("127.0.0.1", 0);
    const std::string long_one(100, 'x');
    a.send_to(long_one.data(), long_one.size(), "127.0.0.1", b.local_port());
    a.send_to("second", 6, "127.0.0.1", b.local_port());
    a.send_to(long_one.data(), long_one.size(), "127.0.0.1", b.local_port());
    char buffer[10];
    EXPECT_EQ(b.recv(buffer, sizeof buffer), 10u);  // the first 10 bytes; 90 are gone
    EXPECT_EQ(b.recv(buffer, sizeof buffer), 6u);   // the next recv gets the next datagram
    EXPECT_EQ(std::string(buffer, 6), "second");
    const weft::Datagram got = b.recv_from(buffer, sizeof buffer);
    EXPECT_EQ(got.bytes, 10u);
    EXPECT_TRUE(got.truncated);
  });
}

TEST_F(UdpTest, KillDuringRecvUnwindsTheReceiver) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    auto b = weft::UdpSocket::bind("127.0.0.1", 0);
    bool unwound = false;
    auto receiver = weft::spawn([&] {
      struct Mark {
        bool& flag;
        ~Mark() { flag = true; }
      } mark{unwound};
      char buffer[16];
      b.recv(buffer, sizeof buffer);
    });
    weft::sleep(2ms);
    receiver.kill();
    EXPECT_THROW(receiver.wait(), weft::FiberExit);
    EXPECT_TRUE(unwound);
    // Nothing of a later datagram went to the dead receiver.
    a.send_to("z", 1, "127.0.0.1", b.local_port());
    char c = 0;
    EXPECT_EQ(b.recv(&c, 1), 1u);
    EXPECT_EQ(c, 'z');
  });
}

TEST_F(UdpTest, TimeoutDuringRecvFromThrowsTimeoutError) {
  weft::run([] {
    auto b = weft::UdpSocket::bind("127.0.0.1", 0);
    char buffer[16];
    EXPECT_THROW(weft::with_timeout(5ms, [&] { return b.recv_from(buffer, sizeof buffer); }),
                 weft::TimeoutError);
  });
}

TEST_F(UdpTest, SendToAnUnresolvableHostThrowsSystemError) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    EXPECT_THROW(a.send_to("x", 1, "no-such-host.invalid", 9), std::system_error);
  });
}

TEST_F(UdpTest, SendToAnIpv6AddressFromAnIpv4SocketThrowsAfNoSupport) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    try {
      a.send_to("x", 1, "::1", 9);
      FAIL() << "sent IPv6 from an IPv4 socket";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EAFNOSUPPORT) << e.what();
      EXPECT_NE(std::string(e.what()).find("::1"), std::string::npos) << e.what();
    }
  });
}

TEST_F(UdpTest, BindToAPortInUseThrowsAddressInUse) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    try {
      weft::UdpSocket::bind("127.0.0.1", a.local_port());
      FAIL() << "bound one port twice";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
    }
  });
}

TEST_F(UdpTest, ClosedSocketIsNotOpenAndRefusesCalls) {
  weft::run([] {
    auto a = weft::UdpSocket::bind("127.0.0.1", 0);
    EXPECT_TRUE(a.is_open());
    EXPECT_GE(a.native_handle(), 0);
    weft::UdpSocket moved = std::move(a);
    EXPECT_FALSE(a.is_open());
    moved.close();
    moved.close();
    EXPECT_FALSE(moved.is_open());
    char c;
    EXPECT_THROW(moved.recv(&c, 1), std::system_error);
    EXPECT_THROW(moved.send_to("x", 1, "127.0.0.1", 9), std::system_error);
  });
}

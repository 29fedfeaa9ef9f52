// Bad input to sockets gets a clear exception, the same on both backends:
// never a crash, a signal, or an answer that means something else.

#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/uio.h>

#include <stdexcept>
#include <string>
#include <system_error>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

namespace {

class IoBadInput : public weft_test::FdLeakCheck {};

struct Connected {
  weft::TcpStream client;
  weft::TcpStream server;
};

Connected connected_pair() {
  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
  auto accepted = weft::spawn([&] { return listener.accept(); });
  auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
  return {std::move(client), accepted.wait()};
}

}  // namespace

// Before: EHOSTUNREACH ("No route to host") for every getaddrinfo failure.
TEST_F(IoBadInput, UnresolvableNameReportsTheResolversError) {
  weft::run([] {
    try {
      weft::TcpStream::connect("no-such-host.invalid", 80);
      ADD_FAILURE() << "connected to a name that does not exist";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().category(), weft::resolver_category());
      EXPECT_TRUE(e.code().value() == EAI_NONAME || e.code().value() == EAI_AGAIN ||
                  e.code().value() == EAI_NODATA)
          << e.code().value();
      EXPECT_NE(std::string(e.what()).find("no-such-host.invalid"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("No route to host"), std::string::npos) << e.what();
    }
  });
}

// Before: the name was cut at the NUL and "localhost\0.evil" reached localhost.
TEST_F(IoBadInput, HostWithANulByteIsRejected) {
  weft::run([] {
    const std::string host("127.0.0.1\0.example", 18);
    EXPECT_THROW(weft::TcpStream::connect(host, 80), std::invalid_argument);
    EXPECT_THROW(weft::TcpListener::bind(host, 0), std::invalid_argument);
  });
}

// Before: 0, the end-of-stream answer, though data was waiting.
TEST_F(IoBadInput, ReadOfZeroBytesIsRejectedNotTakenForEndOfStream) {
  weft::run([] {
    auto pair = connected_pair();
    pair.client.write_all("x", 1);
    char byte = 0;
    EXPECT_THROW(pair.server.read_some(&byte, 0), std::invalid_argument);
    EXPECT_EQ(pair.server.read_some(&byte, 1), 1u);
    EXPECT_EQ(byte, 'x');
  });
}

// Before: std::length_error from a vector on one backend, EINVAL on the other.
TEST_F(IoBadInput, NegativeBufferCountsAreRejected) {
  weft::run([] {
    auto pair = connected_pair();
    char byte = 0;
    iovec buffer{&byte, 1};
    EXPECT_THROW(pair.server.readv(&buffer, -1), std::invalid_argument);
    EXPECT_THROW(pair.client.writev(&buffer, -1), std::invalid_argument);
    iovec empty{&byte, 0};
    EXPECT_THROW(pair.server.readv(&empty, 1), std::invalid_argument);
    EXPECT_EQ(pair.client.writev(&buffer, 0), 0u);
  });
}

// Before: writev(2) on a socket whose peer had gone raised SIGPIPE, which
// killed the process.
TEST_F(IoBadInput, GatherWriteToAPeerThatHasGoneThrowsInsteadOfSigpipe) {
  weft::run([] {
    auto pair = connected_pair();
    pair.server.close();
    char block[4096] = {};
    iovec buffers[2] = {{block, sizeof block}, {block, sizeof block}};
    try {
      for (int i = 0; i < 1000; ++i)
        pair.client.writev(buffers, 2);
      ADD_FAILURE() << "wrote 8 MB to a closed peer";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset)
          << e.what();
    }
  });
}

// UnixListener / UnixStream on the hub's backend (the suite runs again with
// WEFT_BACKEND=epoll): echo, end of stream, errors as std::system_error with
// the path, kill and Timeout during accept and read, and no fd left behind.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

namespace {

// Each test gets a fresh directory for its socket files.
class UnixTest : public weft_test::TempDirectoryTest {
 protected:
  UnixTest() : TempDirectoryTest("weft-unix") {}
  std::string path(const std::string& name = "socket") const {
    return TempDirectoryTest::path(name);
  }
};

std::vector<char> pattern(std::size_t size) {
  std::vector<char> bytes(size);
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<char>(i * 131 + 7);
  return bytes;
}

// Echoes everything it reads until end of stream.
void echo(weft::UnixStream stream) {
  char buffer[16384];
  while (std::size_t got = stream.read_some(buffer, sizeof buffer))
    stream.write_all(buffer, got);
}

}  // namespace

TEST_F(UnixTest, EchoesOneByteToOneMebibyte) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    auto server = weft::spawn([&] {
      for (int i = 0; i < 4; ++i)
        weft::spawn(echo, listener.accept());
    });
    for (std::size_t size :
         {std::size_t{1}, std::size_t{1000}, std::size_t{65536}, std::size_t{1} << 20}) {
      auto client = weft::UnixStream::connect(path());
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

TEST_F(UnixTest, ReadvAndWritevMoveEveryByte) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    weft::spawn([&] { echo(listener.accept()); });
    auto client = weft::UnixStream::connect(path());
    std::string a = "scatter ", b = "gather";
    iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    EXPECT_EQ(client.writev(out, 2), a.size() + b.size());
    client.shutdown();
    std::string x(8, '\0'), y(6, '\0');
    iovec in[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
    std::size_t got = 0;
    while (got < 14) {
      const std::size_t n = client.readv(in, 2);
      ASSERT_GT(n, 0u) << "end of stream after " << got << " bytes";
      got += n;
      std::size_t skip = got;
      in[0] = {x.data() + std::min(skip, x.size()), x.size() - std::min(skip, x.size())};
      skip -= std::min(skip, x.size());
      in[1] = {y.data() + skip, y.size() - skip};
    }
    EXPECT_EQ(x + y, "scatter gather");
  });
}

TEST_F(UnixTest, ReadExactAtEndOfStreamThrowsEndOfStreamNamingUnixStream) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    weft::spawn([&] {
      auto peer = listener.accept();
      peer.write_all("ab", 2);
    });  // closes after two bytes
    auto client = weft::UnixStream::connect(path());
    char got[4];
    try {
      client.read_exact(got, 4);
      FAIL() << "read 4 bytes from a stream of 2";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), weft::io_errc::end_of_stream);
      EXPECT_NE(std::string(e.what()).find("UnixStream::read_exact"), std::string::npos)
          << e.what();
    }
  });
}

TEST_F(UnixTest, ConnectToAMissingPathThrowsNoSuchFileWithThePath) {
  weft::run([&] {
    try {
      weft::UnixStream::connect(path("nobody"));
      FAIL() << "connected to a missing path";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT) << e.what();
      EXPECT_NE(std::string(e.what()).find(path("nobody")), std::string::npos) << e.what();
    }
  });
}

TEST_F(UnixTest, ConnectToAClosedListenersPathThrowsConnectionRefused) {
  weft::run([&] {
    weft::UnixListener::bind(path()).close();  // the file stays, nobody listens
    try {
      weft::UnixStream::connect(path());
      FAIL() << "connected to a closed listener";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
    }
  });
}

TEST_F(UnixTest, PathTooLongThrowsNameTooLongWithThePath) {
  weft::run([&] {
    const std::string long_path = path(std::string(200, 'p'));
    for (int call = 0; call < 2; ++call) {
      try {
        if (call == 0) {
          weft::UnixListener::bind(long_path);
        } else {
          weft::UnixStream::connect(long_path);
        }
        FAIL() << "used a path of " << long_path.size() << " bytes";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENAMETOOLONG) << e.what();
        EXPECT_NE(std::string(e.what()).find(long_path), std::string::npos) << e.what();
      }
    }
  });
}

TEST_F(UnixTest, BindOnAnExistingPathThrowsAddressInUse) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    for (const std::string& taken : {path(), path("file")}) {
      if (taken == path("file")) ::close(::creat(taken.c_str(), 0644));  // a plain file
      try {
        weft::UnixListener::bind(taken);
        FAIL() << "bound over " << taken;
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
        EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
      }
    }
    EXPECT_TRUE(std::filesystem::exists(path("file")));  // nothing removed
  });
}

TEST_F(UnixTest, AbstractNamespacePathsWorkWithoutAFile) {
  weft::run([&] {
    const std::string name = std::string(1, '\0') + "weft-test-" + std::to_string(::getpid());
    auto listener = weft::UnixListener::bind(name);
    weft::spawn([&] { echo(listener.accept()); });
    auto client = weft::UnixStream::connect(name);
    client.write_all("hi", 2);
    char got[2];
    client.read_exact(got, 2);
    EXPECT_EQ(std::string(got, 2), "hi");
    EXPECT_TRUE(std::filesystem::is_empty(directory()));
  });
}

TEST_F(UnixTest, KillDuringAcceptUnwindsTheAcceptor) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    bool unwound = false;
    auto acceptor = weft::spawn([&] {
      struct Mark {
        bool& flag;
        ~Mark() { flag = true; }
      } mark{unwound};
      listener.accept();
    });
    weft::sleep(2ms);
    acceptor.kill();
    EXPECT_THROW(acceptor.wait(), weft::FiberExit);
    EXPECT_TRUE(unwound);
    // Still accepts afterwards.
    auto client = weft::UnixStream::connect(path());
    auto peer = listener.accept();
    EXPECT_TRUE(peer.is_open());
  });
}

TEST_F(UnixTest, TimeoutDuringAcceptThrowsTimeoutError) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    EXPECT_THROW(weft::with_timeout(5ms, [&] { return listener.accept(); }), weft::TimeoutError);
  });
}

TEST_F(UnixTest, KillDuringReadUnwindsTheReaderAndTheStreamStillWorks) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    auto client = weft::UnixStream::connect(path());
    auto peer = listener.accept();
    auto reader = weft::spawn([&] {
      char buffer[64];
      client.read_some(buffer, sizeof buffer);
    });
    weft::sleep(2ms);
    reader.kill();
    EXPECT_THROW(reader.wait(), weft::FiberExit);
    peer.write_all("z", 1);
    char got;
    client.read_exact(&got, 1);
    EXPECT_EQ(got, 'z');
  });
}

TEST_F(UnixTest, TimeoutDuringReadThrowsTimeoutError) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path());
    auto client = weft::UnixStream::connect(path());
    auto peer = listener.accept();
    char buffer[8];
    EXPECT_THROW(weft::with_timeout(5ms, [&] { return client.read_some(buffer, 8); }),
                 weft::TimeoutError);
  });
}

TEST_F(UnixTest, ConnectWaitsWhileTheBacklogIsFull) {
  weft::run([&] {
    auto listener = weft::UnixListener::bind(path(), 0);
    std::vector<weft::UnixStream> clients;
    auto connector = weft::spawn([&] {
      for (int i = 0; i < 4; ++i)
        clients.push_back(weft::UnixStream::connect(path()));
    });
    weft::sleep(10ms);
    std::vector<weft::UnixStream> peers;
    for (int i = 0; i < 4; ++i)
      peers.push_back(listener.accept());
    connector.wait();
    EXPECT_EQ(clients.size(), 4u);
  });
}

TEST_F(UnixTest, CallsOutsideAFiberThrowNoHubError) {
  auto listener = weft::UnixListener::bind(path());
  EXPECT_THROW(listener.accept(), weft::NoHubError);
}

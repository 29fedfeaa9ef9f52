// File on the hub's backend (the suite runs again with WEFT_BACKEND=epoll,
// where the calls go to the thread cache): positional reads and writes,
// fsync, errors with the path, concurrent readers, use outside a fiber, and
// no fd left behind.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

namespace {

// Each test gets a fresh directory for its files.
class FileTest : public weft_test::TempDirectoryTest {
 protected:
  FileTest() : TempDirectoryTest("weft-file") {}
  std::string path(const std::string& name = "file") const { return TempDirectoryTest::path(name); }
};

std::vector<char> pattern(std::size_t size, unsigned seed = 7) {
  std::vector<char> bytes(size);
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<char>(i * 131 + seed + i / 4096);
  return bytes;
}

}  // namespace

TEST_F(FileTest, WriteAtThenReadAtRoundTrips) {
  weft::run([&] {
    auto file = weft::File::open(path(), O_RDWR | O_CREAT | O_TRUNC);
    EXPECT_TRUE(file.is_open());
    EXPECT_EQ(file.path(), path());
    EXPECT_EQ(file.write_at("hello, world", 12, 0), 12u);
    EXPECT_EQ(file.write_at("WEFT", 4, 7), 4u);  // overwrite in the middle
    EXPECT_EQ(file.size(), 12);
    char got[12];
    EXPECT_EQ(file.read_at(got, sizeof got, 0), 12u);
    EXPECT_EQ(std::string(got, 12), "hello, WEFTd");
    EXPECT_EQ(file.read_at(got, 4, 7), 4u);
    EXPECT_EQ(std::string(got, 4), "WEFT");
  });
}

TEST_F(FileTest, ReadAtEndOfFileIsShortAndPastItIsZero) {
  weft::run([&] {
    auto file = weft::File::open(path(), O_RDWR | O_CREAT | O_TRUNC);
    file.write_at("abc", 3, 0);
    char got[16];
    EXPECT_EQ(file.read_at(got, sizeof got, 1), 2u);
    EXPECT_EQ(file.read_at(got, sizeof got, 3), 0u);
    EXPECT_EQ(file.read_at(got, sizeof got, 1000), 0u);
  });
}

TEST_F(FileTest, WriteAtPastTheEndLeavesAHoleOfZeros) {
  weft::run([&] {
    auto file = weft::File::open(path(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    file.write_at("z", 1, 4096);
    EXPECT_EQ(file.size(), 4097);
    std::vector<char> got(4097, 'x');
    EXPECT_EQ(file.read_at(got.data(), got.size(), 0), 4097u);
    EXPECT_EQ(got[0], '\0');
    EXPECT_EQ(got[4095], '\0');
    EXPECT_EQ(got[4096], 'z');
  });
}

TEST_F(FileTest, FsyncSucceedsAndTheDataIsThereForAnotherOpen) {
  weft::run([&] {
    {
      auto file = weft::File::open(path(), O_WRONLY | O_CREAT | O_TRUNC);
      file.write_at("durable", 7, 0);
      file.fsync();
    }
    auto again = weft::File::open(path(), O_RDONLY);
    char got[7];
    EXPECT_EQ(again.read_at(got, 7, 0), 7u);
    EXPECT_EQ(std::string(got, 7), "durable");
  });
}

TEST_F(FileTest, OpenOfAMissingFileThrowsNoSuchFileWithThePath) {
  weft::run([&] {
    try {
      weft::File::open(path("missing"), O_RDONLY);
      FAIL() << "opened a missing file";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT) << e.what();
      EXPECT_NE(std::string(e.what()).find(path("missing")), std::string::npos) << e.what();
    }
  });
}

TEST_F(FileTest, OpenedFilesAreCloseOnExec) {
  weft::run([&] {
    auto file = weft::File::open(path(), O_RDWR | O_CREAT);
    EXPECT_TRUE(::fcntl(file.native_handle(), F_GETFD) & FD_CLOEXEC);
  });
}

TEST_F(FileTest, WriteToAReadOnlyFileThrowsBadFileWithThePath) {
  weft::run([&] {
    weft::File::open(path(), O_WRONLY | O_CREAT).close();
    auto file = weft::File::open(path(), O_RDONLY);
    try {
      file.write_at("x", 1, 0);
      FAIL() << "wrote to a read-only file";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
      EXPECT_NE(std::string(e.what()).find(path()), std::string::npos) << e.what();
    }
  });
}

TEST_F(FileTest, EightMebibytesGoOutAndComeBackIntact) {
  weft::run([&] {
    auto file = weft::File::open(path(), O_RDWR | O_CREAT | O_TRUNC);
    const auto sent = pattern(std::size_t{8} << 20);
    EXPECT_EQ(file.write_at(sent.data(), sent.size(), 0), sent.size());
    EXPECT_EQ(file.size(), static_cast<off_t>(sent.size()));
    std::vector<char> got(sent.size());
    EXPECT_EQ(file.read_at(got.data(), got.size(), 0), got.size());
    EXPECT_TRUE(got == sent);
  });
}

TEST_F(FileTest, ManyFibersReadConcurrentlyAtTheirOwnOffsets) {
  weft::run([&] {
    constexpr std::size_t chunk = 64 * 1024;
    constexpr int readers = 32;
    auto file = weft::File::open(path(), O_RDWR | O_CREAT | O_TRUNC);
    const auto sent = pattern(chunk * readers, 3);
    file.write_at(sent.data(), sent.size(), 0);
    std::vector<weft::GreenThread<bool>> calls;
    for (int i = 0; i < readers; ++i) {
      calls.push_back(weft::spawn([&, i] {
        std::vector<char> got(chunk);
        const off_t offset = static_cast<off_t>(chunk) * (readers - 1 - i);  // backwards
        if (file.read_at(got.data(), chunk, offset) != chunk) return false;
        return std::equal(got.begin(), got.end(), sent.begin() + offset);
      }));
    }
    int ok = 0;
    for (auto& c : calls)
      ok += c.wait() ? 1 : 0;
    EXPECT_EQ(ok, readers);
  });
}

TEST_F(FileTest, OutsideAFiberTheCallsArePlainBlockingOnes) {
  // From the main thread (no hub) and from another plain thread.
  auto file = weft::File::open(path(), O_RDWR | O_CREAT | O_TRUNC);
  EXPECT_EQ(file.write_at("main", 4, 0), 4u);
  std::thread other([&] {
    file.write_at("thread", 6, 4);
    file.fsync();
  });
  other.join();
  char got[10];
  EXPECT_EQ(file.read_at(got, sizeof got, 0), 10u);
  EXPECT_EQ(std::string(got, 10), "mainthread");
  // And the same File then works from a fiber.
  weft::run([&] {
    char c;
    EXPECT_EQ(file.read_at(&c, 1, 4), 1u);
    EXPECT_EQ(c, 't');
  });
}

TEST_F(FileTest, MovedFromAndClosedFilesRefuseCalls) {
  weft::run([&] {
    auto file = weft::File::open(path(), O_RDWR | O_CREAT);
    weft::File moved = std::move(file);
    EXPECT_FALSE(file.is_open());
    EXPECT_TRUE(moved.is_open());
    moved.close();
    moved.close();
    char c;
    try {
      moved.read_at(&c, 1, 0);
      FAIL() << "read from a closed file";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
    EXPECT_THROW(moved.fsync(), std::system_error);
  });
}

TEST_F(FileTest, NegativeOffsetThrowsInvalidArgument) {
  weft::run([&] {
    auto file = weft::File::open(path(), O_RDWR | O_CREAT);
    char c = 0;
    try {
      file.read_at(&c, 1, -1);
      FAIL() << "read at -1";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EINVAL) << e.what();
    }
    EXPECT_THROW(file.write_at(&c, 1, -5), std::system_error);
  });
}

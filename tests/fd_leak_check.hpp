#pragma once
// What the io tests share: a fixture that fails a test which leaves an fd
// open, and one that also gives each test a fresh directory for its files;
// live_threads() for tests that also check threads.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstddef>
#include <filesystem>
#include <iterator>
#include <string>

namespace weft_test {

inline std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(
      std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{}));
}

inline std::size_t live_threads() {
  return static_cast<std::size_t>(
      std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                    std::filesystem::directory_iterator{}));
}

class FdLeakCheck : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = open_fds(); }
  void TearDown() override { EXPECT_EQ(open_fds(), fds_before_) << "an fd leaked"; }

 private:
  std::size_t fds_before_ = 0;
};

class TempDirectoryTest : public FdLeakCheck {
 protected:
  /// `prefix`: how the directory under /tmp is named ("weft-file").
  explicit TempDirectoryTest(const char* prefix) : prefix_(prefix) {}

  void SetUp() override {
    std::string name = "/tmp/" + prefix_ + "-XXXXXX";
    ASSERT_NE(::mkdtemp(name.data()), nullptr);
    directory_ = name;
    FdLeakCheck::SetUp();
  }
  void TearDown() override {
    FdLeakCheck::TearDown();
    std::filesystem::remove_all(directory_);
  }
  std::string path(const std::string& name) const { return directory_ + "/" + name; }
  const std::string& directory() const { return directory_; }

 private:
  std::string prefix_;
  std::string directory_;
};

}  // namespace weft_test

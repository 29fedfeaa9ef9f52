#pragma once
// A fixture for tests of work run on hub workers (destroyable threads, thread
// steps): it fails a test that leaves a thread, an fd or a busy worker
// behind. Hub workers (and to_thread's) are cached by design, so it first
// makes the idle ones exit, then waits (boundedly) for their threads and their
// hubs' fds to go.

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <weft/process/thread_cache.hpp>

#include "fd_leak_check.hpp"

namespace weft_test {

class HubWorkerLeakCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    // A sanitizer starts a helper thread of its own with the process's first
    // thread: let that happen before counting.
    std::thread([] {}).join();
    settle();
    fds_before_ = open_fds();
    threads_before_ = steady_thread_count();
  }
  void TearDown() override {
    EXPECT_TRUE(settle()) << "a worker is still busy";
    EXPECT_EQ(open_fds(), fds_before_) << "an fd leaked";
    EXPECT_EQ(thread_count_once_back_to(threads_before_), threads_before_)
        << "a thread was left running";
  }

 private:
  // Worker threads of either cache still in /proc (named so by weft); a worker counts
  // itself out of the cache just before its thread, and the hub it keeps in
  // a thread_local, are gone.
  static std::size_t worker_tasks() {
    std::size_t count = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      if (std::getline(comm, name) && (name == "weft-hubworker" || name == "weft-worker")) ++count;
    }
    return count;
  }

  // Makes every hub worker exit once idle; true once none is left.
  static bool settle() {
    auto& hub_workers = weft::detail::hub_worker_cache();
    auto& workers = weft::ThreadCache::global();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < give_up) {
      hub_workers.trim();
      workers.trim();
      if (hub_workers.total_workers() == 0 && workers.total_workers() == 0 && worker_tasks() == 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  // Threads other than workers (a crashed step's, one that ran a finished
  // to_thread call) end on their own a little after the test has what it
  // waited for: count once none has been seen to end for a while, and at the
  // end give them (boundedly) time to go.
  static std::size_t steady_thread_count() {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::size_t count = live_threads();
    for (int unchanged = 0; unchanged < 20 && std::chrono::steady_clock::now() < give_up;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const std::size_t now = live_threads();
      unchanged = now == count ? unchanged + 1 : 0;
      count = now;
    }
    return count;
  }
  static std::size_t thread_count_once_back_to(std::size_t expected) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::size_t count = live_threads();
    while (count > expected && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      count = live_threads();
    }
    return count;
  }

  std::size_t fds_before_ = 0;
  std::size_t threads_before_ = 0;
};

}  // namespace weft_test

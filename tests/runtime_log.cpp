// set_log_handler: every line weft writes reaches the process-wide handler,
// from any thread; the default writes warnings and errors to stderr.

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "log_capture.hpp"

TEST(Log, AnExceptionEscapingASpawnNFiberIsOneErrorLineWithItsWhat) {
  weft_test::LogCapture collected;
  weft::run([] {
    weft::spawn_n(weft::SpawnOptions{.name = "worker"},
                  [] { throw std::runtime_error("disk on fire"); });
    weft::sleep(std::chrono::milliseconds(0));
  });
  const auto lines = collected.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, weft::LogLevel::error);
  EXPECT_EQ(lines[0].text, "exception in fiber 'worker': disk on fire");
}

TEST(Log, AnErrorDeliveringAThreadCacheResultIsLogged) {
  weft_test::LogCapture collected;
  std::atomic<bool> delivered{false};
  weft::ThreadCache::global().start_thread_soon([] {},
                                                [&](std::exception_ptr) {
                                                  delivered = true;
                                                  throw std::runtime_error("nowhere to put it");
                                                });
  while (collected.lines().empty())
    std::this_thread::yield();
  EXPECT_TRUE(delivered);
  const auto lines = collected.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, weft::LogLevel::error);
  EXPECT_NE(lines[0].text.find("nowhere to put it"), std::string::npos) << lines[0].text;
}

TEST(Log, TheDefaultWritesWarningsAndErrorsToStderrAndDropsTheRest) {
  weft::set_log_handler(nullptr);
  testing::internal::CaptureStderr();
  weft::detail::log(weft::LogLevel::debug, "a debug line");
  weft::detail::log(weft::LogLevel::info, "an info line");
  weft::detail::log(weft::LogLevel::warning, "a warning line");
  weft::detail::log(weft::LogLevel::error, "an error line");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "weft: a warning line\nweft: an error line\n");
}

TEST(Log, AHandlerThatThrowsHasTheMessageWrittenToStderrInstead) {
  weft::set_log_handler([](weft::LogLevel, std::string_view) { throw std::runtime_error("full"); });
  testing::internal::CaptureStderr();
  weft::detail::log(weft::LogLevel::info, "lost?");
  const std::string err = testing::internal::GetCapturedStderr();
  weft::set_log_handler(nullptr);
  EXPECT_EQ(err, "weft: the log handler threw (full); the message was: lost?\n");
}

TEST(Log, SetLogHandlerReturnsOnlyOnceCallsIntoThePreviousHandlerHaveFinished) {
  std::atomic<bool> inside{false};
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
  weft::set_log_handler([&](weft::LogLevel, std::string_view) {
    inside = true;
    while (!release)
      std::this_thread::yield();
    finished = true;
  });
  std::thread logger([] { weft::detail::log(weft::LogLevel::error, "slow"); });
  while (!inside)
    std::this_thread::yield();
  std::atomic<bool> replaced{false};
  std::thread replacer([&] {
    weft::set_log_handler(nullptr);
    // The old handler's call has finished by now, whenever this ran.
    EXPECT_TRUE(finished.load());
    replaced = true;
  });
  EXPECT_FALSE(replaced.load());  // the old handler is still running
  release = true;
  logger.join();
  replacer.join();
  EXPECT_TRUE(replaced.load());
}

TEST(Log, HandlersRunOnSeveralThreadsAtOnce) {
  weft_test::LogCapture collected;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i)
        weft::detail::log(weft::LogLevel::info, "thread " + std::to_string(t));
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(collected.lines().size(), 400u);
}

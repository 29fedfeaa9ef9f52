// to_thread::run_sync: blocking work on a cached thread while only the calling
// fiber waits; trio's rules for cancellation and the capacity limiter.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// Waits (on an OS thread) until `flag` is set or a generous bound passes.
bool wait_until_set(const std::atomic<bool>& flag) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

}  // namespace

TEST(ToThread, ReturnsTheFunctionsResultComputedOnAnotherThread) {
  weft::run([] {
    const auto hub_thread = std::this_thread::get_id();
    auto [value, worker] = weft::to_thread::run_sync(
        [] { return std::make_pair(std::string("done"), std::this_thread::get_id()); });
    EXPECT_EQ(value, "done");
    EXPECT_NE(worker, hub_thread);
  });
}

TEST(ToThread, RethrowsTheFunctionsExceptionOnTheFiber) {
  weft::run([] {
    EXPECT_THROW(weft::to_thread::run_sync([]() -> int { throw std::runtime_error("bad"); }),
                 std::runtime_error);
    EXPECT_EQ(weft::to_thread::default_limiter().borrowed_tokens(), 0u);
  });
}

TEST(ToThread, MoveOnlyFunctionsAndResultsWork) {
  weft::run([] {
    auto owned = std::make_unique<int>(5);
    auto result = weft::to_thread::run_sync(
        [owned = std::move(owned)]() mutable { return std::move(owned); });
    EXPECT_EQ(*result, 5);
  });
}

TEST(ToThread, OnlyTheCallingFiberWaitsTheHubRunsTheOthers) {
  weft::run([] {
    std::atomic<bool> other_fiber_ran{false};
    weft::spawn([&] { other_fiber_ran = true; });
    // The function blocks its thread until the other fiber has run: that
    // can only happen if the hub keeps going meanwhile.
    EXPECT_TRUE(weft::to_thread::run_sync([&] { return wait_until_set(other_fiber_ran); }));
  });
}

TEST(ToThread, InterruptAlreadyPendingThrowsBeforeTheFunctionRuns) {
  weft::run([] {
    std::atomic<bool> second_ran{false};
    auto caller = weft::spawn([&] {
      weft::Timeout timeout(1ms);
      // Not abandoned: the Timeout that fires meanwhile stays pending...
      weft::to_thread::run_sync([] { std::this_thread::sleep_for(20ms); });
      // ...and is thrown here, before this function can run.
      weft::to_thread::run_sync([&] { second_ran = true; });
    });
    EXPECT_THROW(caller.wait(), weft::TimeoutError);
    EXPECT_FALSE(second_ran);
    EXPECT_EQ(weft::to_thread::default_limiter().borrowed_tokens(), 0u);
  });
}

TEST(ToThread, WithoutAbandonATimeoutWaitsForTheFunctionThenIsThrownAtTheNextSuspension) {
  weft::run([] {
    std::atomic<bool> finished{false};
    auto caller = weft::spawn([&]() -> std::string {
      weft::Timeout timeout(1ms);
      const std::string value = weft::to_thread::run_sync([&] {
        std::this_thread::sleep_for(20ms);
        finished = true;
        return std::string("kept");
      });
      EXPECT_TRUE(finished);
      try {
        weft::yield();
      } catch (const weft::TimeoutError& e) {
        EXPECT_TRUE(e.is(timeout));
        return value + " then timed out";
      }
      return value;
    });
    EXPECT_EQ(caller.wait(), "kept then timed out");
    EXPECT_EQ(weft::to_thread::default_limiter().borrowed_tokens(), 0u);
  });
}

TEST(ToThread, WithAbandonAKillReturnsAtOnceAndTheTokenIsReleasedWhenTheFunctionEnds) {
  weft::CapacityLimiter limiter(1);
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
  weft::run([&] {
    auto caller = weft::spawn([&] {
      weft::to_thread::run_sync(
          [&] {
            wait_until_set(release);
            finished = true;
          },
          {.limiter = &limiter, .abandon_on_cancel = true});
    });
    weft::yield();
    weft::yield();
    caller.kill();
    EXPECT_THROW(caller.wait(), weft::FiberExit);
    EXPECT_FALSE(finished);
    EXPECT_EQ(limiter.borrowed_tokens(), 1u);  // still running: still counted
    release = true;
    while (limiter.borrowed_tokens() != 0)
      weft::sleep(1ms);
    EXPECT_TRUE(finished);
  });
}

TEST(ToThread, AbandonedCallOutlivingItsHubFinishesSafely) {
  weft::CapacityLimiter limiter(1);
  std::atomic<bool> release{false};
  weft::run([&] {
    auto caller = weft::spawn([&] {
      weft::to_thread::run_sync([&] { wait_until_set(release); },
                                {.limiter = &limiter, .abandon_on_cancel = true});
    });
    weft::yield();
    weft::yield();
    // main returns: run kills the caller, which abandons the call
  });
  release = true;
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (limiter.borrowed_tokens() != 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(limiter.borrowed_tokens(), 0u);
}

TEST(ToThread, LimiterBoundHoldsUnderAThousandConcurrentCalls) {
  for (const std::size_t bound : {3u, 10u}) {
    weft::CapacityLimiter limiter(bound);
    std::atomic<int> running{0};
    std::atomic<int> high_water{0};
    std::atomic<int> ran{0};
    std::atomic<int> started{0};
    weft::run([&] {
      std::vector<weft::GreenThread<void>> calls;
      for (int i = 0; i < 1000; ++i) {
        calls.push_back(weft::spawn([&] {
          weft::to_thread::run_sync(
              [&] {
                ++started;
                const int now = ++running;
                int seen = high_water.load();
                while (now > seen && !high_water.compare_exchange_weak(seen, now)) {
                }
                // Stay until the limiter has let `bound` calls in at once (or
                // the last calls are running), so the bound is reached.
                const auto give_up = std::chrono::steady_clock::now() + 100ms;
                while (running.load() < static_cast<int>(bound) &&
                       started.load() + static_cast<int>(bound) <= 1000 &&
                       std::chrono::steady_clock::now() < give_up) {
                  std::this_thread::sleep_for(10us);
                }
                --running;
                ++ran;
              },
              {.limiter = &limiter});
        }));
      }
      for (auto& c : calls)
        c.wait();
    });
    EXPECT_EQ(ran.load(), 1000);
    EXPECT_EQ(high_water.load(), static_cast<int>(bound));
    EXPECT_EQ(limiter.borrowed_tokens(), 0u);
  }
}

TEST(ToThread, LimiterBoundHoldsWhenHalfTheCallsAreAbandoned) {
  constexpr int bound = 4;
  weft::CapacityLimiter limiter(bound);
  std::atomic<int> running{0};
  std::atomic<int> high_water{0};
  std::atomic<int> ran{0};
  weft::run([&] {
    std::vector<weft::GreenThread<void>> calls;
    for (int i = 0; i < 2 * bound; ++i) {
      calls.push_back(weft::spawn([&] {
        weft::to_thread::run_sync(
            [&] {
              const int now = ++running;
              int seen = high_water.load();
              while (now > seen && !high_water.compare_exchange_weak(seen, now)) {
              }
              std::this_thread::sleep_for(5ms);
              --running;
              ++ran;
            },
            {.limiter = &limiter, .abandon_on_cancel = true});
      }));
    }
    weft::sleep(1ms);
    for (int i = 0; i < 2 * bound; i += 2)
      calls[i].kill();
    for (auto& c : calls) {
      try {
        c.wait();
      } catch (const weft::FiberExit&) {
      }
    }
    while (limiter.borrowed_tokens() != 0)
      weft::sleep(1ms);
  });
  EXPECT_LE(high_water.load(), bound);
  EXPECT_EQ(limiter.borrowed_tokens(), 0u);
}

TEST(ToThread, DefaultLimiterHasFortyTokens) {
  EXPECT_EQ(weft::to_thread::default_limiter().total_tokens(), 40u);
}

TEST(ToThread, OutsideAHubThrowsNoHubError) {
  EXPECT_THROW(weft::to_thread::run_sync([] { return 1; }), weft::NoHubError);
}

namespace {

// A result whose destruction is seen from outside: the worker destroys an
// abandoned call's result when it deletes the call.
class DestructionSignal {
 public:
  explicit DestructionSignal(std::atomic<bool>& destroyed) : destroyed_(&destroyed) {}
  DestructionSignal(DestructionSignal&& other) noexcept
      : destroyed_(std::exchange(other.destroyed_, nullptr)) {}
  DestructionSignal& operator=(DestructionSignal&&) = delete;
  ~DestructionSignal() {
    if (destroyed_) destroyed_->store(true);
  }

 private:
  std::atomic<bool>* destroyed_;
};

}  // namespace

// The fiber is woken by the abandonment, but the worker deletes the call
// before the fiber runs again: the fiber must learn that it left from its own
// stack, not from the deleted call (ASan: heap-use-after-free before the fix).
TEST(ToThread, AbandoningFiberDoesNotReadTheCallTheWorkerHasDeleted) {
  weft::CapacityLimiter limiter(1);
  std::atomic<bool> release{false};
  std::atomic<bool> call_deleted{false};
  weft::run([&] {
    auto caller = weft::spawn([&] {
      weft::to_thread::run_sync(
          [&] {
            wait_until_set(release);
            return DestructionSignal(call_deleted);
          },
          {.limiter = &limiter, .abandon_on_cancel = true});
    });
    weft::yield();
    weft::yield();
    // Outside fibers, on the hub's thread: the kill abandons the call and
    // makes the caller ready; the caller cannot run before this returns.
    weft::Hub::current().post([&] {
      caller.kill();
      release = true;
      EXPECT_TRUE(wait_until_set(call_deleted));
      std::this_thread::sleep_for(1ms);  // the rest of `delete` after the destructor
    });
    EXPECT_THROW(caller.wait(), weft::FiberExit);
  });
  EXPECT_EQ(limiter.borrowed_tokens(), 0u);
}

TEST(ToThread, AbandonedCallMayOutliveTheLimiterItBorrowedFrom) {
  std::atomic<bool> release{false};
  std::atomic<bool> call_deleted{false};
  weft::run([&] {
    auto limiter = std::make_unique<weft::CapacityLimiter>(1);
    auto caller = weft::spawn([&] {
      weft::to_thread::run_sync(
          [&] {
            wait_until_set(release);
            return DestructionSignal(call_deleted);
          },
          {.limiter = limiter.get(), .abandon_on_cancel = true});
    });
    weft::yield();
    weft::yield();
    caller.kill();
    EXPECT_THROW(caller.wait(), weft::FiberExit);
    limiter.reset();  // the abandoned call still holds a token
    release = true;
  });
  EXPECT_TRUE(wait_until_set(call_deleted));  // it gave the token back to the limiter's state
}

// The reproduction that found it: calls of a few microseconds under Timeouts
// of the same order, so that abandonment and completion race every way.
TEST(ToThread, AbandonedCallsUnderATimeoutStormEndCleanly) {
  weft::CapacityLimiter limiter(4);
  std::atomic<int> ran{0};
  weft::run([&] {
    int timed_out = 0;
    for (int i = 0; i < 20'000; ++i) {
      try {
        weft::Timeout timeout(std::chrono::microseconds(i % 50));
        weft::to_thread::run_sync(
            [&, i] {
              ::usleep(i % 50);
              ++ran;
            },
            {.limiter = &limiter, .abandon_on_cancel = true});
      } catch (const weft::TimeoutError&) {
        ++timed_out;
      }
    }
    while (limiter.borrowed_tokens() != 0)
      weft::sleep(1ms);
    EXPECT_GT(timed_out, 0);
  });
  EXPECT_LE(ran.load(), 20'000);
}

// Static destruction destroys what it may at exit while a worker still runs
// an abandoned call; the call gives its token back afterwards.
TEST(ToThreadDeathTest, CallAbandonedAtExitMayFinishAfterStaticDestruction) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: no statics made yet
  EXPECT_EXIT(
      {
        static std::atomic<bool> exiting{false};
        static std::atomic<bool> finished{false};
        // Registered before the default limiter exists: runs after it would
        // have been destroyed, and lets the abandoned call finish then.
        std::atexit([] {
          exiting = true;
          wait_until_set(finished);
        });
        weft::run([] {
          auto caller = weft::spawn([] {
            weft::to_thread::run_sync(
                [] {
                  wait_until_set(exiting);
                  return DestructionSignal(finished);
                },
                {.abandon_on_cancel = true});
          });
          weft::yield();
          weft::yield();
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

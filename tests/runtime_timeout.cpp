// Timeout and with_timeout.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

TEST(Timeout, FiresAtTheFirstSuspensionAfterTheDeadlineAndNamesItself) {
  weft::run([] {
    weft::Timeout timeout(2ms);
    try {
      weft::sleep(1h);
      FAIL() << "sleep outlived its Timeout";
    } catch (const weft::TimeoutError& e) {
      EXPECT_TRUE(e.is(timeout));
      EXPECT_FALSE(timeout.pending());
    }
  });
}

TEST(Timeout, IsAStdRuntimeError) {
  weft::run([] {
    weft::Timeout timeout(1ms);
    EXPECT_THROW(weft::sleep(1h), std::runtime_error);
  });
}

TEST(Timeout, LeavingTheScopeCancelsIt) {
  weft::run([] {
    {
      weft::Timeout timeout(1ms);
      EXPECT_TRUE(timeout.pending());
    }
    EXPECT_NO_THROW(weft::sleep(3ms));
    EXPECT_FALSE(weft::Hub::current().next_deadline().has_value());
  });
}

TEST(Timeout, CancelInsideTheBlockPreventsTheRaise) {
  weft::run([] {
    weft::Timeout timeout(1ms);
    timeout.cancel();
    EXPECT_FALSE(timeout.pending());
    EXPECT_NO_THROW(weft::sleep(3ms));
  });
}

TEST(Timeout, NestedOuterFiresFirstAndTheInnerStaysPending) {
  weft::run([] {
    weft::Timeout outer(2ms);
    try {
      weft::Timeout inner(1h);
      try {
        weft::sleep(1h);
      } catch (const weft::TimeoutError& e) {
        EXPECT_FALSE(e.is(inner));
        EXPECT_TRUE(inner.pending());
        throw;
      }
    } catch (const weft::TimeoutError& e) {
      EXPECT_TRUE(e.is(outer));
      EXPECT_FALSE(outer.pending());
    }
  });
}

TEST(Timeout, NestedInnerFiresFirstAndTheOuterStaysPending) {
  weft::run([] {
    weft::Timeout outer(1h);
    weft::Timeout inner(2ms);
    try {
      weft::sleep(1h);
    } catch (const weft::TimeoutError& e) {
      EXPECT_TRUE(e.is(inner));
      EXPECT_FALSE(e.is(outer));
      EXPECT_TRUE(outer.pending());
    }
  });
}

TEST(Timeout, AnOuterTimeoutDueInTheSameRoundAsAnInnerOneIsNotLost) {
  // Found by runtime_stress (mostly on epoll, whose waits round up to whole
  // milliseconds): the inner Timeout fired, then the outer one in the same
  // round found the inner's TimeoutError pending and was dropped; once the
  // inner scope had caught its error, the fiber ran on with no deadline.
  weft::run([] {
    weft::Timeout outer(2ms);
    try {
      {
        weft::Timeout inner(1ms);
        std::this_thread::sleep_for(5ms);  // both deadlines pass before the hub looks
        try {
          weft::yield();  // the round fires the inner, then the outer
        } catch (const weft::TimeoutError& e) {
          if (!e.is(inner)) throw;
        }
      }
      weft::sleep(50ms);
      ADD_FAILURE() << "the outer Timeout expired, yet nothing was thrown";
    } catch (const weft::TimeoutError& e) {
      EXPECT_TRUE(e.is(outer));
    }
  });
}

TEST(Timeout, ExpiringWhileTheFiberRunsIsRaisedAtItsNextSuspension) {
  weft::run([] {
    weft::Timeout timeout(1ms);
    const auto until = std::chrono::steady_clock::now() + 3ms;
    while (std::chrono::steady_clock::now() < until) {
      // busy: runnable, never suspended, so nothing can be thrown here
    }
    EXPECT_THROW(weft::yield(), weft::TimeoutError);
  });
}

TEST(Timeout, ExpiringWhileTheFiberIsReadyIsRaisedWhenItResumes) {
  weft::run([] {
    // A sibling busy-waits past the deadline while we sit in the ready queue.
    weft::spawn_n([] {
      const auto until = std::chrono::steady_clock::now() + 3ms;
      while (std::chrono::steady_clock::now() < until) {
      }
      weft::yield();
    });
    weft::Timeout timeout(1ms);
    weft::yield();  // sibling runs its busy loop, then the timer fires
    EXPECT_THROW(
        {
          weft::yield();
          weft::sleep(1h);
        },
        weft::TimeoutError);
  });
}

TEST(Timeout, ADueTimeoutWithdrawnByCancelIsNeverSeen) {
  weft::run([] {
    weft::Timeout timeout(1ms);
    const auto until = std::chrono::steady_clock::now() + 3ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    timeout.cancel();
    EXPECT_NO_THROW(weft::sleep(1ms));
  });
}

TEST(Timeout, InterruptsAWaitOnAGreenThreadWithoutHarmingIt) {
  weft::run([] {
    auto slow = weft::spawn([] {
      weft::sleep(5ms);
      return 8;
    });
    EXPECT_THROW(weft::with_timeout(1ms, [&] { return slow.wait(); }), weft::TimeoutError);
    EXPECT_EQ(slow.wait(), 8);
  });
}

TEST(WithTimeout, ReturnsTheTimeoutValueOnlyWhenItsOwnTimeoutFired) {
  weft::run([] {
    EXPECT_EQ(weft::with_timeout(
                  1ms,
                  [] {
                    weft::sleep(1h);
                    return 1;
                  },
                  -1),
              -1);
    EXPECT_EQ(weft::with_timeout(
                  1h, [] { return 1; }, -1),
              1);
    weft::Timeout outer(2ms);
    EXPECT_THROW(weft::with_timeout(
                     1h,
                     [] {
                       weft::sleep(1h);
                       return 1;
                     },
                     -1),
                 weft::TimeoutError);
  });
}

TEST(Timeout, FiringAfterAKillDoesNotReplaceThePendingKill) {
  weft::run([] {
    auto child = weft::spawn([] {
      weft::Timeout timeout(1ms);
      const auto until = std::chrono::steady_clock::now() + 3ms;
      while (std::chrono::steady_clock::now() < until) {
      }
      weft::yield();  // ready, not suspended, with its Timeout overdue
      return 0;
    });
    weft::yield();  // the child runs, overdue, and yields; we resume before the hub polls
    child.kill();   // pending kill; the Timeout fires at the end of this round
    EXPECT_THROW(child.wait(), weft::FiberExit);
  });
}

TEST(Timeout, SerialsAreUniqueAcrossHubsAndGrowWithinEach) {
  // Hubs take serials in blocks; many Timeouts on two hubs at once cross
  // several blocks on each.
  constexpr int per_hub = 10'000;
  // A sanitizer starts a helper thread of its own with the process's first
  // thread: let that happen before counting.
  std::thread([] {}).join();
  const std::size_t threads_before = weft_test::live_threads();
  const std::size_t fds_before = weft_test::open_fds();
  auto serials_of_one_hub = [] {
    std::vector<std::uint64_t> serials;
    weft::run([&] {
      for (int i = 0; i < per_hub; ++i) {
        weft::Timeout timeout(0ns);
        try {
          weft::sleep(1h);
        } catch (const weft::TimeoutError& e) {
          ASSERT_TRUE(e.is(timeout));
          serials.push_back(e.serial());
        }
      }
    });
    return serials;
  };
  std::vector<std::uint64_t> other;
  std::thread other_hub([&] { other = serials_of_one_hub(); });
  std::vector<std::uint64_t> mine = serials_of_one_hub();
  other_hub.join();
  ASSERT_EQ(mine.size(), std::size_t{per_hub});
  ASSERT_EQ(other.size(), std::size_t{per_hub});
  EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()) &&
              std::adjacent_find(mine.begin(), mine.end()) == mine.end());
  EXPECT_TRUE(std::is_sorted(other.begin(), other.end()) &&
              std::adjacent_find(other.begin(), other.end()) == other.end());
  std::vector<std::uint64_t> all = mine;
  all.insert(all.end(), other.begin(), other.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a serial on both hubs";
  EXPECT_EQ(weft_test::live_threads(), threads_before);
  EXPECT_EQ(weft_test::open_fds(), fds_before);
}

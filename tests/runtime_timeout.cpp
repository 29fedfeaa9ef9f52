// Timeout and with_timeout.

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <weft/weft.hpp>

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

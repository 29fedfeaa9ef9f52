// retry(): oslo's RetryDecorator, on the calling fiber, with its count per
// call. oslo's checks on virtual time, with exact sleeps.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "tests/fd_leak_check.hpp"
#include "tests/virtual_time.hpp"

using namespace std::chrono_literals;
using Seconds = std::chrono::duration<double>;

namespace {

using weft_test::exact;
using weft_test::expect_times;
using weft_test::run_virtual;
using weft_test::since;

struct AnException : std::runtime_error {
  AnException() : std::runtime_error("an exception") {}
};
struct DerivedException : AnException {};
struct UnknownException : std::runtime_error {
  UnknownException() : std::runtime_error("unknown") {}
};

// Records when it is called; throws `failures` times, then returns "RESULT".
struct Flaky {
  std::chrono::steady_clock::time_point origin;
  std::vector<double>* calls;
  int failures;

  template <class E = AnException>
  std::string operator()() {
    calls->push_back(since(origin));
    if (static_cast<int>(calls->size()) <= failures) throw E{};
    return "RESULT";
  }
};

class RetryTest : public weft_test::FdLeakCheck {};

}  // namespace

TEST_F(RetryTest, ReturnsTheResultWithoutRetryingWhenNothingFails) {
  // oslo's test_retry.
  std::vector<double> calls;
  const std::string result = run_virtual([&] {
    return weft::retry<AnException>({}, Flaky{weft::now(), &calls, 0});
  });
  EXPECT_EQ(result, "RESULT");
  expect_times(calls, {0});
}

TEST_F(RetryTest, RetriesAListedExceptionAfterSleepingIncThenTwiceInc) {
  // oslo's test_retry_with_expected_exceptions: RetryDecorator(10, 0.01, 10,
  // (AnException,)), two failures then "RESULT".
  std::vector<double> calls;
  const std::string result = run_virtual([&] {
    return weft::retry<AnException>(
        {.max_retry_count = 10, .inc_sleep_time = 0.01s, .max_sleep_time = 10s},
        Flaky{weft::now(), &calls, 2});
  });
  EXPECT_EQ(result, "RESULT");
  expect_times(calls, {0, 0.01, 0.03});
}

TEST_F(RetryTest, MaxRetryCountTwoMeansThreeCallsThenTheExceptionIsRethrown) {
  // oslo's test_retry_with_max_retries: RetryDecorator(2, 0, 0, (AnException,)).
  std::vector<double> calls;
  run_virtual([&] {
    EXPECT_THROW(
        weft::retry<AnException>({.max_retry_count = 2, .inc_sleep_time = 0s, .max_sleep_time = 0s},
                                 Flaky{weft::now(), &calls, 3}),
        AnException);
  });
  EXPECT_EQ(calls.size(), 3u);
}

TEST_F(RetryTest, MaxRetryCountZeroMeansOneCall) {
  std::vector<double> calls;
  run_virtual([&] {
    EXPECT_THROW(weft::retry<AnException>({.max_retry_count = 0}, Flaky{weft::now(), &calls, 1}),
                 AnException);
  });
  EXPECT_EQ(calls.size(), 1u);
}

TEST_F(RetryTest, AnUnlistedExceptionIsRethrownAtOnce) {
  // oslo's test_retry_with_unexpected_exception.
  std::vector<double> calls;
  run_virtual([&] {
    Flaky flaky{weft::now(), &calls, 5};
    EXPECT_THROW(weft::retry<AnException>({}, [&] { return flaky.operator()<UnknownException>(); }),
                 UnknownException);
  });
  EXPECT_EQ(calls.size(), 1u);
}

TEST_F(RetryTest, NoExceptionsListedMeansNoRetry) {
  std::vector<double> calls;
  run_virtual([&] { EXPECT_THROW(weft::retry({}, Flaky{weft::now(), &calls, 1}), AnException); });
  EXPECT_EQ(calls.size(), 1u);
}

TEST_F(RetryTest, AnExceptionDerivedFromAListedOneIsRetried) {
  std::vector<double> calls;
  const std::string result = run_virtual([&] {
    Flaky flaky{weft::now(), &calls, 2};
    return weft::retry<UnknownException, AnException>(
        {.inc_sleep_time = 1s}, [&] { return flaky.operator()<DerivedException>(); });
  });
  EXPECT_EQ(result, "RESULT");
  expect_times(calls, {0, 1, 3});
}

TEST_F(RetryTest, SleepsGrowByIncAndAreCappedAtMaxSleepTime) {
  // Unlimited retries (-1): 10, 20, 25, 25, 25 with inc 10 and a cap of 25.
  std::vector<double> calls;
  run_virtual([&] {
    weft::retry<AnException>({.inc_sleep_time = 10s, .max_sleep_time = 25s},
                             Flaky{weft::now(), &calls, 5});
  });
  expect_times(calls, {0, 10, 30, 55, 80, 105});
}

TEST_F(RetryTest, TheCountAndTheSleepsArePerCall) {
  // oslo keeps them on the decorator, shared by every call: the second call
  // would start from where the first left off, and with a limit of 2 fail
  // after its first retry.
  std::vector<double> first;
  std::vector<double> second;
  run_virtual([&] {
    const weft::RetryOptions options{.max_retry_count = 2, .inc_sleep_time = 1s};
    weft::retry<AnException>(options, Flaky{weft::now(), &first, 2});
    weft::retry<AnException>(options, Flaky{weft::now(), &second, 2});
  });
  expect_times(first, {0, 1, 3});
  expect_times(second, {0, 1, 3});
}

TEST_F(RetryTest, ConcurrentCallsKeepTheirOwnCounts) {
  std::vector<double> a;
  std::vector<double> b;
  run_virtual([&] {
    const weft::RetryOptions options{.max_retry_count = 3, .inc_sleep_time = 1s};
    auto one = weft::spawn([&] {
      return weft::retry<AnException>(options, Flaky{weft::now(), &a, 3});
    });
    auto two = weft::spawn([&] {
      return weft::retry<AnException>(options, Flaky{weft::now(), &b, 3});
    });
    EXPECT_EQ(one.wait(), "RESULT");
    EXPECT_EQ(two.wait(), "RESULT");
  });
  expect_times(a, {0, 1, 3, 6});
  expect_times(b, {0, 1, 3, 6});
}

TEST_F(RetryTest, ATimeoutErrorFromAnEnclosingTimeoutIsNeverRetried) {
  int calls = 0;
  double ended = -1;
  run_virtual([&] {
    const auto origin = weft::now();
    weft::Timeout timeout(5s);
    try {
      weft::retry<std::runtime_error>({.inc_sleep_time = 1s}, [&] {
        ++calls;
        weft::sleep(10s);
      });
    } catch (const weft::TimeoutError& e) {
      EXPECT_TRUE(e.is(timeout));
      ended = since(origin);
    }
  });
  EXPECT_EQ(calls, 1);
  EXPECT_NEAR(ended, 5, exact);
}

TEST_F(RetryTest, AnEnclosingTimeoutAlsoEndsTheSleepBetweenAttempts) {
  int calls = 0;
  double ended = -1;
  run_virtual([&] {
    const auto origin = weft::now();
    try {
      weft::Timeout timeout(15s);
      weft::retry<AnException>({.inc_sleep_time = 10s}, [&] {
        ++calls;
        throw AnException{};
      });
    } catch (const weft::TimeoutError&) {
      ended = since(origin);
    }
  });
  EXPECT_EQ(calls, 2);  // at 0 and 10; the sleep until 30 is cut at 15
  EXPECT_NEAR(ended, 15, exact);
}

TEST_F(RetryTest, ATimeoutErrorOfATimeoutInsideTheFunctionIsRetriedWhenListed) {
  std::vector<double> calls;
  run_virtual([&] {
    const auto origin = weft::now();
    weft::Timeout outer(1h);
    const int result = weft::retry<std::runtime_error>({.inc_sleep_time = 1s}, [&] {
      calls.push_back(since(origin));
      weft::Timeout own(2s);
      if (calls.size() < 3) weft::sleep(5s);
      return 7;
    });
    EXPECT_EQ(result, 7);
  });
  expect_times(calls, {0, 3, 7});  // the first two time out after 2 s; then sleeps of 1 and 2 s
}

TEST_F(RetryTest, ATimeoutErrorHandedOnByAnotherFiberIsRetriedWhenListed) {
  // Another fiber's Timeout, set before the retry began (a smaller serial than
  // any Timeout inside it), reaches the function through wait(): it encloses
  // nothing of this fiber's, so it is retried like any listed error.
  int calls = 0;
  run_virtual([&] {
    auto timed_out = weft::spawn([] {
      weft::Timeout theirs(1s);
      weft::sleep(1h);
    });
    weft::sleep(2s);  // their Timeout has fired
    const int result = weft::retry<std::runtime_error>({.inc_sleep_time = 1s}, [&] {
      if (++calls == 1) timed_out.wait();  // rethrows their TimeoutError
      return 7;
    });
    EXPECT_EQ(result, 7);
  });
  EXPECT_EQ(calls, 2);
}

TEST_F(RetryTest, AKillIsNeverRetried) {
  int calls = 0;
  run_virtual([&] {
    auto retrying = weft::spawn([&] {
      weft::retry<std::runtime_error>({.inc_sleep_time = 1s}, [&] {
        ++calls;
        weft::sleep(10s);
      });
    });
    weft::sleep(1s);
    retrying.kill();
    EXPECT_THROW(retrying.wait(), weft::FiberExit);
  });
  EXPECT_EQ(calls, 1);
}

TEST_F(RetryTest, PassesCopiesOfItsArgumentsToEveryAttemptAndTakesMoveOnlyOnes) {
  std::vector<int> seen;
  run_virtual([&] {
    auto owned = std::make_unique<int>(40);
    const int result = weft::retry<AnException>(
        {.inc_sleep_time = 0s},
        [&seen, owned = std::move(owned)](int& attempt, const std::unique_ptr<int>& base) {
          seen.push_back(++attempt);
          if (attempt < 3) throw AnException{};
          return *owned + *base - 38 + attempt;
        },
        0, std::make_unique<int>(1));
    EXPECT_EQ(result, 6);
  });
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
}

TEST_F(RetryTest, AVoidFunction) {
  int calls = 0;
  run_virtual([&] {
    weft::retry<AnException>({.inc_sleep_time = 0s}, [&] {
      if (++calls < 2) throw AnException{};
    });
  });
  EXPECT_EQ(calls, 2);
}

TEST_F(RetryTest, BadOptionsThrowInvalidArgument) {
  run_virtual([] {
    auto f = [] { return 1; };
    EXPECT_THROW(weft::retry<AnException>({.max_retry_count = -2}, f), std::invalid_argument);
    EXPECT_THROW(weft::retry<AnException>({.inc_sleep_time = Seconds(-1)}, f),
                 std::invalid_argument);
    EXPECT_THROW(weft::retry<AnException>({.max_sleep_time = Seconds(-1)}, f),
                 std::invalid_argument);
  });
}

TEST_F(RetryTest, OutsideAFiberThrowsNoHubError) {
  bool called = false;
  EXPECT_THROW(weft::retry<AnException>({}, [&] { called = true; }), weft::NoHubError);
  EXPECT_FALSE(called);
}

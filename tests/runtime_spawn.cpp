// spawn, spawn_n, spawn_after and GreenThread::wait.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

TEST(Spawn, ReturnsBeforeTheChildRuns) {
  weft::run([] {
    std::vector<std::string> log;
    auto child = weft::spawn([&] { log.push_back("child"); });
    log.push_back("parent");
    child.wait();
    EXPECT_EQ(log, (std::vector<std::string>{"parent", "child"}));
  });
}

TEST(Spawn, PassesDecayCopiedArgumentsAndReturnsTheResult) {
  weft::run([] {
    std::string text = "abc";
    auto child = weft::spawn([](std::string s, int n) { return s + std::to_string(n); }, text, 7);
    text = "changed";  // the child got its own copy
    EXPECT_EQ(child.wait(), "abc7");
  });
}

TEST(Spawn, AcceptsMoveOnlyCallablesArgumentsAndResults) {
  weft::run([] {
    auto owned = std::make_unique<int>(5);
    auto child = weft::spawn(
        [p = std::move(owned)](std::unique_ptr<int> q) { return std::make_unique<int>(*p + *q); },
        std::make_unique<int>(6));
    std::unique_ptr<int> result = child.wait();
    EXPECT_EQ(*result, 11);
    EXPECT_THROW(child.wait(), std::logic_error);  // a move-only result is taken once
  });
}

TEST(Spawn, FibersStartInSpawnOrder) {
  weft::run([] {
    std::vector<int> order;
    std::vector<weft::GreenThread<void>> children;
    for (int i = 0; i < 5; ++i)
      children.push_back(weft::spawn([&order, i] { order.push_back(i); }));
    for (auto& child : children)
      child.wait();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  });
}

TEST(Spawn, YieldReturnsAfterEveryReadyFiberRanToItsNextSuspension) {
  weft::run([] {
    std::vector<std::string> log;
    weft::spawn([&] {
      log.push_back("a1");
      weft::yield();
      log.push_back("a2");
    });
    weft::spawn([&] { log.push_back("b1"); });
    weft::yield();
    log.push_back("main");
    weft::yield();
    EXPECT_EQ(log, (std::vector<std::string>{"a1", "b1", "main", "a2"}));
  });
}

TEST(Spawn, ManyWaitersAllGetTheSameOutcome) {
  weft::run([] {
    auto source = weft::spawn([] {
      weft::sleep(1ms);
      return 42;
    });
    std::vector<weft::GreenThread<int>> waiters;
    for (int i = 0; i < 5; ++i)
      waiters.push_back(weft::spawn([source] { return source.wait(); }));
    for (auto& waiter : waiters)
      EXPECT_EQ(waiter.wait(), 42);
  });
}

TEST(Spawn, WaitRethrowsTheFibersException) {
  weft::run([] {
    auto child = weft::spawn([]() -> int { throw std::runtime_error("boom"); });
    EXPECT_THROW(
        {
          try {
            child.wait();
          } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "boom");
            throw;
          }
        },
        std::runtime_error);
    EXPECT_THROW(child.wait(), std::runtime_error);  // again, same outcome
  });
}

TEST(Spawn, AFiberWaitingForItselfGetsALogicError) {
  weft::run([] {
    auto self = std::make_shared<weft::GreenThread<void>>();
    *self = weft::spawn([self] { EXPECT_THROW(self->wait(), std::logic_error); });
    self->wait();
    *self = {};
  });
}

TEST(Spawn, OutsideAHubThrowsNoHubError) {
  EXPECT_THROW(weft::spawn([] {}), weft::NoHubError);
  EXPECT_THROW(weft::spawn_n([] {}), weft::NoHubError);
  EXPECT_THROW(weft::sleep(1ms), weft::NoHubError);
  EXPECT_THROW(weft::yield(), weft::NoHubError);
  EXPECT_THROW(weft::Timeout(1ms), weft::NoHubError);
}

TEST(Spawn, AFinishedHandleCanBeWaitedOnAfterTheHubIsGone) {
  auto handle = weft::run([] {
    auto child = weft::spawn([] { return 3; });
    child.wait();
    return child;
  });
  EXPECT_TRUE(handle.dead());
  EXPECT_EQ(handle.wait(), 3);
}

TEST(Spawn, AFiberLeftUnstartedWhenMainEndsNeverRunsAndItsHandleSaysKilled) {
  bool ran = false;
  auto handle = weft::run([&] { return weft::spawn([&] { ran = true; }); });
  EXPECT_TRUE(handle.dead());
  EXPECT_FALSE(handle.started());
  EXPECT_THROW(handle.wait(), weft::FiberExit);
  EXPECT_FALSE(ran);
}

TEST(SpawnN, RunsOnceAtTheNextRound) {
  weft::run([] {
    int runs = 0;
    weft::spawn_n([&] { ++runs; });
    EXPECT_EQ(runs, 0);
    weft::yield();
    EXPECT_EQ(runs, 1);
    weft::yield();
    EXPECT_EQ(runs, 1);
  });
}

TEST(SpawnN, AnEscapingExceptionGoesToTheErrorHandlerAndTheHubKeepsRunning) {
  std::vector<std::string> reported;
  weft::run([&] {
    weft::Hub::current().set_error_handler([&](std::string_view name, std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        reported.push_back(std::string(name) + ":" + ex.what());
      }
    });
    weft::spawn_n(weft::SpawnOptions{.name = "worker"}, [] { throw std::runtime_error("bad"); });
    weft::sleep(1ms);
    weft::spawn_n([] {});  // still schedules
    weft::yield();
  });
  EXPECT_EQ(reported, (std::vector<std::string>{"worker:bad"}));
}

TEST(SpawnN, DefaultErrorHandlerPrintsToStderr) {
  testing::internal::CaptureStderr();
  weft::run([] {
    weft::spawn_n(weft::SpawnOptions{.name = "noisy"}, [] { throw std::runtime_error("oops"); });
    weft::yield();
  });
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("noisy"), std::string::npos) << err;
  EXPECT_NE(err.find("oops"), std::string::npos) << err;
}

TEST(SpawnN, AKilledSpawnNFiberIsNotReportedAsAnError) {
  int reports = 0;
  weft::run([&] {
    weft::Hub::current().set_error_handler(
        [&](std::string_view, std::exception_ptr) { ++reports; });
    weft::spawn_n([] { weft::sleep(1h); });
    weft::yield();
  });  // run kills it on the way out
  EXPECT_EQ(reports, 0);
}

TEST(SpawnAfter, StartsOnlyOnceTheDelayHasPassed) {
  weft::run([] {
    const auto start = std::chrono::steady_clock::now();
    auto child = weft::spawn_after(5ms, [] { return std::chrono::steady_clock::now(); });
    EXPECT_GE(child.wait() - start, 5ms);
  });
}

TEST(SpawnAfter, RunsEvenIfTheSpawnerHasEnded) {
  weft::run([] {
    auto spawner = weft::spawn([] { return weft::spawn_after(1ms, [] { return 9; }); });
    auto grandchild = spawner.wait();
    EXPECT_TRUE(spawner.dead());
    EXPECT_EQ(grandchild.wait(), 9);
  });
}

TEST(SpawnAfter, EqualDelaysStartInTheOrderTheyWereSet) {
  weft::run([] {
    std::vector<int> order;
    std::vector<weft::GreenThread<void>> children;
    for (int i = 0; i < 20; ++i) {
      children.push_back(weft::spawn_after(0ms, [&order, i] { order.push_back(i); }));
    }
    for (auto& child : children)
      child.wait();
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(order[i], i);
  });
}

namespace {

// Keeps values live across every yield: integers, doubles, a long double (x87)
// and a vector, all changed between yields. The compiler holds what it can in
// callee-saved registers across yield(), which the switch must save and
// restore for each fiber (the test crashes or differs when one is lost).
template <int Salt>
[[gnu::noinline]] long double values_across_yields(int rounds) {
  std::uint64_t i0 = Salt, i1 = Salt * 3;
  double d0 = Salt * 0.5, d1 = Salt * 0.25;
  long double x87 = Salt;
  typedef double Pair __attribute__((vector_size(16)));
  Pair v = {1.0 * Salt, 2.0 * Salt};
  for (int r = 0; r < rounds; ++r) {
    i0 = i0 * 6364136223846793005ULL + 1442695040888963407ULL;
    i1 ^= i0 >> 7;
    d0 = d0 * 1.0000001 + 0.5;
    d1 += d0 * 0.001;
    x87 = x87 * 1.0000001L + 0.25L;
    v = v * 1.0000001 + Pair{0.5, 0.25};
    weft::yield();
  }
  return static_cast<long double>(i0 % 1000) + static_cast<long double>(i1 % 1000) + d0 + d1 + x87 +
         v[0] + v[1];
}

}  // namespace

TEST(Spawn, RegistersLiveAcrossAYieldKeepTheirValuesWhenFibersRunDifferentCode) {
  // The same two computations with and without other fibers between the steps.
  long double alone_a = 0, alone_b = 0, together_a = 0, together_b = 0;
  weft::run([&] {
    alone_a = weft::spawn([] { return values_across_yields<3>(200); }).wait();
    alone_b = weft::spawn([] { return values_across_yields<7>(200); }).wait();
    auto a = weft::spawn([] { return values_across_yields<3>(200); });
    auto b = weft::spawn([] { return values_across_yields<7>(200); });
    auto noise = weft::spawn([] {
      for (int r = 0; r < 300; ++r) {
        volatile double scratch = r * 1.5;
        static_cast<void>(scratch);
        weft::yield();
      }
    });
    together_a = a.wait();
    together_b = b.wait();
    noise.wait();
  });
  EXPECT_EQ(together_a, alone_a);
  EXPECT_EQ(together_b, alone_b);
  EXPECT_NE(alone_a, alone_b);
}

namespace {
// Where a fiber's first frame lies within its page.
[[gnu::noinline]] std::uintptr_t frame_offset_in_page() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) % 4096;
}
}  // namespace

TEST(Spawn, FibersSpawnedTogetherBeginAtDifferentOffsetsInTheirStacksTopPage) {
  // Two fibers switching back and forth must not save and restore registers
  // at addresses equal modulo 4 KiB (4K aliasing stalls every switch).
  weft::run([] {
    std::vector<weft::GreenThread<std::uintptr_t>> fibers;
    for (int i = 0; i < 8; ++i)
      fibers.push_back(weft::spawn(frame_offset_in_page));
    std::vector<std::uintptr_t> offsets;
    for (auto& fiber : fibers)
      offsets.push_back(fiber.wait());
    std::sort(offsets.begin(), offsets.end());
    EXPECT_EQ(std::adjacent_find(offsets.begin(), offsets.end()), offsets.end())
        << "two of 8 fibers spawned in a row begin at the same offset in a page";
  });
}

TEST(Spawn, FiberIdsAreUniqueAcrossHubsAndThreadsAndGrowWithinEach) {
  // Ids are taken in blocks per thread; fibers spawned on two hubs at once,
  // and by a plain thread into a Runtime, cross several blocks each.
  constexpr int per_hub = 10'000;
  auto ids_of_one_hub = [] {
    std::vector<std::uint64_t> ids;
    weft::run([&] {
      for (int i = 0; i < per_hub; ++i)
        ids.push_back(weft::spawn([] {}).id());
    });
    return ids;
  };
  std::vector<std::uint64_t> other;
  std::thread other_hub([&] { other = ids_of_one_hub(); });
  std::vector<std::uint64_t> mine = ids_of_one_hub();
  other_hub.join();
  std::vector<std::uint64_t> from_plain_thread;
  {
    weft::Runtime runtime(weft::RuntimeOptions{.hubs = 1});
    for (int i = 0; i < 5'000; ++i)
      from_plain_thread.push_back(runtime.spawn_on(0, [] {}).id());
  }
  // Increasing, and one apart modulo 8 (blocks hold a multiple of 8 ids):
  // what makes the stack offsets of fibers spawned in a row differ.
  for (const auto* ids : {&mine, &other, &from_plain_thread}) {
    EXPECT_TRUE(std::adjacent_find(ids->begin(), ids->end(),
                                   [](auto a, auto b) { return b <= a || (b - a) % 8 != 1; }) ==
                ids->end())
        << "ids spawned in a row on one thread do not grow one by one modulo 8";
  }
  std::vector<std::uint64_t> all = mine;
  all.insert(all.end(), other.begin(), other.end());
  all.insert(all.end(), from_plain_thread.begin(), from_plain_thread.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "an id on two threads";
}

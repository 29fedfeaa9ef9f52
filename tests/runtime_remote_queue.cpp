// The hub's remote queue (Hub::post): lock-free posts from many threads, none
// lost, each thread's posts in order, the eventfd written only while the hub
// may sleep, and a hub that may be destroyed as soon as the work that ended it
// has run.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "runtime/hub_core.hpp"
#include "thread_state.hpp"

using namespace std::chrono_literals;

TEST(RuntimeRemoteQueue, EightPlainThreadsPostingTenThousandEachLoseNothing) {
  constexpr int threads = 8;
  constexpr int per_thread = 10000;
  weft::Hub hub;
  // Touched only on the hub's thread, by the posted work.
  long ran = 0;
  long sum = 0;
  std::vector<int> last_seen(threads, -1);
  bool in_order = true;
  std::vector<std::thread> posters;
  for (int t = 0; t < threads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        hub.post([&, t, i] {
          in_order = in_order && last_seen[t] == i - 1;
          last_seen[t] = i;
          sum += i;
          ++ran;
        });
      }
    });
  }
  hub.run_until([&] { return ran == long{threads} * per_thread; });
  for (auto& p : posters)
    p.join();
  EXPECT_EQ(ran, long{threads} * per_thread);
  EXPECT_EQ(sum, long{threads} * per_thread * (per_thread - 1) / 2);
  EXPECT_TRUE(in_order);
}

TEST(RuntimeRemoteQueue, PostsFromOneThreadRunInOrderAcrossSleeps) {
  weft::Hub hub;
  std::vector<int> seen;
  const pid_t hub_thread = weft_test::this_thread_tid();
  std::thread poster([&] {
    for (int i = 0; i < 200; ++i) {
      hub.post([&, i] { seen.push_back(i); });
      if (i % 20 == 0) weft_test::wait_until_sleeping(hub_thread);  // the hub ran out of work
    }
  });
  hub.run_until([&] { return seen.size() == 200; });
  poster.join();
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(seen[i], i);
}

TEST(RuntimeRemoteQueue, ExceptionFromPostedWorkGoesToErrorHandlerAndTheRestRun) {
  weft::Hub hub;
  int errors = 0;
  hub.set_error_handler([&](std::string_view, std::exception_ptr) { ++errors; });
  int ran = 0;
  std::thread poster([&] {
    hub.post([] { throw std::runtime_error("posted"); });
    hub.post([&] { ++ran; });
  });
  poster.join();
  hub.run_until([&] { return ran == 1; });
  EXPECT_EQ(errors, 1);
}

TEST(RuntimeRemoteQueue, UnrunPostsAreDroppedWithTheHub) {
  auto token = std::make_shared<int>(0);
  {
    weft::Hub hub;
    hub.post([token] { ++*token; });
    std::thread([&] { hub.post([token] { ++*token; }); }).join();
  }
  EXPECT_EQ(token.use_count(), 1);  // destroyed unrun, not leaked
  EXPECT_EQ(*token, 0);
}

TEST(RuntimeRemoteQueue, HubDestroyedRightAfterTheWorkThatWokeItsLastFiber) {
  // The posted work wakes the hub's only fiber, which ends; weft::run then
  // destroys the hub while the poster may still be inside post(). The poster
  // must not touch the queue after its post became visible (ASan, TSan).
  for (int round = 0; round < 1000; ++round) {
    std::atomic<weft::Hub*> published{nullptr};
    std::atomic<pid_t> hub_tid{0};
    weft::Event<> wake_up;
    std::thread hub_thread([&] {
      hub_tid = weft_test::this_thread_tid();
      weft::run([&] {
        published.store(&weft::Hub::current(), std::memory_order_release);
        wake_up.wait();
      });
    });
    weft::Hub* hub = nullptr;
    while (!(hub = published.load(std::memory_order_acquire)))
      std::this_thread::yield();
    // Every other round the hub is asleep in its backend when the post comes;
    // in the others it may still be running.
    if (round % 2) weft_test::wait_until_sleeping(hub_tid.load());
    hub->post([&wake_up] { wake_up.send(); });  // runs on the hub: a direct wake-up
    hub_thread.join();
  }
}

TEST(RuntimeRemoteQueue, HubPostWakesAnIdleEmbeddedHub) {
  weft::Hub hub;
  std::atomic<bool> done{false};
  std::atomic<bool> blocking{false};
  weft::detail::HubCore::current()->set_before_blocking_for_test([&] { blocking = true; });
  std::thread poster([&] {
    while (!blocking)  // the hub is about to sleep in its backend
      std::this_thread::yield();
    hub.post([&] { done = true; });
  });
  const auto t0 = std::chrono::steady_clock::now();
  hub.run_until([&] { return done.load(); });
  poster.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

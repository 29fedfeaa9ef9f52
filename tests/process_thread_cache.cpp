// ThreadCache: delivery, LIFO reuse, reuse from deliver, idle expiry and its
// race with job assignment, shutdown that never hangs, and fork.

#include <dirent.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/process/thread_cache.hpp>

#include "hang_watchdog.hpp"

using namespace std::chrono_literals;
using weft::ThreadCache;
using weft::ThreadCacheOptions;

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr bool under_tsan = true;
#elif defined(__has_feature)
constexpr bool under_tsan = __has_feature(thread_sanitizer);
#else
constexpr bool under_tsan = false;
#endif

// Waits in these tests are bounds against hangs, never expectations.
constexpr auto upper_bound = 30s;

class CountDown {
 public:
  explicit CountDown(int count = 1) : count_(count) {}
  void count_down() {
    std::lock_guard lock(mutex_);
    if (--count_ == 0) reached_zero_.notify_all();
  }
  [[nodiscard]] bool wait() {
    std::unique_lock lock(mutex_);
    return reached_zero_.wait_for(lock, upper_bound, [&] { return count_ <= 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable reached_zero_;
  int count_;
};

using Event = CountDown;  // set() is count_down() on a count of one

std::size_t directory_entries(const char* path) {
  DIR* dir = ::opendir(path);
  if (!dir) return 0;
  std::size_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

std::size_t thread_count() {
  return directory_entries("/proc/self/task");
}

// Runs `n` jobs that are all running at the same moment (so on `n` different
// workers) and waits for their delivery. Returns their threads' ids.
std::vector<std::thread::id> run_at_once(ThreadCache& cache, int n) {
  std::vector<std::thread::id> ids(static_cast<std::size_t>(n));
  CountDown all_running(n);
  CountDown all_delivered(n);
  for (int i = 0; i < n; ++i) {
    cache.start_thread_soon(
        [&, i] {
          ids[static_cast<std::size_t>(i)] = std::this_thread::get_id();
          all_running.count_down();
          EXPECT_TRUE(all_running.wait());
        },
        [&](std::exception_ptr) { all_delivered.count_down(); });
  }
  EXPECT_TRUE(all_delivered.wait());
  return ids;
}

}  // namespace

TEST(ThreadCache, DeliversNullptrWhenFnReturns) {
  ThreadCache cache;
  bool ran = false;
  std::exception_ptr delivered = std::make_exception_ptr(0);
  Event done;
  cache.start_thread_soon([&] { ran = true; },
                          [&](std::exception_ptr error) {
                            delivered = error;
                            done.count_down();
                          });
  ASSERT_TRUE(done.wait());
  EXPECT_TRUE(ran);
  EXPECT_EQ(delivered, nullptr);
}

TEST(ThreadCache, DeliversTheExceptionFnThrew) {
  ThreadCache cache;
  std::string message;
  Event done;
  cache.start_thread_soon([] { throw std::runtime_error("hi"); },
                          [&](std::exception_ptr error) {
                            try {
                              std::rethrow_exception(error);
                            } catch (const std::runtime_error& e) {
                              message = e.what();
                            }
                            done.count_down();
                          });
  ASSERT_TRUE(done.wait());
  EXPECT_EQ(message, "hi");
}

TEST(ThreadCache, AnEmptyCallableIsRejected) {
  ThreadCache cache;
  EXPECT_THROW(cache.start_thread_soon({}, [](std::exception_ptr) {}), std::invalid_argument);
  EXPECT_THROW(cache.start_thread_soon([] {}, {}), std::invalid_argument);
  EXPECT_EQ(cache.total_workers(), 0u);
}

TEST(ThreadCache, RunsJobsOnAnotherThreadNamedWeftWorker) {
  ThreadCache cache;
  std::thread::id fn_thread, deliver_thread;
  std::array<char, 16> name{};
  Event done;
  cache.start_thread_soon(
      [&] {
        fn_thread = std::this_thread::get_id();
        ::pthread_getname_np(::pthread_self(), name.data(), name.size());
      },
      [&](std::exception_ptr) {
        deliver_thread = std::this_thread::get_id();
        done.count_down();
      });
  ASSERT_TRUE(done.wait());
  EXPECT_NE(fn_thread, std::this_thread::get_id());
  EXPECT_EQ(fn_thread, deliver_thread);
  EXPECT_STREQ(name.data(), "weft-worker");
}

TEST(ThreadCache, FnAndItsCapturesAreDestroyedBeforeDeliverRuns) {
  struct Flag {
    std::atomic<bool>* destroyed;
    ~Flag() { destroyed->store(true); }
  };
  ThreadCache cache;
  std::atomic<bool> destroyed{false};
  bool destroyed_when_delivered = false;
  Event done;
  auto captured = std::make_unique<Flag>(Flag{&destroyed});  // move-only fn
  cache.start_thread_soon([flag = std::move(captured)] {},
                          [&](std::exception_ptr) {
                            destroyed_when_delivered = destroyed.load();
                            done.count_down();
                          });
  ASSERT_TRUE(done.wait());
  EXPECT_TRUE(destroyed_when_delivered);
}

TEST(ThreadCache, StartsANewWorkerWheneverNoneIsIdle) {
  ThreadCache cache;
  const auto ids = run_at_once(cache, 4);
  EXPECT_EQ(std::set(ids.begin(), ids.end()).size(), 4u);
  EXPECT_EQ(cache.total_workers(), 4u);
  EXPECT_EQ(cache.idle_workers(), 4u);
}

TEST(ThreadCache, ReusesTheMostRecentlyIdledWorkerFirst) {
  constexpr std::size_t n = 4;
  ThreadCache cache;
  std::array<std::thread::id, n> ids;
  std::array<Event, n> release, delivered;
  CountDown all_running(n);
  for (std::size_t i = 0; i < n; ++i) {
    cache.start_thread_soon(
        [&, i] {
          ids[i] = std::this_thread::get_id();
          all_running.count_down();
          EXPECT_TRUE(release[i].wait());
        },
        [&, i](std::exception_ptr) { delivered[i].count_down(); });
  }
  ASSERT_TRUE(all_running.wait());
  // Worker i is idle before its deliver runs, so this idles them in order.
  for (std::size_t i = 0; i < n; ++i) {
    release[i].count_down();
    ASSERT_TRUE(delivered[i].wait());
  }
  ASSERT_EQ(cache.idle_workers(), n);

  // Each job below stays busy, so each takes the next worker off the stack.
  Event finish;
  CountDown all_finished(n);
  for (std::size_t k = 0; k < n; ++k) {
    std::thread::id got;
    Event started;
    cache.start_thread_soon(
        [&] {
          got = std::this_thread::get_id();
          started.count_down();
          EXPECT_TRUE(finish.wait());
        },
        [&](std::exception_ptr) { all_finished.count_down(); });
    ASSERT_TRUE(started.wait());
    EXPECT_EQ(got, ids[n - 1 - k]) << "job " << k;
  }
  finish.count_down();
  ASSERT_TRUE(all_finished.wait());
  EXPECT_EQ(cache.total_workers(), n);
}

TEST(ThreadCache, AChainOfJobsEachSubmittedFromTheLastOnesDeliverRunsOnOneThread) {
  ThreadCache cache;
  run_at_once(cache, 5);
  ASSERT_EQ(cache.idle_workers(), 5u);

  std::mutex mutex;
  std::set<std::thread::id> seen;
  auto record = [&] {
    std::lock_guard lock(mutex);
    seen.insert(std::this_thread::get_id());
  };
  Event done;
  std::function<void(int)> submit = [&](int left) {
    cache.start_thread_soon(record, [&, left](std::exception_ptr) {
      record();
      if (left == 0) {
        done.count_down();
      } else {
        submit(left - 1);
      }
    });
  };
  submit(4);
  ASSERT_TRUE(done.wait());
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(cache.total_workers(), 5u);
}

TEST(ThreadCache, WithoutSpinningASleepingWorkerIsWokenForEachJob) {
  ThreadCache cache(ThreadCacheOptions{.spin = 0ns});
  std::set<std::thread::id> seen;
  for (int i = 0; i < 100; ++i) {
    Event done;
    cache.start_thread_soon([&] { seen.insert(std::this_thread::get_id()); },
                            [&](std::exception_ptr) { done.count_down(); });
    ASSERT_TRUE(done.wait()) << "job " << i;
  }
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(cache.total_workers(), 1u);
}

TEST(ThreadCache, IdleWorkersExitAfterTheIdleTimeoutLeavingNoThreadsOrFds) {
  const std::size_t threads_before = thread_count();
  const std::size_t fds_before = directory_entries("/proc/self/fd");
  ThreadCache cache(ThreadCacheOptions{.idle_timeout = 10ms});
  run_at_once(cache, 3);
  EXPECT_TRUE(eventually([&] { return cache.total_workers() == 0; }, upper_bound));
  EXPECT_EQ(cache.idle_workers(), 0u);
  EXPECT_TRUE(eventually([&] { return thread_count() <= threads_before; }, upper_bound));
  EXPECT_EQ(directory_entries("/proc/self/fd"), fds_before);

  // The cache still works and starts a fresh worker.
  Event done;
  cache.start_thread_soon([] {}, [&](std::exception_ptr) { done.count_down(); });
  EXPECT_TRUE(done.wait());
}

// trio's test_race_between_idle_exit_and_job_assignment, as a hammer: with a
// 1 µs idle timeout and no spinning, workers time out while submitters are
// popping them, so a worker often finds it was taken off the idle stack just
// as it meant to exit. Every job must still run and be delivered exactly once.
TEST(ThreadCache, EveryJobIsDeliveredOnceWhileIdleWorkersRaceToExit) {
  constexpr int submitters = 4;
  constexpr int jobs_each = 1000;
  const std::size_t threads_before = thread_count();
  ThreadCache cache(ThreadCacheOptions{.idle_timeout = 1us, .spin = 0ns});
  std::vector<std::atomic<int>> ran(submitters * jobs_each);
  std::vector<std::atomic<int>> delivered(submitters * jobs_each);
  CountDown all_delivered(submitters * jobs_each);
  std::vector<std::thread> threads;
  for (int s = 0; s < submitters; ++s) {
    threads.emplace_back([&, s] {
      for (int j = 0; j < jobs_each; ++j) {
        const int job = s * jobs_each + j;
        cache.start_thread_soon([&, job] { ran[job].fetch_add(1); },
                                [&, job](std::exception_ptr) {
                                  delivered[job].fetch_add(1);
                                  all_delivered.count_down();
                                });
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_TRUE(all_delivered.wait());
  for (int job = 0; job < submitters * jobs_each; ++job) {
    EXPECT_EQ(ran[job].load(), 1) << "job " << job;
    EXPECT_EQ(delivered[job].load(), 1) << "job " << job;
  }
  EXPECT_TRUE(eventually([&] { return cache.total_workers() == 0; }, upper_bound));
  EXPECT_TRUE(eventually([&] { return thread_count() <= threads_before; }, upper_bound));
}

TEST(ThreadCache, AnExceptionFromDeliverIsReportedAndTheWorkerIsReused) {
  ThreadCache cache;
  std::thread::id first, second;
  Event first_delivered, second_delivered;
  testing::internal::CaptureStderr();
  cache.start_thread_soon([] {},
                          [&](std::exception_ptr) {
                            first = std::this_thread::get_id();
                            first_delivered.count_down();
                            throw std::runtime_error("don't do this");
                          });
  ASSERT_TRUE(first_delivered.wait());
  // Runs on the same worker, so only after the report has been printed.
  cache.start_thread_soon([] {},
                          [&](std::exception_ptr) {
                            second = std::this_thread::get_id();
                            second_delivered.count_down();
                          });
  ASSERT_TRUE(second_delivered.wait());
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(first, second);
  EXPECT_EQ(cache.total_workers(), 1u);
  EXPECT_NE(err.find("weft: exception while delivering the result of a cached thread's job: "
                     "don't do this"),
            std::string::npos)
      << err;
}

TEST(ThreadCache, ConcurrentSubmissionsFromEightThreadsAllRunAndDeliverOnce) {
  constexpr int submitters = 8;
  constexpr int jobs_each = 500;
  ThreadCache cache;
  std::atomic<int> ran{0}, delivered_ok{0};
  CountDown all_delivered(submitters * jobs_each);
  std::vector<std::thread> threads;
  for (int s = 0; s < submitters; ++s) {
    threads.emplace_back([&] {
      for (int j = 0; j < jobs_each; ++j) {
        cache.start_thread_soon([&] { ran.fetch_add(1); },
                                [&](std::exception_ptr error) {
                                  if (!error) delivered_ok.fetch_add(1);
                                  all_delivered.count_down();
                                });
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_TRUE(all_delivered.wait());
  EXPECT_EQ(ran.load(), submitters * jobs_each);
  EXPECT_EQ(delivered_ok.load(), submitters * jobs_each);
  EXPECT_EQ(cache.idle_workers(), cache.total_workers());
}

TEST(ThreadCache, DestructionStopsIdleWorkersAndLeavesNoThreads) {
  const std::size_t threads_before = thread_count();
  {
    ThreadCache cache(ThreadCacheOptions{.idle_timeout = 1h});  // they only exit when told
    run_at_once(cache, 4);
    ASSERT_EQ(cache.idle_workers(), 4u);
  }
  EXPECT_TRUE(eventually([&] { return thread_count() <= threads_before; }, upper_bound));
}

TEST(ThreadCache, DestructionDoesNotWaitForABusyWorkerWhichStillDeliversAndExits) {
  const std::size_t threads_before = thread_count();
  auto cache = std::make_unique<ThreadCache>(ThreadCacheOptions{.idle_timeout = 1h});
  run_at_once(*cache, 2);  // two idle workers too
  Event started, release, delivered;
  cache->start_thread_soon(
      [&] {
        started.count_down();
        EXPECT_TRUE(release.wait());
      },
      [&](std::exception_ptr) { delivered.count_down(); });
  ASSERT_TRUE(started.wait());

  auto destroyed = std::async(std::launch::async, [&] { cache.reset(); });
  ASSERT_EQ(destroyed.wait_for(upper_bound), std::future_status::ready);
  release.count_down();
  EXPECT_TRUE(delivered.wait());
  EXPECT_TRUE(eventually([&] { return thread_count() <= threads_before; }, upper_bound));
}

TEST(ThreadCache, StartThreadSoonThrowsLogicErrorWhileTheCacheIsBeingDestroyed) {
  std::optional<ThreadCache> storage(std::in_place, ThreadCacheOptions{.idle_timeout = 1h});
  ThreadCache* cache = &*storage;
  Event release;
  bool threw_logic_error = false;
  Event delivered;
  cache->start_thread_soon(
      [&] {
        EXPECT_TRUE(release.wait());
        try {
          cache->start_thread_soon([] {}, [](std::exception_ptr) {});
        } catch (const std::logic_error&) {
          threw_logic_error = true;
        }
      },
      [&](std::exception_ptr) { delivered.count_down(); });
  run_at_once(*cache, 1);  // one idle worker besides the busy one
  ASSERT_EQ(cache->total_workers(), 2u);

  std::thread destroyer([&] { storage.reset(); });
  // The destructor marks the cache closing before it tells the idle worker to
  // exit, and it waits for the busy one (up to a second) while we call it.
  EXPECT_TRUE(eventually([&] { return cache->total_workers() == 1; }, upper_bound));
  release.count_down();
  destroyer.join();
  EXPECT_TRUE(delivered.wait());
  EXPECT_TRUE(threw_logic_error);
}

TEST(ThreadCache, AForkedChildStartsWithNoWorkersAndCanUseTheGlobalCache) {
  ThreadCache& global = ThreadCache::global();
  Event warmed;
  global.start_thread_soon([] {}, [&](std::exception_ptr) { warmed.count_down(); });
  ASSERT_TRUE(warmed.wait());
  ASSERT_GE(global.idle_workers(), 1u);

  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (global.total_workers() != 0 || global.idle_workers() != 0) ::_exit(2);
    // TSan kills a child of a multi-threaded parent that starts a thread.
    if (under_tsan) ::_exit(0);
    Event ran;
    global.start_thread_soon([] {},
                             [&](std::exception_ptr error) {
                               if (!error) ran.count_down();
                             });
    ::_exit(ran.wait() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: the child saw the parent's workers; 1: no job ran";
}

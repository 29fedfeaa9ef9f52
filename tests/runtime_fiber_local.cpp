// FiberLocal<T>: a value per fiber (per thread outside fibers), made on first
// use and destroyed on the fiber's hub when it ends, killed or not; and a
// FiberLocal that dies before the fibers holding its values.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// Records where and when each value was destroyed.
struct Tally {
  std::atomic<int> made{0};
  std::atomic<int> destroyed{0};
  std::mutex mutex;
  std::vector<std::uint64_t> destroyed_in_fiber;  // this_fiber::id() in the destructor
  std::vector<std::thread::id> destroyed_on_thread;
  std::vector<std::string> destroyed_names;
};

struct Counted {
  Tally* tally;
  std::string name;
  explicit Counted(Tally& t, std::string n = {}) : tally(&t), name(std::move(n)) { ++tally->made; }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() {
    std::lock_guard lock(tally->mutex);
    tally->destroyed_in_fiber.push_back(weft::this_fiber::id());
    tally->destroyed_on_thread.push_back(std::this_thread::get_id());
    tally->destroyed_names.push_back(name);
    ++tally->destroyed;
  }
};

}  // namespace

TEST(FiberLocal, EachFiberHasItsOwnValue) {
  weft::FiberLocal<int> local;
  weft::run([&] {
    *local = -1;
    std::vector<weft::GreenThread<int>> fibers;
    for (int i = 0; i < 5; ++i) {
      fibers.push_back(weft::spawn([&local, i] {
        EXPECT_EQ(*local, 0);  // value-initialized, not another fiber's
        *local = i;
        for (int round = 0; round < 3; ++round) {
          weft::yield();
          EXPECT_EQ(local.get(), i);
        }
        return *local;
      }));
    }
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(fibers[i].wait(), i);
    EXPECT_EQ(*local, -1);
  });
}

TEST(FiberLocal, TheFactoryMakesEachFibersValueOnFirstUse) {
  std::atomic<int> calls{0};
  weft::FiberLocal<std::string> local([&] {
    ++calls;
    return "fiber " + std::to_string(weft::this_fiber::id());
  });
  weft::run([&] {
    auto idle = weft::spawn([&] {
      EXPECT_FALSE(local.has_value());
      weft::yield();
    });
    auto user = weft::spawn([&] {
      EXPECT_FALSE(local.has_value());
      EXPECT_EQ(local->size(), local.get().size());
      EXPECT_TRUE(local.has_value());
      return *local;
    });
    idle.wait();
    EXPECT_EQ(user.wait(), "fiber " + std::to_string(user.id()));
    EXPECT_EQ(calls.load(), 1);  // once, for the fiber that used it
  });
}

TEST(FiberLocal, AFactoryThatThrowsStoresNothing) {
  int attempts = 0;
  weft::FiberLocal<int> local([&]() -> int {
    if (++attempts == 1) throw std::runtime_error("not yet");
    return 7;
  });
  weft::run([&] {
    EXPECT_THROW(local.get(), std::runtime_error);
    EXPECT_FALSE(local.has_value());
    EXPECT_EQ(local.get(), 7);
  });
}

TEST(FiberLocal, AnEmptyFactoryIsRejected) {
  EXPECT_THROW(weft::FiberLocal<int>(std::function<int()>()), std::invalid_argument);
}

TEST(FiberLocal, ATypeWithoutADefaultConstructorNeedsAFactory) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally, "made"); });
  weft::run([&] { weft::spawn([&] { EXPECT_EQ(local->name, "made"); }).wait(); });
  EXPECT_EQ(tally.made.load(), 1);
  EXPECT_EQ(tally.destroyed.load(), 1);
}

TEST(FiberLocal, AValueIsDestroyedInItsFiberWhenTheFiberEndsBeforeWaitReturns) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally); });
  weft::run([&] {
    auto fiber = weft::spawn([&] {
      local.get();
      weft::yield();
      EXPECT_EQ(tally.destroyed.load(), 0);
    });
    fiber.wait();
    EXPECT_EQ(tally.destroyed.load(), 1);
    ASSERT_EQ(tally.destroyed_in_fiber.size(), 1u);
    EXPECT_EQ(tally.destroyed_in_fiber[0], fiber.id());  // on the ending fiber
  });
}

TEST(FiberLocal, AValueOutlivesTheCallableAndItsCaptures) {
  // As a thread's thread_local outlives its function: the callable's captures
  // may still use the fiber's values in their destructors.
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally); });
  struct UsesLocalWhenDestroyed {
    weft::FiberLocal<Counted>* local;
    bool* seen_alive;
    ~UsesLocalWhenDestroyed() {
      if (local) *seen_alive = local->has_value();
    }
  };
  bool seen_alive = false;
  weft::run([&] {
    auto guard = std::make_shared<UsesLocalWhenDestroyed>(nullptr, &seen_alive);
    auto fiber = weft::spawn([&tally, &local, guard = std::move(guard)] {
      guard->local = &local;
      local.get();
      EXPECT_EQ(tally.destroyed.load(), 0);
    });
    fiber.wait();
  });
  EXPECT_TRUE(seen_alive);
  EXPECT_EQ(tally.destroyed.load(), 1);
}

TEST(FiberLocal, AKilledFibersValueIsDestroyedAfterItUnwound) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally, "value"); });
  weft::run([&] {
    auto fiber = weft::spawn([&] {
      local.get();
      Counted body_scope(tally, "body");  // unwinds before the fiber's values go
      weft::sleep(1h);
    });
    weft::yield();
    fiber.kill();
    EXPECT_THROW(fiber.wait(), weft::FiberExit);
    EXPECT_EQ(tally.destroyed_names, (std::vector<std::string>{"body", "value"}));
    EXPECT_EQ(tally.destroyed_in_fiber[1], fiber.id());
  });
}

TEST(FiberLocal, AFiberKilledBeforeItStartedMakesNoValue) {
  std::atomic<int> calls{0};
  weft::FiberLocal<int> local([&] { return ++calls; });
  weft::run([&] {
    auto never = weft::spawn([&] { return local.get(); });
    never.kill();
    EXPECT_THROW(never.wait(), weft::FiberExit);
    weft::spawn_n([&] { local.get(); });  // killed too, by the end of run
  });
  EXPECT_EQ(calls.load(), 0);
}

TEST(FiberLocal, FibersStillAliveWhenTheHubEndsHaveTheirValuesDestroyed) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally); });
  weft::run([&] {
    for (int i = 0; i < 3; ++i) {
      weft::spawn_n([&] {
        local.get();
        weft::sleep(1h);
      });
    }
    weft::yield();
  });
  EXPECT_EQ(tally.made.load(), 3);
  EXPECT_EQ(tally.destroyed.load(), 3);
}

TEST(FiberLocal, ValuesGoNewestFirstAndMayUseOlderOnes) {
  std::vector<std::string> order;
  weft::FiberLocal<std::string> context([] { return std::string("ctx"); });
  struct Logger {
    weft::FiberLocal<std::string>* context;
    std::vector<std::string>* order;
    ~Logger() { order->push_back("logger sees " + context->get()); }
  };
  struct Named {
    std::string name;
    std::vector<std::string>* order;
    ~Named() { order->push_back(name); }
  };
  weft::FiberLocal<Logger> logger([&] { return Logger{&context, &order}; });
  weft::FiberLocal<Named> last([&] { return Named{"last", &order}; });
  weft::run([&] {
    weft::spawn([&] {
      context.get() = "request 9";
      logger.get();
      last.get();
    }).wait();
  });
  EXPECT_EQ(order, (std::vector<std::string>{"last", "logger sees request 9"}));
}

TEST(FiberLocal, ValuesMadeWhileValuesAreDestroyedGoToo) {
  Tally tally;
  weft::FiberLocal<Counted> late([&] { return Counted(tally, "late"); });
  struct MakesLate {
    weft::FiberLocal<Counted>* late;
    ~MakesLate() { late->get(); }
  };
  weft::FiberLocal<MakesLate> early([&] { return MakesLate{&late}; });
  weft::run([&] { weft::spawn([&] { early.get(); }).wait(); });
  EXPECT_EQ(tally.made.load(), 1);
  EXPECT_EQ(tally.destroyed.load(), 1);
}

TEST(FiberLocal, LinkCallbacksRunAfterTheValuesWentAndWhatTheyMakeGoesToo) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally); });
  weft::run([&] {
    auto fiber = weft::spawn([&] {
      local.get();
      weft::yield();
    });
    std::uint64_t linked_in = 0;
    fiber.link([&] {
      linked_in = weft::this_fiber::id();
      EXPECT_EQ(tally.destroyed.load(), 1);  // the body's value went first
      EXPECT_FALSE(local.has_value());
      local.get();  // in the dying fiber: a new value, which must go too
    });
    fiber.wait();
    EXPECT_EQ(linked_in, fiber.id());
    // wait() returned on this hub, so the fiber has left: its late value too.
    EXPECT_EQ(tally.made.load(), 2);
    EXPECT_EQ(tally.destroyed.load(), 2);
    EXPECT_EQ(tally.destroyed_in_fiber, (std::vector<std::uint64_t>{fiber.id(), fiber.id()}));
  });
}

TEST(FiberLocal, ResetDestroysTheCallersValueOnly) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally); });
  weft::run([&] {
    weft::Event<> go;
    auto other = weft::spawn([&] {
      local.get();
      go.wait();
      EXPECT_TRUE(local.has_value());
    });
    weft::yield();
    local.get();
    local.reset();
    EXPECT_FALSE(local.has_value());
    EXPECT_EQ(tally.destroyed.load(), 1);
    local.reset();  // nothing left: no-op
    local.get();
    EXPECT_EQ(tally.made.load(), 3);
    go.send();
    other.wait();
  });
  EXPECT_EQ(tally.destroyed.load(), 3);
}

TEST(FiberLocal, OutsideFibersEachThreadHasItsOwnValueUntilItExits) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally, "thread"); });
  local->name = "main thread";
  std::thread([&] {
    EXPECT_FALSE(local.has_value());
    local->name = "other thread";
  }).join();
  EXPECT_EQ(tally.destroyed.load(), 1);  // at that thread's exit
  EXPECT_EQ(tally.destroyed_names[0], "other thread");
  EXPECT_EQ(local->name, "main thread");

  // A hub's thread outside its fibers is that thread: a posted closure shares
  // the thread's value, a fiber has its own.
  weft::Hub hub;
  std::string in_post;
  hub.post([&] { in_post = local->name; });
  std::string in_fiber;
  hub.spawn([&] { in_fiber = local->name; });
  hub.run();
  EXPECT_EQ(in_post, "main thread");
  EXPECT_EQ(in_fiber, "thread");
  local.reset();
  EXPECT_EQ(tally.destroyed.load(), 3);
}

TEST(FiberLocal, FibersOnEveryHubOfARuntimeKeepTheirOwnValues) {
  Tally tally;
  weft::FiberLocal<Counted> local([&] { return Counted(tally); });
  constexpr int per_hub = 50;
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = 4});
  std::vector<weft::GreenThread<std::thread::id>> fibers;
  for (std::size_t hub = 0; hub < runtime.hub_count(); ++hub) {
    for (int i = 0; i < per_hub; ++i) {
      fibers.push_back(runtime.spawn_on(hub, [&local] {
        const std::string mine = std::to_string(weft::this_fiber::id());
        local->name = mine;
        for (int round = 0; round < 5; ++round) {
          weft::sleep(1ms);
          EXPECT_EQ(local->name, mine);
        }
        return std::this_thread::get_id();
      }));
    }
  }
  std::set<std::thread::id> hub_threads;
  std::set<std::pair<std::uint64_t, std::thread::id>> expected;
  runtime.run([&] {
    for (auto& fiber : fibers) {
      const std::thread::id thread = fiber.wait();
      hub_threads.insert(thread);
      expected.insert({fiber.id(), thread});
      // Gone before wait() returned, though this waiter runs on another hub
      // (or on the same one) than the fiber did.
      std::lock_guard lock(tally.mutex);
      EXPECT_NE(
          std::find(tally.destroyed_in_fiber.begin(), tally.destroyed_in_fiber.end(), fiber.id()),
          tally.destroyed_in_fiber.end());
    }
  });
  EXPECT_EQ(hub_threads.size(), runtime.hub_count());
  EXPECT_EQ(tally.destroyed.load(), static_cast<int>(fibers.size()));
  // Every value went in its own fiber, on that fiber's hub thread.
  std::set<std::pair<std::uint64_t, std::thread::id>> destroyed;
  for (std::size_t i = 0; i < tally.destroyed_in_fiber.size(); ++i)
    destroyed.insert({tally.destroyed_in_fiber[i], tally.destroyed_on_thread[i]});
  EXPECT_EQ(destroyed, expected);
}

TEST(FiberLocal, AFiberLocalDestroyedBeforeItsFibersEndLeaksNothing) {
  Tally tally;
  auto local = std::make_unique<weft::FiberLocal<Counted>>([&] { return Counted(tally, "old"); });
  weft::run([&] {
    weft::Event<> go;
    std::vector<weft::GreenThread<void>> fibers;
    for (int i = 0; i < 4; ++i) {
      fibers.push_back(weft::spawn([&, l = local.get()] {
        l->get();
        go.wait();
      }));
    }
    weft::yield();
    local.reset();  // four values outlive it, on four suspended fibers
    EXPECT_EQ(tally.destroyed.load(), 0);
    go.send();
    for (auto& fiber : fibers)
      fiber.wait();
    EXPECT_EQ(tally.destroyed.load(), 4);  // each as its fiber ended
  });
}

TEST(FiberLocal, ANewFiberLocalInAReusedSlotStartsFreshAndDisposesOfTheOldValue) {
  Tally tally;
  auto old_local =
      std::make_unique<weft::FiberLocal<Counted>>([&] { return Counted(tally, "old"); });
  weft::run([&] {
    weft::Event<> replaced;
    weft::FiberLocal<int>* new_local = nullptr;
    auto fiber = weft::spawn([&] {
      old_local->get();
      replaced.wait();
      EXPECT_FALSE(new_local->has_value());  // the old value is not the new one's
      EXPECT_EQ(new_local->get(), 0);
      // The slot freed last is reused first: storing the new value disposed
      // of the old one, on this fiber, without waiting for it to end.
      EXPECT_EQ(tally.destroyed.load(), 1);
      EXPECT_EQ(tally.destroyed_in_fiber[0], weft::this_fiber::id());
    });
    weft::yield();
    old_local.reset();
    weft::FiberLocal<int> fresh;  // likely in the slot just freed
    new_local = &fresh;
    replaced.send();
    fiber.wait();
  });
  EXPECT_EQ(tally.destroyed.load(), 1);
}

TEST(FiberLocal, ManyFiberLocalsAndFibersComeAndGo) {
  // Slots are reused across generations; under ASan this checks nothing leaks.
  Tally tally;
  weft::run([&] {
    for (int round = 0; round < 20; ++round) {
      std::vector<std::unique_ptr<weft::FiberLocal<Counted>>> locals;
      for (int i = 0; i < 8; ++i)
        locals.push_back(
            std::make_unique<weft::FiberLocal<Counted>>([&] { return Counted(tally); }));
      weft::Event<> go;
      for (int f = 0; f < 8; ++f) {
        weft::spawn_n([&, f, snapshot = std::vector<weft::FiberLocal<Counted>*>()]() mutable {
          for (auto& local : locals)
            snapshot.push_back(local.get());
          for (int i = 0; i <= f; ++i)
            snapshot[i]->get();
          go.wait();
        });
      }
      weft::yield();
      locals.erase(locals.begin(), locals.begin() + 4);  // half die before their fibers
      go.send();
      weft::yield();
    }
  });
  EXPECT_EQ(tally.made.load(), tally.destroyed.load());
  EXPECT_GT(tally.made.load(), 0);
}

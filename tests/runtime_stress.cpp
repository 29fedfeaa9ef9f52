// Scheduler stress test: many short episodes, each a random program of fibers
// that spawn, sleep, wait for, kill, cancel and link to each other, put and
// get items on shared queues, call to_thread::run_sync and nest Timeouts,
// checked against a simple model once the episode is over:
//
//   - every fiber ends exactly once: its own link runs once, its body is
//     entered and left at most once (never if it was killed before it
//     started), and what wait() gives is what the program allows: its value
//     after it returned, the error it threw, FiberExit or the kill's error
//     after a kill (or a cancel before it started, or the end of the run),
//     TimeoutError from its own outer Timeout;
//   - every link callback runs exactly once, or never if unlink() said it
//     removed it;
//   - every item put is got at most once, and, counting the items left in the
//     queues at the end, exactly once; an item whose put failed is never got;
//   - every run_sync function runs at most once, exactly once when run_sync
//     returned, never when a call that is not abandoned threw an interrupt,
//     and every limiter token comes back;
//   - no fiber is left (live_fibers, and the episode's run returns), no fd is
//     left open, and every callable handed to the runtime (fiber bodies, link
//     callbacks, run_sync functions) is destroyed once the handles are gone.
//
// Nothing here depends on timing: sleeps and Timeouts only change which
// outcome happens, never whether it is allowed.
//
// Environment:
//   WEFT_STRESS_SEED     the seed (default: from the clock); printed at the
//                        start and with every failure.
//   WEFT_STRESS_SECONDS  how long the whole binary runs (default 15, split
//                        between the two tests); raise it for a long run.
//   WEFT_STRESS_EPISODE  run only this episode of the seed (a replay).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------------------
// Configuration

std::optional<std::uint64_t> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 0);
}

struct StressConfig {
  std::uint64_t seed;
  std::chrono::milliseconds budget;  // for the whole binary
  std::optional<std::uint64_t> only_episode;
};

const StressConfig& config() {
  static const StressConfig value = [] {
    StressConfig c{};
    const auto seed = env_number("WEFT_STRESS_SEED");
    c.seed = seed ? *seed
                  : static_cast<std::uint64_t>(
                        std::chrono::system_clock::now().time_since_epoch().count());
    // 15 s by default: scripts/test.sh runs every test binary four times
    // (io_uring and epoll, plain and under ASan+UBSan), so the stress test
    // costs about 60 s of a CI run in all, and on two cores the other tests
    // keep running beside it. WEFT_STRESS_SECONDS=600 is a long run.
    double seconds = 15;
    if (const char* text = std::getenv("WEFT_STRESS_SECONDS"); text != nullptr && *text != '\0')
      seconds = std::strtod(text, nullptr);
    c.budget = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
    c.only_episode = env_number("WEFT_STRESS_EPISODE");
    std::printf("[ stress   ] WEFT_STRESS_SEED=%llu, %.1f s in all\n",
                static_cast<unsigned long long>(c.seed), seconds);
    std::fflush(stdout);
    return c;
  }();
  return value;
}

// WEFT_STRESS_TRACE=1: every operation on stderr, for replaying one episode.
bool tracing() {
  static const bool on = env_number("WEFT_STRESS_TRACE").value_or(0) != 0;
  return on;
}

template <class... Args>
void trace(const char* format, Args... args) {
  if (!tracing()) return;
  std::fprintf(stderr, format, args...);
  std::fputc('\n', stderr);
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string replay_line(const char* test, std::uint64_t episode) {
  return "replay: WEFT_STRESS_SEED=" + std::to_string(config().seed) +
         " WEFT_STRESS_EPISODE=" + std::to_string(episode) + " " +
         std::filesystem::read_symlink("/proc/self/exe").string() +
         " --gtest_filter=RuntimeStress." + test;
}

// Aborts the process, with the seed and episode, if an episode does not end
// within `limit`: a hang becomes a failure that can be replayed. `on_hang`
// prints what the episode knows first.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    changed_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void arm(std::string what, std::function<void()> on_hang) {
    std::lock_guard lock(mutex_);
    what_ = std::move(what);
    on_hang_ = std::move(on_hang);
    deadline_ = std::chrono::steady_clock::now() + limit_;
    armed_ = true;
    changed_.notify_one();
  }
  void disarm() {
    std::lock_guard lock(mutex_);
    armed_ = false;
    on_hang_ = nullptr;
    changed_.notify_one();
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
      if (!armed_) {
        changed_.wait(lock);
        continue;
      }
      if (changed_.wait_until(lock, deadline_) == std::cv_status::timeout && armed_ &&
          std::chrono::steady_clock::now() >= deadline_) {
        std::fprintf(stderr, "runtime_stress: episode did not end within %lld s (hang): %s\n",
                     static_cast<long long>(limit_.count()), what_.c_str());
        std::fflush(stderr);
        if (on_hang_) on_hang_();
        std::fflush(stderr);
        std::abort();
      }
    }
  }

  std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool armed_ = false;
  bool quit_ = false;
  std::string what_;
  std::function<void()> on_hang_;
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;  // last: starts once the rest is ready
};

// ---------------------------------------------------------------------------
// Programs

struct ProgramError {  // thrown by a fiber's own body at its end
  std::size_t fiber;
};
struct KillError {  // thrown into a fiber by kill(error) / cancel(error)
  std::size_t victim;
};
struct WorkerError {  // thrown by a run_sync function
  std::size_t call;
};

enum class OpKind : std::uint8_t {
  spawn,
  sleep,
  wait,
  kill,
  put,
  get,
  run_sync,
  link,
  unlink,
  timeout,
};

struct Op {
  OpKind kind;
  std::uint32_t a = 0, b = 0, c = 0;  // random parameters, read per kind
  std::vector<Op> body;               // OpKind::timeout: what runs under it
};

enum class Ending : std::uint8_t {
  value,         // returns its expected value
  throws,        // throws ProgramError at the end
  catches_exit,  // catches FiberExit around its ops and returns its value
};

struct Program {
  Ending ending = Ending::value;
  std::optional<std::chrono::microseconds> body_timeout;  // never caught
  bool yield_after_catch = false;
  std::vector<Op> ops;
};

constexpr std::size_t max_ops_per_fiber = 14;  // nested ops included

std::vector<Op> make_ops(std::mt19937_64& rng, int depth, std::size_t& left) {
  std::vector<Op> ops;
  const std::size_t count = 1 + rng() % (depth == 0 ? 10 : 3);
  for (std::size_t i = 0; i < count && left > 0; ++i) {
    --left;
    Op op{};
    op.a = static_cast<std::uint32_t>(rng());
    op.b = static_cast<std::uint32_t>(rng());
    op.c = static_cast<std::uint32_t>(rng());
    // Weights: spawn 7, sleep 14, wait 12, kill 7, put 14, get 14, run_sync 8,
    // link 8, unlink 3, timeout 10.
    std::uint64_t pick = rng() % 97;
    constexpr std::pair<OpKind, int> weights[] = {
        {OpKind::spawn, 7},  {OpKind::sleep, 14},  {OpKind::wait, 12},    {OpKind::kill, 7},
        {OpKind::put, 14},   {OpKind::get, 14},    {OpKind::run_sync, 8}, {OpKind::link, 8},
        {OpKind::unlink, 3}, {OpKind::timeout, 10}};
    for (const auto& [kind, weight] : weights) {
      if (pick < static_cast<std::uint64_t>(weight)) {
        op.kind = kind;
        break;
      }
      pick -= weight;
    }
    if (op.kind == OpKind::timeout) {
      if (depth >= 2 || left == 0) {
        op.kind = OpKind::sleep;
      } else {
        op.body = make_ops(rng, depth + 1, left);
      }
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

Program make_program(std::mt19937_64& rng) {
  Program program;
  switch (rng() % 6) {
    case 0:
      program.ending = Ending::throws;
      break;
    case 1:
      program.ending = Ending::catches_exit;
      break;
    default:
      program.ending = Ending::value;
  }
  if (rng() % 4 == 0) program.body_timeout = std::chrono::microseconds(rng() % 5000);
  program.yield_after_catch = rng() % 2 == 0;
  std::size_t left = max_ops_per_fiber;
  program.ops = make_ops(rng, 0, left);
  return program;
}

// ---------------------------------------------------------------------------
// The model

struct Episode;

// Counts the callables the runtime holds: each captures one, and once every
// handle is dropped they must all have been destroyed.
class LifeToken {
 public:
  explicit LifeToken(std::atomic<long>& live) : live_(&live) { live_->fetch_add(1); }
  LifeToken(const LifeToken& other) : live_(other.live_) { live_->fetch_add(1); }
  LifeToken& operator=(const LifeToken&) = delete;
  ~LifeToken() { live_->fetch_sub(1); }

 private:
  std::atomic<long>* live_;
};

struct FiberRecord {
  // Written by the spawner before `published`; read-only after.
  weft::GreenThread<int> handle;
  Program program;
  std::mt19937_64 rng;  // the fiber's own, for the programs of its children
  std::size_t index = 0;
  int expected = 0;
  std::atomic<bool> published{false};

  std::atomic<int> kills{0};        // kill() (FiberExit), counted before the call
  std::atomic<int> error_kills{0};  // kill(KillError) and cancel(KillError)
  std::atomic<int> cancels{0};      // cancel()
  std::atomic<int> entered{0};
  std::atomic<int> left{0};
  std::atomic<int> returned{0};
  std::atomic<int> threw{0};
  std::atomic<int> body_timed_out{0};
  std::atomic<int> caught_exit{0};
  std::atomic<int> own_link_runs{0};
  std::atomic<bool> ended_in_teardown{false};
  std::atomic<int> last_op{-1};  // for the report of a hang
};

struct LinkRecord {
  std::atomic<int> runs{0};
  std::atomic<int> expected{1};  // 0 once unlink() said it removed it
};

struct ItemRecord {
  std::atomic<int> put_ok{0};
  std::atomic<int> got{0};
  std::atomic<int> drained{0};
};

struct CallRecord {
  std::atomic<int> ran{0};
  std::atomic<int> abandon{0};
  std::atomic<int> interrupted{0};  // run_sync threw a kill or Timeout
};

// Reserves the next of `capacity` slots; nullopt once they are used up.
std::optional<std::size_t> reserve(std::atomic<std::size_t>& next, std::size_t capacity) {
  std::size_t index = next.load();
  while (index < capacity) {
    if (next.compare_exchange_weak(index, index + 1)) return index;
  }
  return std::nullopt;
}

// What the episodes did, to show the run exercised every outcome.
struct Tally {
  std::atomic<long> fibers{0}, values{0}, exits{0}, kill_errors{0}, program_errors{0}, timeouts{0},
      never_started{0}, caught_exits{0}, items_got{0}, items_drained{0}, links{0}, unlinked{0},
      calls{0}, calls_interrupted{0}, calls_abandoned{0}, scope_timeouts{0};
  std::string line() const {
    auto n = [](const std::atomic<long>& v) { return std::to_string(v.load()); };
    return "fibers " + n(fibers) + " (value " + n(values) + ", FiberExit " + n(exits) +
           ", KillError " + n(kill_errors) + ", ProgramError " + n(program_errors) +
           ", TimeoutError " + n(timeouts) + "; never started " + n(never_started) +
           ", caught FiberExit " + n(caught_exits) + "), Timeout scopes fired " +
           n(scope_timeouts) + ", items got " + n(items_got) + " + left " + n(items_drained) +
           ", links " + n(links) + " (unlinked " + n(unlinked) + "), run_sync " + n(calls) +
           " (interrupted " + n(calls_interrupted) + ", of which abandoned " + n(calls_abandoned) +
           ")";
  }
};

struct Episode {
  Episode(std::uint64_t seed, weft::Runtime* rt, Tally& counts)
      : tally(counts),
        rng(seed),
        runtime(rt),
        max_fibers(rng() % 2 == 0 ? 10 + rng() % 50 : 60 + rng() % 240),
        fibers(new FiberRecord[max_fibers]),
        max_items(max_fibers * max_ops_per_fiber),
        items(new ItemRecord[max_items]),
        max_links(max_fibers * (max_ops_per_fiber + 1)),
        links(new LinkRecord[max_links]),
        max_calls(max_fibers * max_ops_per_fiber),
        calls(new CallRecord[max_calls]),
        unbounded(0),
        bounded(1 + rng() % 4),
        limiter(1 + rng() % 4) {}

  void violation(std::string what) {
    std::lock_guard lock(mutex);
    if (violations.size() < 20) violations.push_back(std::move(what));
  }

  Tally& tally;
  std::mt19937_64 rng;     // main's
  weft::Runtime* runtime;  // null: one hub (weft::run)

  std::size_t max_fibers;
  std::unique_ptr<FiberRecord[]> fibers;
  std::atomic<std::size_t> next_fiber{0};

  std::size_t max_items;
  std::unique_ptr<ItemRecord[]> items;
  std::atomic<std::size_t> next_item{0};

  std::size_t max_links;
  std::unique_ptr<LinkRecord[]> links;
  std::atomic<std::size_t> next_link{0};

  std::size_t max_calls;
  std::unique_ptr<CallRecord[]> calls;
  std::atomic<std::size_t> next_call{0};

  weft::Queue<int> unbounded;
  weft::Queue<int> bounded;
  weft::CapacityLimiter limiter;

  std::atomic<bool> teardown{false};  // main is done: the rest may be killed
  std::atomic<long> live_callables{0};

  std::mutex mutex;
  std::vector<std::string> violations;

  // The hubs, while main runs: a hang report asks them for dump_fibers().
  std::mutex hubs_mutex;
  std::vector<weft::Hub*> hubs;
};

// A fiber's view while it runs its program.
struct Context {
  Episode& ep;
  FiberRecord& me;
  std::vector<const weft::Timeout*> timeouts;  // in scope, outermost first
  std::vector<std::pair<std::uint64_t, std::pair<std::size_t, weft::GreenThread<int>>>>
      unlinkable;  // link id, (link record, target)

  bool ours(const weft::TimeoutError& e) const {
    return std::any_of(timeouts.begin(), timeouts.end(),
                       [&](const weft::Timeout* t) { return e.is(*t); });
  }
  std::string who() const { return "fiber " + std::to_string(me.index); }
};

struct TimeoutInScope {
  Context& context;
  TimeoutInScope(Context& c, const weft::Timeout& t) : context(c) { c.timeouts.push_back(&t); }
  ~TimeoutInScope() { context.timeouts.pop_back(); }
};

int run_fiber(Episode& ep, std::size_t index);

// A published fiber picked by `pick` among those reserved so far, if any.
FiberRecord* pick_fiber(Episode& ep, std::uint32_t pick) {
  const std::size_t count = ep.next_fiber.load();
  if (count == 0) return nullptr;
  FiberRecord& record = ep.fibers[pick % count];
  return record.published.load(std::memory_order_acquire) ? &record : nullptr;
}

// Spawns a fiber with a new program drawn from `rng`, on hub `hub` of the
// runtime (or on the caller's hub: `hub` < 0), after `delay` if given.
void spawn_fiber(Episode& ep, std::mt19937_64& rng, int hub,
                 std::optional<std::chrono::microseconds> delay) {
  const auto index = reserve(ep.next_fiber, ep.max_fibers);
  if (!index) return;
  FiberRecord& record = ep.fibers[*index];
  record.index = *index;
  record.expected = static_cast<int>(*index) * 3 + 1;
  record.program = make_program(rng);
  record.rng.seed(rng());
  auto body = [ep = &ep, index = *index, token = LifeToken(ep.live_callables)] {
    return run_fiber(*ep, index);
  };
  if (delay) {
    record.handle = weft::spawn_after(*delay, std::move(body));
  } else if (hub >= 0 && ep.runtime != nullptr) {
    record.handle = ep.runtime->spawn_on(static_cast<std::size_t>(hub), std::move(body));
  } else {
    record.handle = weft::spawn(std::move(body));
  }
  // Its own link, added by the spawner: may run at once (in this caller) if a
  // fiber of another hub has already ended.
  record.handle.link([ep = &ep, index = *index,
                      token = LifeToken(ep.live_callables)](weft::GreenThread<int>& self) {
    FiberRecord& r = ep->fibers[index];
    if (!self.dead())
      ep->violation("fiber " + std::to_string(index) + ": link ran before it ended");
    r.ended_in_teardown.store(ep->teardown.load());
    r.own_link_runs.fetch_add(1);
  });
  record.published.store(true, std::memory_order_release);
  trace("spawned fiber %zu%s", *index, delay ? " (after a delay)" : "");
}

void run_ops(Context& cx, const std::vector<Op>& ops);

void op_wait(Context& cx, const Op& op) {
  Episode& ep = cx.ep;
  FiberRecord* target = nullptr;
  if (op.c % 10 == 0) {
    // Its own handle, once the spawner has stored it: a fiber spawned on
    // another hub may run before spawn_on has returned to its spawner.
    if (cx.me.published.load(std::memory_order_acquire)) target = &cx.me;
  } else if (!cx.timeouts.empty()) {
    target = pick_fiber(ep, op.a);  // a Timeout in scope bounds the wait
  } else {
    // No deadline: only wait for a later fiber, so waits never form a cycle.
    const std::size_t count = ep.next_fiber.load();
    if (cx.me.index + 1 >= count) return;
    FiberRecord& r = ep.fibers[cx.me.index + 1 + op.a % (count - cx.me.index - 1)];
    if (r.published.load(std::memory_order_acquire)) target = &r;
  }
  if (target == nullptr) return;
  const weft::GreenThread<int> handle = target->handle;
  trace("fiber %zu: waits for fiber %zu", cx.me.index, target->index);
  const std::string what = cx.who() + " waiting for fiber " + std::to_string(target->index);
  try {
    const int value = handle.wait();
    if (target == &cx.me) ep.violation(what + ": a fiber waiting for itself did not throw");
    if (value != target->expected || target->returned.load() != 1)
      ep.violation(what + ": got a value it did not return");
  } catch (const weft::FiberExit&) {
    if (cx.me.kills.load() > 0 || ep.teardown.load()) throw;  // may be ours
    if (!handle.dead()) ep.violation(what + ": FiberExit nobody sent while it was alive");
  } catch (const KillError& e) {
    if (e.victim == cx.me.index) throw;
    if (e.victim != target->index || !handle.dead() || target->error_kills.load() == 0)
      ep.violation(what + ": another fiber's KillError");
  } catch (const ProgramError& e) {
    if (e.fiber != target->index || target->threw.load() != 1)
      ep.violation(what + ": another fiber's ProgramError");
  } catch (const weft::TimeoutError& e) {
    if (cx.ours(e)) throw;
    if (!handle.dead() || target->body_timed_out.load() != 1)
      ep.violation(what + ": a TimeoutError that is neither ours nor its own");
  } catch (const std::logic_error&) {
    if (target != &cx.me) ep.violation(what + ": logic_error");
  }
}

void op_kill(Context& cx, const Op& op) {
  FiberRecord* target = pick_fiber(cx.ep, op.a);
  if (target == nullptr) return;
  const weft::GreenThread<int> handle = target->handle;
  trace("fiber %zu: kills fiber %zu (%u)", cx.me.index, target->index, op.b % 5);
  const auto error = std::make_exception_ptr(KillError{target->index});
  switch (op.b % 5) {
    case 0:
    case 1:
      target->kills.fetch_add(1);
      handle.kill();
      break;
    case 2:
      target->error_kills.fetch_add(1);
      handle.kill(error);
      break;
    case 3:
      target->cancels.fetch_add(1);
      handle.cancel();
      break;
    default:
      target->error_kills.fetch_add(1);
      handle.cancel(error);
  }
}

void record_got(Episode& ep, int item, const std::string& who) {
  if (item < 0 || static_cast<std::size_t>(item) >= ep.next_item.load()) {
    ep.violation(who + ": got item " + std::to_string(item) + " that nobody made");
    return;
  }
  if (ep.items[item].got.fetch_add(1) != 0)
    ep.violation(who + ": item " + std::to_string(item) + " got twice");
}

void op_put(Context& cx, const Op& op) {
  Episode& ep = cx.ep;
  const auto item = reserve(ep.next_item, ep.max_items);
  if (!item) return;
  const int id = static_cast<int>(*item);
  const auto patience = std::chrono::microseconds(op.c % 2000);
  bool added = false;
  if (op.a % 3 == 0) {
    ep.unbounded.put(id);  // never waits
    added = true;
  } else if (op.b % 3 == 0 && !cx.timeouts.empty()) {
    ep.bounded.put(id);  // may wait: a Timeout in scope bounds it
    added = true;
  } else if (op.b % 3 == 1) {
    added = ep.bounded.put_for(id, patience);
  } else {
    added = ep.bounded.try_put(id);
  }
  if (added) ep.items[id].put_ok.store(1);
}

void op_get(Context& cx, const Op& op) {
  Episode& ep = cx.ep;
  weft::Queue<int>& queue = op.a % 3 == 0 ? ep.unbounded : ep.bounded;
  const auto patience = std::chrono::microseconds(op.c % 2000);
  std::optional<int> item;
  if (op.b % 3 == 0 && !cx.timeouts.empty()) {
    item = queue.get();
  } else if (op.b % 3 == 1) {
    item = queue.get_for(patience);
  } else {
    item = queue.try_get();
  }
  if (item) record_got(ep, *item, cx.who());
}

void op_run_sync(Context& cx, const Op& op) {
  Episode& ep = cx.ep;
  const auto call = reserve(ep.next_call, ep.max_calls);
  if (!call) return;
  CallRecord& record = ep.calls[*call];
  const bool abandon = op.b % 2 == 0;
  record.abandon.store(abandon ? 1 : 0);
  const int what = static_cast<int>(op.c % 7);
  // What the function may touch, prepared here: it captures by value only.
  std::optional<std::size_t> item;
  if (what == 3 || what == 4) item = reserve(ep.next_item, ep.max_items);
  FiberRecord* target = what >= 5 ? pick_fiber(ep, op.a) : nullptr;
  std::optional<std::size_t> link;
  if (what == 6 && target != nullptr) {
    link = reserve(ep.next_link, ep.max_links);
    if (link) ep.links[*link].expected.store(0);  // 1 once the function links
  }
  weft::GreenThread<int> target_handle = target ? target->handle : weft::GreenThread<int>();
  const std::size_t target_index = target ? target->index : 0;
  const auto nap = std::chrono::microseconds(op.a % 300);

  auto function = [ep = &ep, call = *call, what, item, link, target_handle, target_index, nap,
                   token = LifeToken(ep.live_callables)]() -> int {
    ep->calls[call].ran.fetch_add(1);
    switch (what) {
      case 1:
        std::this_thread::sleep_for(nap);
        break;
      case 2:
        throw WorkerError{call};
      case 3:  // an unbounded put is allowed from any thread
        if (item) {
          ep->unbounded.put(static_cast<int>(*item));
          ep->items[*item].put_ok.store(1);
        }
        break;
      case 4:
        if (item && ep->bounded.try_put(static_cast<int>(*item))) ep->items[*item].put_ok.store(1);
        break;
      case 5:  // kill from a plain thread: delivered by the target's hub
        if (target_handle) {
          ep->fibers[target_index].kills.fetch_add(1);
          target_handle.kill();
        }
        break;
      case 6:  // link from a plain thread
        if (target_handle && link) {
          ep->links[*link].expected.store(1);
          target_handle.link([ep, l = *link, token = LifeToken(ep->live_callables)] {
            ep->links[l].runs.fetch_add(1);
          });
        }
        break;
      default:
        break;
    }
    return static_cast<int>(call) * 5 + 1;
  };
  weft::RunSyncOptions options;
  options.limiter = op.a % 2 == 0 ? &ep.limiter : nullptr;
  options.abandon_on_cancel = abandon;
  const std::string who = cx.who() + " run_sync call " + std::to_string(*call);
  try {
    const int value = weft::to_thread::run_sync(std::move(function), options);
    if (value != static_cast<int>(*call) * 5 + 1) ep.violation(who + ": wrong value");
    if (record.ran.load() != 1)
      ep.violation(who + ": returned, function ran " + std::to_string(record.ran.load()) +
                   " times");
  } catch (const WorkerError& e) {
    if (e.call != *call || what != 2 || record.ran.load() != 1)
      ep.violation(who + ": a WorkerError it did not throw");
  } catch (...) {
    record.interrupted.store(1);
    throw;
  }
}

void op_link(Context& cx, const Op& op) {
  Episode& ep = cx.ep;
  FiberRecord* target = pick_fiber(ep, op.a);
  if (target == nullptr) return;
  const auto link = reserve(ep.next_link, ep.max_links);
  if (!link) return;
  const weft::GreenThread<int> handle = target->handle;
  std::uint64_t id = 0;
  if (op.b % 2 == 0) {
    id = handle.link([ep = &ep, l = *link, token = LifeToken(ep.live_callables)] {
      ep->links[l].runs.fetch_add(1);
    });
  } else {
    id = handle.link([ep = &ep, l = *link, t = target->index,
                      token = LifeToken(ep.live_callables)](weft::GreenThread<int>& self) {
      if (!self.dead())
        ep->violation("link on fiber " + std::to_string(t) + " ran before it ended");
      ep->links[l].runs.fetch_add(1);
    });
  }
  if (op.c % 4 == 0) {
    if (handle.unlink(id)) ep.links[*link].expected.store(0);
  } else if (op.c % 4 == 1) {
    cx.unlinkable.push_back({id, {*link, handle}});
  }
}

void op_unlink(Context& cx) {
  if (cx.unlinkable.empty()) return;
  auto [id, rest] = std::move(cx.unlinkable.back());
  cx.unlinkable.pop_back();
  if (rest.second.unlink(id)) cx.ep.links[rest.first].expected.store(0);
}

void op_timeout(Context& cx, const Op& op) {
  // Mostly short; sometimes zero or already past (fires once it suspends).
  const auto length = op.b % 8 == 0   ? std::chrono::microseconds(-static_cast<int>(op.a % 1000))
                      : op.b % 8 == 1 ? std::chrono::microseconds(0)
                                      : std::chrono::microseconds(op.a % 3000);
  weft::Timeout timeout(length);
  TimeoutInScope scope(cx, timeout);
  try {
    run_ops(cx, op.body);
  } catch (const weft::TimeoutError& e) {
    if (!e.is(timeout)) throw;
    cx.ep.tally.scope_timeouts.fetch_add(1);
  }
  if (op.c % 4 == 0) timeout.cancel();
}

const char* op_name(OpKind kind) {
  constexpr const char* names[] = {"spawn", "sleep",    "wait", "kill",   "put",
                                   "get",   "run_sync", "link", "unlink", "timeout"};
  return names[static_cast<int>(kind)];
}

void run_ops(Context& cx, const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    trace("fiber %zu: %s a=%u b=%u c=%u (of %zu fibers)", cx.me.index, op_name(op.kind), op.a, op.b,
          op.c, cx.ep.next_fiber.load());
    cx.me.last_op.store(static_cast<int>(op.kind));
    switch (op.kind) {
      case OpKind::spawn: {
        std::optional<std::chrono::microseconds> delay;
        int hub = -1;
        if (op.a % 4 == 0) {
          delay = std::chrono::microseconds(op.c % 2000);
        } else if (cx.ep.runtime != nullptr && op.a % 4 == 1) {
          hub = static_cast<int>(op.b % cx.ep.runtime->hub_count());
        }
        spawn_fiber(cx.ep, cx.me.rng, hub, delay);
        break;
      }
      case OpKind::sleep:
        if (op.a % 3 == 0) {
          weft::yield();
        } else {
          weft::sleep(std::chrono::microseconds(op.b % 1500));
        }
        break;
      case OpKind::wait:
        op_wait(cx, op);
        break;
      case OpKind::kill:
        op_kill(cx, op);
        break;
      case OpKind::put:
        op_put(cx, op);
        break;
      case OpKind::get:
        op_get(cx, op);
        break;
      case OpKind::run_sync:
        op_run_sync(cx, op);
        break;
      case OpKind::link:
        op_link(cx, op);
        break;
      case OpKind::unlink:
        op_unlink(cx);
        break;
      case OpKind::timeout:
        op_timeout(cx, op);
        break;
    }
  }
}

struct BodyGuard {
  FiberRecord& me;
  explicit BodyGuard(FiberRecord& r) : me(r) { me.entered.fetch_add(1); }
  ~BodyGuard() {
    me.left.fetch_add(1);
    trace("fiber %zu: ends", me.index);
  }
};

int run_fiber(Episode& ep, std::size_t index) {
  FiberRecord& me = ep.fibers[index];
  trace("fiber %zu: starts", index);
  BodyGuard guard(me);
  const Program& program = me.program;
  Context cx{ep, me, {}, {}};
  std::optional<weft::Timeout> body_timeout;
  if (program.body_timeout) body_timeout.emplace(*program.body_timeout);
  std::optional<TimeoutInScope> scope;
  if (body_timeout) scope.emplace(cx, *body_timeout);
  try {
    if (program.ending == Ending::catches_exit) {
      try {
        run_ops(cx, program.ops);
      } catch (const weft::FiberExit&) {
        me.caught_exit.fetch_add(1);
        if (me.kills.load() == 0 && !ep.teardown.load())
          ep.violation(cx.who() + ": caught a FiberExit nobody sent");
        if (program.yield_after_catch) weft::yield();  // killed again in teardown
      }
    } else {
      run_ops(cx, program.ops);
    }
  } catch (const weft::TimeoutError& e) {
    if (body_timeout && e.is(*body_timeout)) me.body_timed_out.store(1);
    throw;
  }
  if (program.ending == Ending::throws) {
    me.threw.store(1);
    throw ProgramError{index};
  }
  me.returned.store(1);
  return me.expected;
}

// main: spawns the first fibers, then either waits for every fiber (which
// must leave only itself on each hub) or returns early and leaves the rest to
// the end of the run, which kills them.
void run_main(Episode& ep) {
  {
    std::vector<weft::Hub*> hubs{&weft::Hub::current()};
    for (std::size_t hub = 1; ep.runtime != nullptr && hub < ep.runtime->hub_count(); ++hub)
      hubs.push_back(ep.runtime->spawn_on(hub, [] { return &weft::Hub::current(); }).wait());
    std::lock_guard lock(ep.hubs_mutex);
    ep.hubs = std::move(hubs);
  }
  const std::size_t initial = 1 + ep.rng() % std::min<std::size_t>(ep.max_fibers, 32);
  const bool wait_for_all = ep.rng() % 3 != 0;
  for (std::size_t i = 0; i < initial; ++i) {
    int hub = -1;
    if (ep.runtime != nullptr) hub = static_cast<int>(ep.rng() % ep.runtime->hub_count());
    spawn_fiber(ep, ep.rng, hub, std::nullopt);
  }
  weft::sleep(std::chrono::microseconds(ep.rng() % 3000));
  if (wait_for_all) {
    std::size_t waited = 0;
    while (waited < ep.next_fiber.load()) {
      FiberRecord& record = ep.fibers[waited];
      if (!record.published.load(std::memory_order_acquire)) {
        weft::yield();  // a fiber of another hub is spawning it right now
        continue;
      }
      const weft::GreenThread<int> handle = record.handle;
      try {
        handle.wait();
      } catch (...) {  // its outcome is checked once the episode is over
      }
      ++waited;
    }
    weft::yield();
    const std::size_t here = weft::Hub::current().live_fibers();
    if (here != 1)
      ep.violation("main: " + std::to_string(here) + " fibers live on its hub after all ended");
    if (ep.runtime != nullptr) {
      for (std::size_t hub = 1; hub < ep.runtime->hub_count(); ++hub) {
        const std::size_t there = ep.runtime
                                      ->spawn_on(hub,
                                                 [] {
                                                   weft::yield();
                                                   return weft::Hub::current().live_fibers();
                                                 })
                                      .wait();
        if (there != 1)
          ep.violation("main: " + std::to_string(there) + " fibers live on hub " +
                       std::to_string(hub) + " after all ended (the checker included)");
      }
    }
  }
  std::lock_guard lock(ep.hubs_mutex);
  ep.hubs.clear();  // about to end: the hubs may go at any time now
  ep.teardown.store(true);
}

// On the watchdog's thread, when an episode hangs: the fibers still alive, by
// the model, and each hub's own dump if main is still running.
void report_hang(Episode& ep) {
  std::fprintf(stderr, "teardown %s; fibers not ended:\n",
               ep.teardown.load() ? "begun" : "not begun");
  for (std::size_t i = 0; i < ep.next_fiber.load(); ++i) {
    FiberRecord& r = ep.fibers[i];
    if (!r.published.load() || r.handle.dead()) continue;
    const int op = r.last_op.load();
    std::fprintf(stderr, "  fiber %zu: last op %s, entered %d, kills %d, cancels %d\n", i,
                 op < 0 ? "none" : op_name(static_cast<OpKind>(op)), r.entered.load(),
                 r.kills.load(), r.cancels.load());
  }
  std::lock_guard lock(ep.hubs_mutex);
  for (weft::Hub* hub : ep.hubs)
    hub->post([] { std::fprintf(stderr, "hub dump:\n%s\n", weft::dump_fibers().c_str()); });
  if (!ep.hubs.empty()) std::this_thread::sleep_for(1s);
}

std::string outcome_problem(FiberRecord& r, Tally& tally) {
  const weft::GreenThread<int>& handle = r.handle;
  if (!handle.dead()) return "not dead after the episode";
  if (r.own_link_runs.load() != 1)
    return "its own link ran " + std::to_string(r.own_link_runs.load()) + " times";
  if (r.entered.load() != r.left.load() || r.entered.load() > 1)
    return "body entered " + std::to_string(r.entered.load()) + ", left " +
           std::to_string(r.left.load());
  if (handle.started() != (r.entered.load() == 1))
    return std::string("started() is ") + (handle.started() ? "true" : "false") +
           " but body entered " + std::to_string(r.entered.load());
  tally.fibers.fetch_add(1);
  if (r.entered.load() == 0) tally.never_started.fetch_add(1);
  if (r.caught_exit.load() != 0) tally.caught_exits.fetch_add(1);
  try {
    const int value = handle.wait();
    tally.values.fetch_add(1);
    if (value != r.expected || r.returned.load() != 1) return "a value it did not return";
  } catch (const weft::FiberExit&) {
    tally.exits.fetch_add(1);
    const bool killed = r.kills.load() > 0 || r.ended_in_teardown.load();
    const bool cancelled = r.cancels.load() > 0 && r.entered.load() == 0;
    if (!killed && !cancelled)
      return "FiberExit without a kill (kills " + std::to_string(r.kills.load()) + ", cancels " +
             std::to_string(r.cancels.load()) + ", entered " + std::to_string(r.entered.load()) +
             ")";
  } catch (const KillError& e) {
    tally.kill_errors.fetch_add(1);
    if (e.victim != r.index || r.error_kills.load() == 0) return "a KillError nobody sent it";
  } catch (const ProgramError& e) {
    tally.program_errors.fetch_add(1);
    if (e.fiber != r.index || r.threw.load() != 1) return "a ProgramError it did not throw";
  } catch (const weft::TimeoutError&) {
    tally.timeouts.fetch_add(1);
    if (r.body_timed_out.load() != 1) return "a TimeoutError that is not its own outer Timeout's";
  } catch (const std::exception& e) {
    return std::string("unexpected exception: ") + e.what();
  } catch (...) {
    return "unexpected exception of unknown type";
  }
  return {};
}

// Bounded wait (on a plain thread) until abandoned run_sync calls have ended.
bool tokens_came_back(Episode& ep) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (ep.limiter.borrowed_tokens() != 0 ||
         weft::to_thread::default_limiter().borrowed_tokens() != 0) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

void check_episode(Episode& ep) {
  // Items still queued count as drained.
  for (weft::Queue<int>* queue : {&ep.unbounded, &ep.bounded}) {
    while (auto item = queue->try_get()) {
      if (*item < 0 || static_cast<std::size_t>(*item) >= ep.next_item.load()) {
        ep.violation("queue held item " + std::to_string(*item) + " that nobody made");
        continue;
      }
      ep.items[*item].drained.fetch_add(1);
    }
  }
  for (std::size_t i = 0; i < ep.next_fiber.load(); ++i) {
    FiberRecord& r = ep.fibers[i];
    if (!r.published.load()) {
      ep.violation("fiber " + std::to_string(i) + " reserved but never published");
      continue;
    }
    if (std::string problem = outcome_problem(r, ep.tally); !problem.empty())
      ep.violation("fiber " + std::to_string(i) + ": " + problem);
  }
  for (std::size_t i = 0; i < ep.next_link.load(); ++i) {
    const LinkRecord& l = ep.links[i];
    ep.tally.links.fetch_add(1);
    if (l.expected.load() == 0) ep.tally.unlinked.fetch_add(1);
    if (l.runs.load() != l.expected.load())
      ep.violation("link " + std::to_string(i) + " ran " + std::to_string(l.runs.load()) +
                   " times, expected " + std::to_string(l.expected.load()));
  }
  for (std::size_t i = 0; i < ep.next_item.load(); ++i) {
    const ItemRecord& item = ep.items[i];
    const int seen = item.got.load() + item.drained.load();
    ep.tally.items_got.fetch_add(item.got.load());
    ep.tally.items_drained.fetch_add(item.drained.load());
    if (seen != item.put_ok.load())
      ep.violation("item " + std::to_string(i) + ": put " + std::to_string(item.put_ok.load()) +
                   ", got " + std::to_string(item.got.load()) + ", left in a queue " +
                   std::to_string(item.drained.load()));
  }
  for (std::size_t i = 0; i < ep.next_call.load(); ++i) {
    const CallRecord& call = ep.calls[i];
    const int ran = call.ran.load();
    ep.tally.calls.fetch_add(1);
    if (call.interrupted.load()) ep.tally.calls_interrupted.fetch_add(1);
    if (call.interrupted.load() && call.abandon.load()) ep.tally.calls_abandoned.fetch_add(1);
    if (ran > 1) ep.violation("run_sync call " + std::to_string(i) + ": function ran twice");
    if (call.interrupted.load() && !call.abandon.load() && ran != 0)
      ep.violation("run_sync call " + std::to_string(i) +
                   ": not abandoned, threw an interrupt, yet its function ran");
  }
  // Every handle dropped: every callable the runtime held must be gone.
  for (std::size_t i = 0; i < ep.next_fiber.load(); ++i)
    ep.fibers[i].handle = weft::GreenThread<int>();
  if (ep.live_callables.load() != 0)
    ep.violation(std::to_string(ep.live_callables.load()) +
                 " callables (fiber bodies, links, run_sync functions) never destroyed");
}

enum class Hubs { one, two };

// Runs one episode; returns its violations (empty: it passed).
std::vector<std::string> run_episode(std::uint64_t episode_seed, Hubs hubs, Tally& tally,
                                     Watchdog& watchdog, const std::string& replay) {
  const std::size_t fds_before = weft_test::open_fds();
  std::optional<weft::Runtime> runtime;
  if (hubs == Hubs::two) runtime.emplace(weft::RuntimeOptions{.hubs = 2});
  auto ep = std::make_unique<Episode>(episode_seed, runtime ? &*runtime : nullptr, tally);
  watchdog.arm(replay, [ep = ep.get()] { report_hang(*ep); });
  struct Disarm {
    Watchdog& watchdog;
    ~Disarm() { watchdog.disarm(); }  // before `ep` goes
  } disarm{watchdog};
  try {
    if (runtime) {
      runtime->run([&] { run_main(*ep); });
    } else {
      weft::run([&] { run_main(*ep); });
    }
  } catch (const std::exception& e) {
    ep->violation(std::string("main threw: ") + e.what());
  } catch (...) {
    ep->violation("main threw something else");
  }
  runtime.reset();  // stops the hubs: kills what is left
  if (!tokens_came_back(*ep)) {
    ep->violation("limiter tokens still borrowed 30 s after the episode (a run_sync call lost)");
    auto violations = ep->violations;
    (void)ep.release();  // abandoned functions may still use it
    return violations;
  }
  check_episode(*ep);
  const std::size_t fds_after = weft_test::open_fds();
  if (fds_after != fds_before)
    ep->violation("fds open: " + std::to_string(fds_before) + " before, " +
                  std::to_string(fds_after) + " after");
  return ep->violations;
}

void run_stress(const char* test, Hubs hubs, std::uint64_t salt, double share) {
  const StressConfig& c = config();
  Watchdog watchdog(60s);
  const auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(c.budget * share);
  const auto end = std::chrono::steady_clock::now() + budget;
  Tally tally;
  std::uint64_t episode = c.only_episode.value_or(0);
  std::uint64_t ran = 0;
  do {
    const std::string replay = replay_line(test, episode);
    SCOPED_TRACE(replay);
    const auto violations =
        run_episode(mix(c.seed ^ mix(salt + episode)), hubs, tally, watchdog, replay);
    ++ran;
    if (!violations.empty()) {
      std::string report;
      for (const auto& v : violations)
        report += "\n  " + v;
      ADD_FAILURE() << "seed " << c.seed << ", episode " << episode << " (" << replay
                    << "):" << report;
      return;
    }
    ++episode;
  } while (!c.only_episode && std::chrono::steady_clock::now() < end);
  std::printf("[ stress   ] %llu episodes, seed %llu: %s\n", static_cast<unsigned long long>(ran),
              static_cast<unsigned long long>(c.seed), tally.line().c_str());
}

class RuntimeStress : public weft_test::FdLeakCheck {};

}  // namespace

TEST_F(RuntimeStress, RandomProgramsOnOneHub) {
  run_stress("RandomProgramsOnOneHub", Hubs::one, 0x1111, 0.5);
}

TEST_F(RuntimeStress, RandomProgramsOnARuntimeOfTwoHubs) {
  run_stress("RandomProgramsOnARuntimeOfTwoHubs", Hubs::two, 0x2222, 0.5);
}

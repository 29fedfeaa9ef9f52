// runtime_compare: weft next to its C++ peers, raw Boost.Context and Boost.Fiber,
// on the same workloads in one run, with a table of medians and ratios.
//
//   runtime_compare [--bench=yield_pingpong|spawn_join|skynet|all] [--reps=N]
//                   [--peer=weft|boost_fiber|boost_context|all] [--n=N]
//                   [--lines-only] [--in-process]
//
//   --reps=N       printed rounds per peer (default 3); the table shows their median
//   --n=N          overrides the size of the one selected --bench (switches, tasks, leaves)
//   --lines-only   print only the measurement lines (for the shared harness's EXTRA_CMDS)
//   --in-process   skynet: grow every tree in this process (first round=cold, later
//                  round=warm) instead of one fresh child process per rep
//
// Every measurement is printed as one line in the shared peer harness's format (see
// compare_report.hpp), so the output can be fed to its summarize.py as is. The peers
// measure what the harness's own peer programs measure (/work/shared/peers/cpp/
// ctx_bench.cpp, fiber_bench.cpp): CLOCK_MONOTONIC around the measured loop only, one
// unprinted warm-up round (1/10 size for the ping-pong, full size for spawn_join, none
// for skynet), RSS from /proc/self/status.
//
// spawn_join also runs weft on two hubs at once (threads=2, beside Go's GOMAXPROCS=2
// and tokio's multi-thread lines): the shape of a server whose hubs all spawn.
//
// The ping-pong and spawn_join peers share this process; weft always runs first, so
// a peer that runs later can at most profit from heap pages an earlier one left
// behind: the ratios err in the peers' favour. Skynet needs a fresh process per tree
// (see skynet below).

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>

#include <weft/weft.hpp>

#include "build_warning.hpp"
#include "compare_measure.hpp"
#include "compare_report.hpp"

namespace {

using namespace weft_bench;
namespace bf = boost::fibers;
namespace ctx = boost::context;

// weft's default stack size, set explicitly so that the variant name (pooled64k) holds
// whatever the build's default_stack_size_kib is.
constexpr std::size_t kWeftStack = 64 * 1024;
constexpr std::size_t kBoostStack = 16 * 1024;  // the harness's tuned Boost variants
constexpr std::uint64_t kSpawnTasks = 100'000;
constexpr std::uint64_t kSkynetLeaves = 1'000'000;
constexpr std::uint64_t kFanOut = 10;

// ------------------------------------------------------------------- yield ping-pong
// Two contexts on one OS thread hand the CPU back and forth. n = switches (2 per
// round trip), ns_per_switch = elapsed / n. Default n per peer: what run_all.sh gives
// the harness's peers (80M for raw Boost.Context, 10M for Boost.Fiber); 20M for weft,
// so that a round lasts a few hundred ms.

// Both fibers run one lambda: every switch returns to the same call site of yield(), so
// the return stack predicts the `ret` that ends a switch (a server's connection
// handlers are like this).
std::uint64_t weft_same_body(std::uint64_t switches) {
  const std::uint64_t per_fiber = switches / 2;
  auto body = [per_fiber] {
    for (std::uint64_t i = 0; i < per_fiber; ++i) {
      weft::yield();
    }
  };
  const std::uint64_t t0 = now_ns();
  auto a = weft::spawn(body);
  auto b = weft::spawn(body);
  a.wait();
  b.wait();
  return now_ns() - t0;
}

// The fibers run different functions, a producer and a consumer, as most programs'
// fibers do: a switch returns to the other function's call site of yield(). Each body
// touches the shared slot in its own way, so the compiler cannot fold the two into one.
struct Handoff {
  std::uint64_t slot = 0;
  std::uint64_t sum = 0;
};

[[gnu::noinline]] void produce(Handoff& handoff, std::uint64_t rounds) {
  for (std::uint64_t i = 0; i < rounds; ++i) {
    handoff.slot = i;
    weft::yield();
  }
}

[[gnu::noinline]] void consume(Handoff& handoff, std::uint64_t rounds) {
  for (std::uint64_t i = 0; i < rounds; ++i) {
    handoff.sum += handoff.slot;
    weft::yield();
  }
}

std::uint64_t weft_distinct_bodies(std::uint64_t switches) {
  const std::uint64_t per_fiber = switches / 2;
  Handoff handoff;
  const std::uint64_t t0 = now_ns();
  auto producer = weft::spawn([&] { produce(handoff, per_fiber); });
  auto consumer = weft::spawn([&] { consume(handoff, per_fiber); });
  producer.wait();
  consumer.wait();
  const std::uint64_t elapsed = now_ns() - t0;
  // FIFO: the consumer runs right after the producer, so it reads each value once.
  if (handoff.sum != per_fiber * (per_fiber - 1) / 2) die("weft yield: the consumer missed values");
  return elapsed;
}

// The two weft variants alternate round by round, so a slow spell hits both alike.
void weft_yield_pingpong(std::uint64_t switches, int reps, Report& report) {
  weft::run(
      [&] {
        for (int rep = -1; rep < reps; ++rep) {  // rep -1: the unprinted warm-up
          const std::uint64_t n = (rep < 0 ? switches / 10 : switches) / 2 * 2;
          const std::uint64_t same = weft_same_body(n);
          const std::uint64_t distinct = weft_distinct_bodies(n);
          if (rep < 0) continue;
          report.line(yield_line("weft", "yield", n, same));
          report.line(yield_line("weft", kDistinctBodies, n, distinct));
        }
      },
      weft::RunOptions{.default_stack_size = kWeftStack});
}

void boost_context_yield_pingpong(std::uint64_t switches, int reps, Report& report) {
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t rounds = (rep < 0 ? switches / 10 : switches) / 2;
    bool stop = false;
    ctx::fiber partner{[&stop](ctx::fiber&& back) {
      while (!stop) {
        back = std::move(back).resume();
      }
      return std::move(back);
    }};
    partner = std::move(partner).resume();  // enter it once: the timed loop is steady state
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < rounds; ++i) {
      partner = std::move(partner).resume();
    }
    const std::uint64_t t1 = now_ns();
    stop = true;
    partner = std::move(partner).resume();  // lets it return
    if (rep >= 0) report.line(yield_line("boost_context", "resume", 2 * rounds, t1 - t0));
  }
}

void boost_fiber_yield_pingpong(std::uint64_t switches, int reps, Report& report) {
  for (int rep = -1; rep < reps; ++rep) {
    const std::uint64_t per_fiber = (rep < 0 ? switches / 10 : switches) / 2;
    auto body = [per_fiber] {
      for (std::uint64_t i = 0; i < per_fiber; ++i) {
        boost::this_fiber::yield();
      }
    };
    const std::uint64_t t0 = now_ns();
    bf::fiber a(body);
    bf::fiber b(body);
    a.join();
    b.join();
    const std::uint64_t t1 = now_ns();
    if (rep >= 0) report.line(yield_line("boost_fiber", "yield", 2 * per_fiber, t1 - t0));
  }
}

// ------------------------------------------------------------------- spawn + join
// Create n tasks that do nothing, all of them first, then join each. One full-size
// warm-up round first, so allocator caches and stack pools are primed; it is printed
// as variant=first_round (the cold figure: a fresh hub's first n fibers).

void weft_spawn_join(std::uint64_t tasks, int reps, Report& report) {
  weft::run(
      [&] {
        const RssWindow rss;
        for (int rep = -1; rep < reps; ++rep) {
          std::uint64_t ran = 0;
          std::vector<weft::GreenThread<void>> fibers;
          fibers.reserve(tasks);
          const std::uint64_t t0 = now_ns();
          for (std::uint64_t i = 0; i < tasks; ++i) {
            fibers.push_back(weft::spawn([&ran] { ++ran; }));
          }
          for (const auto& fiber : fibers) {
            fiber.wait();
          }
          const std::uint64_t t1 = now_ns();
          if (ran != tasks) die("weft spawn_join: not every fiber ran");
          // The warm-up is the first round of a fresh hub: its stacks not yet pooled,
          // and, in a fresh process (--bench=spawn_join), its heap not yet grown.
          report.line(
              spawn_line("weft", rep < 0 ? "first_round" : "pooled64k", tasks, t1 - t0, rss));
        }
      },
      weft::RunOptions{.default_stack_size = kWeftStack});
}

// The same on two hubs at once (Go's GOMAXPROCS=2 and tokio's multi-thread lines):
// each hub spawns and joins half of the n fibers, as a server's hubs do with their
// connections. ns_per_spawn is wall time over all n, as the peers print it.
void weft_spawn_join_two_hubs(std::uint64_t tasks, int reps, Report& report) {
  weft::Runtime runtime(
      weft::RuntimeOptions{.hubs = 2, .hub = weft::HubOptions{.default_stack_size = kWeftStack}});
  runtime.run([&] {
    const RssWindow rss;
    auto half = [&] {
      std::vector<weft::GreenThread<void>> fibers;
      fibers.reserve(tasks / 2);
      for (std::uint64_t i = 0; i < tasks / 2; ++i)
        fibers.push_back(weft::spawn([] {}));
      for (const auto& fiber : fibers)
        fiber.wait();
    };
    for (int rep = -1; rep < reps; ++rep) {
      const std::uint64_t t0 = now_ns();
      auto other_hub = runtime.spawn_on(1, half);
      half();
      other_hub.wait();
      const std::uint64_t t1 = now_ns();
      // The warm-up is the first round of two fresh hubs on threads of their own: the
      // shape of a Runtime's cold start, whose blocks come from per-thread malloc arenas
      // (no heap prefault there, see runtime/heap_prefault.hpp).
      report.line(spawn_line("weft", rep < 0 ? "first_round" : "pooled64k", tasks / 2 * 2, t1 - t0,
                             rss, 2));
    }
  });
}

// The floor for a runtime with pooled stacks: create, then resume each once.
void boost_context_spawn_join(std::uint64_t tasks, int reps, Report& report) {
  ctx::pooled_fixedsize_stack stacks(kBoostStack);
  const RssWindow rss;
  for (int rep = -1; rep < reps; ++rep) {
    std::uint64_t ran = 0;
    std::vector<ctx::fiber> fibers;
    fibers.reserve(tasks);
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < tasks; ++i) {
      fibers.emplace_back(std::allocator_arg, stacks, [&ran](ctx::fiber&& back) {
        ++ran;
        return std::move(back);
      });
    }
    for (auto& fiber : fibers) {
      fiber = std::move(fiber).resume();
    }
    const std::uint64_t t1 = now_ns();
    if (ran != tasks) die("boost_context spawn_join: not every fiber ran");
    if (rep >= 0) {
      report.line(spawn_line("boost_context", "create_resume_pooled16k", tasks, t1 - t0, rss));
    }
  }
}

void boost_fiber_spawn_join(std::uint64_t tasks, int reps, Report& report) {
  bf::pooled_fixedsize_stack stacks(kBoostStack);
  const RssWindow rss;
  for (int rep = -1; rep < reps; ++rep) {
    std::uint64_t ran = 0;
    std::vector<bf::fiber> fibers;
    fibers.reserve(tasks);
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < tasks; ++i) {
      fibers.emplace_back(bf::launch::post, std::allocator_arg, stacks, [&ran] { ++ran; });
    }
    for (auto& fiber : fibers) {
      fiber.join();
    }
    const std::uint64_t t1 = now_ns();
    if (ran != tasks) die("boost_fiber spawn_join: not every fiber ran");
    fibers.clear();
    boost::this_fiber::yield();  // lets the scheduler release the terminated fibers
    if (rep >= 0) report.line(spawn_line("boost_fiber", "post_pooled16k", tasks, t1 - t0, rss));
  }
}

// ------------------------------------------------------------------- skynet
// 1M leaves, fan-out 10 (1,111,111 tasks): every task with size > 1 spawns 10 children
// over its sub-ranges, waits for them and returns their sum; a leaf returns its number.
//
// weft runs it with eventlet's spawn order: a child starts at the next round (FIFO), so
// the tree unfolds breadth first and all ~1.1M fibers are alive at once, as with
// Boost.Fiber's launch::post. weft still fits because a fiber's stack is bound only when
// the fiber first runs and goes back to a LIFO pool when it ends: the 1M leaves that have
// not started yet cost a heap control block each, and when they run each one takes the
// stack the previous leaf just gave back, so a few hot stacks serve them all. Only the
// ~111k parents, suspended in wait(), hold a stack (of which they touch a page or two).
// Boost.Fiber binds a stack at creation, so it runs here with launch::dispatch (the child
// runs at once, depth first), its fast variant in the harness.
//
// Peak RSS (VmHWM) and a cold tree (stacks and heap page-faulted in) both need a fresh
// process, so by default each rep is a child process (this program with --in-process
// --reps=1): every printed round is round=cold. Resetting VmHWM (see RssWindow) would
// fix the peak but not the coldness: the memory an earlier tree left in the heap and in
// the stack pools would make a later one warm.

std::uint64_t weft_skynet_node(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t sub = size / kFanOut;
  std::array<weft::GreenThread<std::uint64_t>, kFanOut> children;
  for (std::uint64_t i = 0; i < kFanOut; ++i) {
    children[i] = weft::spawn(weft_skynet_node, num + i * sub, sub);
  }
  std::uint64_t sum = 0;
  for (const auto& child : children) {
    sum += child.wait();
  }
  return sum;
}

void check_skynet_sum(std::uint64_t leaves, std::uint64_t sum) {
  if (sum != leaves * (leaves - 1) / 2) {
    die(format("skynet: wrong sum %llu", static_cast<unsigned long long>(sum)));
  }
}

void weft_skynet(std::uint64_t leaves, int reps, Report& report) {
  weft::run(
      [&] {
        const RssWindow rss;
        for (int round = 0; round < reps; ++round) {
          const std::uint64_t t0 = now_ns();
          const std::uint64_t sum = weft::spawn(weft_skynet_node, std::uint64_t{0}, leaves).wait();
          const std::uint64_t t1 = now_ns();
          check_skynet_sum(leaves, sum);
          report.line(skynet_line("weft", "eventlet_order", round, leaves, t1 - t0, rss, sum));
        }
      },
      weft::RunOptions{.default_stack_size = kWeftStack});
}

std::uint64_t boost_fiber_skynet_node(bf::pooled_fixedsize_stack& stacks, std::uint64_t num,
                                      std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t sub = size / kFanOut;
  std::array<std::uint64_t, kFanOut> results{};
  std::array<bf::fiber, kFanOut> children;
  for (std::uint64_t i = 0; i < kFanOut; ++i) {
    children[i] = bf::fiber(bf::launch::dispatch, std::allocator_arg, stacks, [&, i] {
      results[i] = boost_fiber_skynet_node(stacks, num + i * sub, sub);
    });
  }
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < kFanOut; ++i) {
    children[i].join();
    sum += results[i];
  }
  return sum;
}

void boost_fiber_skynet(std::uint64_t leaves, int reps, Report& report) {
  bf::pooled_fixedsize_stack stacks(kBoostStack);
  const RssWindow rss;
  for (int round = 0; round < reps; ++round) {
    std::uint64_t sum = 0;
    const std::uint64_t t0 = now_ns();
    bf::fiber root(bf::launch::dispatch, std::allocator_arg, stacks,
                   [&] { sum = boost_fiber_skynet_node(stacks, 0, leaves); });
    root.join();
    const std::uint64_t t1 = now_ns();
    check_skynet_sum(leaves, sum);
    boost::this_fiber::yield();  // lets the scheduler release the terminated fibers
    report.line(skynet_line("boost_fiber", "dispatch_pooled16k", round, leaves, t1 - t0, rss, sum));
  }
}

// ------------------------------------------------------------------- options

struct Options {
  std::string bench = "all";
  std::string peer = "all";
  int reps = 3;
  std::optional<std::uint64_t> n;
  bool lines_only = false;
  bool in_process = false;

  bool wants_bench(std::string_view name) const { return bench == "all" || bench == name; }
  bool wants_peer(std::string_view name) const { return peer == "all" || peer == name; }
  std::uint64_t size_or(std::uint64_t fallback) const { return n.value_or(fallback); }
};

// The tree only divides evenly down to single leaves then.
bool is_power_of_fan_out(std::uint64_t leaves) {
  while (leaves % kFanOut == 0) {
    leaves /= kFanOut;
  }
  return leaves == 1;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto [key, value] = split_argument(arg);
    if (key == "--bench") {
      options.bench = value;
    } else if (key == "--peer") {
      options.peer = value;
    } else if (key == "--reps") {
      options.reps = static_cast<int>(parse_count("reps", value));
    } else if (key == "--n") {
      options.n = parse_count("n", value);
    } else if (arg == "--lines-only") {
      options.lines_only = true;
    } else if (arg == "--in-process") {
      options.in_process = true;
    } else {
      die(format("unknown argument '%s' (see the comment at the top of runtime_compare.cpp)",
                 argv[i]));
    }
  }
  if (options.bench != "all" && !find_bench(options.bench)) die("unknown --bench=" + options.bench);
  if (options.peer != "all" && options.peer != "weft" && options.peer != "boost_fiber" &&
      options.peer != "boost_context") {
    die("unknown --peer=" + options.peer);
  }
  if (options.n && options.bench == "all") die("--n needs a single --bench");
  if (options.n && options.bench == "skynet" && !is_power_of_fan_out(*options.n)) {
    die("skynet: --n must be a power of 10");
  }
  // Only the first tree of a process is cold.
  if (options.in_process && options.peer == "all") die("--in-process needs a single --peer");
  return options;
}

// ------------------------------------------------------------------- running the workloads

void run_yield_pingpong(const Options& options, Report& report) {
  if (options.wants_peer("weft")) {
    weft_yield_pingpong(options.size_or(20'000'000), options.reps, report);
  }
  if (options.wants_peer("boost_context")) {
    boost_context_yield_pingpong(options.size_or(80'000'000), options.reps, report);
  }
  if (options.wants_peer("boost_fiber")) {
    boost_fiber_yield_pingpong(options.size_or(10'000'000), options.reps, report);
  }
}

void run_spawn_join(const Options& options, Report& report) {
  const std::uint64_t tasks = options.size_or(kSpawnTasks);
  if (options.wants_peer("weft")) {
    weft_spawn_join(tasks, options.reps, report);
    weft_spawn_join_two_hubs(tasks, options.reps, report);
  }
  if (options.wants_peer("boost_context")) boost_context_spawn_join(tasks, options.reps, report);
  if (options.wants_peer("boost_fiber")) boost_fiber_spawn_join(tasks, options.reps, report);
}

void run_skynet_here(const std::string& peer, const Options& options, Report& report) {
  const std::uint64_t leaves = options.size_or(kSkynetLeaves);
  if (peer == "weft") weft_skynet(leaves, options.reps, report);
  if (peer == "boost_fiber") boost_fiber_skynet(leaves, options.reps, report);
}

// False if a child process failed.
bool run_skynet(const Options& options, Report& report) {
  std::vector<std::string> peers;
  for (const char* peer : {"weft", "boost_fiber"}) {
    if (options.wants_peer(peer)) peers.emplace_back(peer);
  }
  if (options.in_process) {
    for (const std::string& peer : peers) {
      run_skynet_here(peer, options, report);
    }
    return true;
  }
  bool all_ok = true;
  // Interleaved like run_all.sh: a slow spell of the machine hits every peer alike.
  for (int rep = 0; rep < options.reps; ++rep) {
    for (const std::string& peer : peers) {
      if (!options.lines_only) {
        std::fprintf(stderr, "# skynet %s, rep %d of %d (fresh process)\n", peer.c_str(), rep + 1,
                     options.reps);
      }
      std::vector<std::string> args{"--bench=skynet", "--peer=" + peer, "--reps=1", "--in-process",
                                    "--lines-only"};
      if (options.n) {
        args.push_back(format("--n=%llu", static_cast<unsigned long long>(*options.n)));
      }
      all_ok = run_child(args, report) && all_ok;
    }
  }
  return all_ok;
}

}  // namespace

int main(int argc, char** argv) {
  weft_bench::warn_if_not_a_release_build("runtime_compare");
  const Options options = parse_options(argc, argv);
  if (options.wants_peer("boost_fiber")) {
    // round_robin is Boost.Fiber's default; installed explicitly, as the harness does.
    bf::use_scheduling_algorithm<bf::algo::round_robin>();
  }

  Report report;
  if (options.wants_bench("yield_pingpong")) run_yield_pingpong(options, report);
  if (options.wants_bench("spawn_join")) run_spawn_join(options, report);
  const bool children_ok = !options.wants_bench("skynet") || run_skynet(options, report);
  const int exit_code = children_ok ? 0 : 1;
  if (options.lines_only) return exit_code;
  report.print_tables(options.reps);
  if (options.n) {
    std::printf("\n# targets: not judged (--n changed the workload's size)\n");
  } else {
    report.print_targets();
  }
  return exit_code;
}

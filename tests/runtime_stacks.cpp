// Fiber stacks: size per spawn, overflow reporting, many live fibers, and the
// guard-page budget that vm.max_map_count imposes.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// Touches `bytes` of stack, in a way the optimiser cannot drop.
__attribute__((noinline)) int use_stack(std::size_t bytes) {
  volatile char buffer[4096];
  std::memset(const_cast<char*>(buffer), 1, sizeof buffer);
  if (bytes <= sizeof buffer) return buffer[0];
  return use_stack(bytes - sizeof buffer) + buffer[7];
}

// Overflows its stack on purpose: that is what the guard page must catch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
__attribute__((noinline)) int recurse_forever(int depth) {
  volatile char buffer[1024];
  buffer[0] = static_cast<char>(depth);
  return recurse_forever(depth + 1) + buffer[0];
}
#pragma GCC diagnostic pop

}  // namespace

TEST(Stacks, APerSpawnStackSizeIsHonoured) {
  weft::run([] {
    auto deep = weft::spawn(weft::SpawnOptions{.stack_size = 1024 * 1024},
                            [] { return use_stack(600 * 1024); });
    EXPECT_GT(deep.wait(), 0);
  });
}

TEST(Stacks, AHundredThousandFibersCanBeAliveAtOnce) {
  weft::run([] {
    constexpr int count = 100000;
    int started = 0;
    int finished = 0;
    for (int i = 0; i < count; ++i) {
      weft::spawn_n([&] {
        ++started;
        weft::sleep(1ms);
        ++finished;
      });
    }
    weft::yield();
    EXPECT_EQ(started, count);
    EXPECT_EQ(weft::Hub::current().live_fibers(), static_cast<std::size_t>(count) + 1);
    while (finished < count)
      weft::sleep(1ms);
  });
}

TEST(Stacks, FibersRunOneAfterAnotherReuseTheSameStack) {
  weft::run([] {
    // LIFO reuse: a fiber that starts after another ended gets its (hot) stack,
    // so 50k sequential fibers touch one stack, not 50k.
    const auto frame_address = [] {
      volatile char marker = 0;
      return reinterpret_cast<std::uintptr_t>(&marker);
    };
    // Fibers begin a few cache lines apart in their stack (bind_stack staggers
    // them), and stacks lie a guard page and more apart: a frame within a page
    // of the first fiber's is on its stack.
    const std::uintptr_t first = weft::spawn(frame_address).wait();
    for (int i = 0; i < 50000; ++i) {
      const std::uintptr_t frame = weft::spawn(frame_address).wait();
      ASSERT_LT(frame > first ? frame - first : first - frame, 4096u) << i;
    }
  });
}

using StacksDeathTest = testing::Test;

TEST_F(StacksDeathTest, AnOverflowIsReportedWithTheFiberName) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(weft::run([] {
                 weft::spawn(weft::SpawnOptions{.name = "deep-diver", .stack_size = 32 * 1024}, [] {
                   return recurse_forever(0);
                 }).wait();
               }),
               "weft: stack overflow in fiber #[0-9]+ 'deep-diver'");
}

void raise_sigsegv_without_a_core() {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::raise(SIGSEGV);
  std::_Exit(0);
}

// Before: weft's SIGSEGV handler (for guard pages) returned from a SIGSEGV
// sent by raise() or kill(), which then did nothing: the process lived on.
TEST_F(StacksDeathTest, ASigsegvSentByRaiseStillKillsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  weft::run([] {});  // the handler is installed with the first hub
  EXPECT_EXIT(
      raise_sigsegv_without_a_core(),
      // Killed by it, or (under a sanitizer, whose handler comes before
      // weft's) reported and ended by it: either way, not living on.
      [](int status) { return !(WIFEXITED(status) && WEXITSTATUS(status) == 0); }, "");
}

TEST_F(StacksDeathTest, WhenMprotectGuardsRunOutFibersStillRunAndItIsSaidOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // vm.max_map_count allows ~16k mprotect-guarded stacks; ask for 40k live.
  EXPECT_EXIT(
      {
        setenv("WEFT_STACK_GUARD", "mprotect", 1);
        int finished = 0;
        weft::run([&] {
          constexpr int count = 40000;
          for (int i = 0; i < count; ++i) {
            weft::spawn_n(weft::SpawnOptions{.stack_size = 16 * 1024}, [&] {
              weft::sleep(1ms);
              ++finished;
            });
          }
          while (finished < count)
            weft::sleep(1ms);
        });
        std::exit(finished == 40000 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "no room for more mprotect guard pages");
}

// The program tests/gdb_script_test.sh debugs with scripts/weft-gdb.py: a hub
// whose fibers are suspended in known functions when the program stops itself
// with SIGTRAP. Run on its own (no debugger), the SIGTRAP is ignored and it
// ends cleanly.
//
// Fiber ids are handed out in spawn order from 1, so they are fixed:
//   #1 main      running (it raises the SIGTRAP)
//   #2 sleeper   suspended in gdb_target_sleeper -> weft::sleep
//   #3 waiter    suspended in gdb_target_waiter -> Event::wait
//   #4 yielder   ready, switched out in gdb_target_yielder -> weft::yield
//   #5 fresh     created (spawned, not started: no stack yet)

#include <csignal>
#include <cstdio>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

// noinline and a use after the call: each keeps a frame of its own on the
// fiber's stack, under the name the test looks for.
[[gnu::noinline]] void gdb_target_sleeper() {
  weft::sleep(1h);
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void gdb_target_waiter(weft::Event<void>& event) {
  event.wait();
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void gdb_target_yielder() {
  for (;;)
    weft::yield();
}

int main() {
  std::signal(SIGTRAP, SIG_IGN);  // overridden by a debugger, which stops on it
  return weft::run([] {
    weft::Event<void> event;
    auto sleeper = weft::spawn(weft::SpawnOptions{.name = "sleeper"}, gdb_target_sleeper);
    auto waiter =
        weft::spawn(weft::SpawnOptions{.name = "waiter"}, [&event] { gdb_target_waiter(event); });
    auto yielder = weft::spawn(weft::SpawnOptions{.name = "yielder"}, gdb_target_yielder);
    weft::yield();  // all three run up to their suspension points
    auto fresh = weft::spawn(weft::SpawnOptions{.name = "fresh"}, [] {});
    std::fputs(weft::dump_fibers().c_str(), stdout);
    std::fflush(stdout);
    std::raise(SIGTRAP);
    sleeper.kill();
    yielder.kill();
    event.send();
    waiter.wait();
    fresh.wait();
    return 0;
  });
}

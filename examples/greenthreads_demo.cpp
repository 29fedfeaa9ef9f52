// A tour of weft's greenthread API; prints what it does and ends in well under
// a second.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

void say(const char* what) {
  std::printf("  %s\n", what);
}

int fetch(int id) {
  weft::sleep(std::chrono::milliseconds(10 * id));  // pretend to wait on the network
  return id * id;
}

void spawn_and_wait() {
  std::puts("spawn + wait: three fibers sleep concurrently, results come back in order");
  std::vector<weft::GreenThread<int>> jobs;
  const auto start = std::chrono::steady_clock::now();
  for (int id = 1; id <= 3; ++id)
    jobs.push_back(weft::spawn(fetch, id));
  for (auto& job : jobs)
    std::printf("  fiber #%llu -> %d\n", static_cast<unsigned long long>(job.id()), job.wait());
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::printf("  took %lld ms (not 60: they slept at the same time)\n",
              static_cast<long long>(took.count()));
}

void kill_and_link() {
  std::puts("kill + link: a killed fiber unwinds at its suspension point");
  auto sleeper = weft::spawn(weft::SpawnOptions{.name = "sleeper"}, [] {
    struct Cleanup {
      ~Cleanup() { say("sleeper: destructors run while the kill unwinds the stack"); }
    } cleanup;
    weft::sleep(1h);
  });
  sleeper.link([] { say("link: called once the sleeper has ended"); });
  weft::yield();
  std::printf("%s", weft::dump_fibers().c_str());
  sleeper.kill();
  try {
    sleeper.wait();
  } catch (const weft::FiberExit&) {
    say("wait() rethrows FiberExit for a killed fiber");
  }
}

void timeouts() {
  std::puts("Timeout: a deadline for a whole scope");
  try {
    weft::Timeout deadline(20ms);
    fetch(5);  // 50 ms
  } catch (const weft::TimeoutError& e) {
    std::printf("  %s after 20 ms\n", e.what());
  }
  const int value = weft::with_timeout(
      20ms, [] { return fetch(1); }, -1);
  std::printf("  with_timeout: fetch(1) finished in time -> %d\n", value);
}

void pools() {
  std::puts("GreenPool(2) + GreenPile: at most two at a time, results in spawn order");
  weft::GreenPool pool(2);
  weft::GreenPile<int> pile(pool);
  for (int id : {3, 1, 2})
    pile.spawn(fetch, id);
  std::printf("  running now: %zu, free: %ld\n", pool.running(), pool.free());
  while (!pile.empty())
    std::printf("  result %d\n", pile.next());
}

}  // namespace

int main() {
  weft::run([] {
    std::printf("weft demo on the %s backend\n", weft::backend_name().c_str());
    spawn_and_wait();
    kill_and_link();
    timeouts();
    pools();
  });
  std::puts("done: run() returned, every fiber ended");
}

// Memory per fiber: spawns N fibers, measures the process's resident memory
// (a) with all of them spawned but not yet started and (b) with all of them
// parked on one Event, and prints bytes per fiber for each. The README's
// memory figures come from here.
//   parked_memory [N = 1000000]

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <weft/weft.hpp>

namespace {

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * 4096;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  weft::run([n] {
    weft::Event<> go;
    std::vector<weft::GreenThread<void>> fibers;
    fibers.reserve(static_cast<std::size_t>(n));
    const long before = resident_bytes();
    for (long i = 0; i < n; ++i)
      fibers.push_back(weft::spawn([&go] { go.wait(); }));
    const long spawned = resident_bytes();
    weft::yield();  // every fiber runs to go.wait() and parks
    const long parked = resident_bytes();
    std::printf(
        "fibers %ld: spawned, not started: %.0f bytes each; parked on an Event: %.0f bytes each "
        "(%.2f GB)\n",
        n, double(spawned - before) / n, double(parked - before) / n,
        double(parked - before) / 1e9);
    go.send();
    for (auto& fiber : fibers)
      fiber.wait();
  });
}

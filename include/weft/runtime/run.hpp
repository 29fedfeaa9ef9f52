#pragma once
/// weft::run: the entry point of a greenthread program.

#include <utility>

#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/hub.hpp>

namespace weft {

/// Makes a hub on this thread, runs `main` as its first fiber and returns its
/// result or rethrows its exception. Fibers still alive when `main` ends are
/// killed and unwound before run returns; the hub is then destroyed and every
/// fd it opened is closed. Throws std::logic_error if this thread already
/// runs a hub.
template <class F>
auto run(F main, RunOptions options = {}) -> detail::spawn_result_t<F> {
  Hub hub(options);
  auto main_fiber = hub.spawn(SpawnOptions{.name = "main"}, std::move(main));
  hub.run_until([&] { return main_fiber.dead(); });
  hub.kill_all();
  return main_fiber.wait();
}

}  // namespace weft

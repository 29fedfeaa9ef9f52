#pragma once
/// Runtime: several hubs, each on its own OS thread ("weft-hub-N"),
/// share-nothing. Fibers never migrate; a fiber of any hub may wait for, link
/// to or kill a GreenThread of any other, and wake-ups between hubs travel
/// through the waiter's hub's remote queue.
///
///     weft::Runtime runtime(weft::RuntimeOptions{.hubs = 4});
///     int answer = runtime.run([&] {
///       auto far = runtime.spawn_on(1, [] { return 21; });
///       return far.wait() * 2;
///     });

#include <cstddef>
#include <future>
#include <memory>
#include <stdexcept>
#include <utility>

#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/detail/green_thread_core.hpp>
#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/hub.hpp>
#include <weft/runtime/spawn_options.hpp>

namespace weft {

struct RuntimeOptions {
  /// How many hubs (OS threads); 0 means one per core
  /// (std::thread::hardware_concurrency(), at least 1).
  std::size_t hubs = 0;
  /// The options every hub is made with.
  HubOptions hub = {};
};

namespace detail {
class RuntimeState;
}

class Runtime {
 public:
  /// Starts the hub threads and returns once every hub is running (idle).
  /// Throws what making a hub threw (std::system_error, std::invalid_argument
  /// for a bad WEFT_BACKEND), after stopping the hubs already made.
  explicit Runtime(RuntimeOptions options = {});
  /// stop(), then joins every hub thread. Must not run on one of its own hub
  /// threads.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Runs `main(args...)` as a fiber on hub 0 and blocks the calling thread
  /// until it returns; returns its result or rethrows its exception (FiberExit
  /// if the runtime was stopped meanwhile). Other fibers keep running. From a
  /// thread that runs no hub (std::logic_error otherwise: it would block a hub).
  template <class F, class... Args>
  detail::spawn_result_t<F, Args...> run(F main, Args... args) {
    require_plain_thread("weft::Runtime::run");
    auto handle = spawn_on(0, SpawnOptions{.name = "main"}, std::move(main), std::move(args)...);
    std::promise<void> ended;
    std::future<void> ended_future = ended.get_future();
    handle.link([ended = std::move(ended)]() mutable { ended.set_value(); });
    ended_future.wait();
    return handle.wait();  // finished: returns (or rethrows) without a hub
  }

  /// Spawns `f(args...)` on the next hub, round robin. Any thread (a fiber of
  /// any hub, or a plain thread); never blocks. Same semantics as spawn_on.
  template <detail::not_spawn_options F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> spawn(F&& f, Args&&... args) {
    return spawn_on(next_hub(), SpawnOptions{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> spawn(const SpawnOptions& options, F&& f,
                                                        Args&&... args) {
    return spawn_on(next_hub(), options, std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// Spawns `f(args...)` on hub `hub`: it starts at that hub's next round
  /// (handed over through its remote queue when called from another thread).
  /// Any thread; never blocks. Throws std::out_of_range for a bad index. After
  /// stop(), the fiber never runs and its wait() throws FiberExit.
  template <detail::not_spawn_options F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> spawn_on(std::size_t hub, F&& f, Args&&... args) {
    return spawn_on(hub, SpawnOptions{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> spawn_on(std::size_t hub,
                                                           const SpawnOptions& options, F&& f,
                                                           Args&&... args) {
    using R = detail::spawn_result_t<F, Args...>;
    check_hub_index(hub);
    auto* fiber = new detail::SpawnedFiber<R, std::decay_t<F>, std::decay_t<Args>...>(
        std::forward<F>(f), std::forward<Args>(args)...);
    fiber->add_ref();  // the handle's reference; start_on takes the fiber's own
    GreenThread<R> handle(fiber, detail::AdoptReference{});
    start_on(hub, fiber, options);
    return handle;
  }

  /// Kills and unwinds every hub's fibers and ends the hub threads. Any
  /// thread, any number of times. From a thread that runs none of this
  /// runtime's hubs it returns once they have all ended; from a fiber of one
  /// of them it returns at once (the caller is killed at its next suspension).
  void stop();

  /// How many hubs run (fixed at construction).
  std::size_t hub_count() const noexcept;

 private:
  void check_hub_index(std::size_t hub) const;
  std::size_t next_hub() noexcept;
  void start_on(std::size_t hub, detail::GreenThreadCore* fiber, const SpawnOptions& options);
  static void require_plain_thread(const char* operation);

  std::unique_ptr<detail::RuntimeState> state_;
};

}  // namespace weft

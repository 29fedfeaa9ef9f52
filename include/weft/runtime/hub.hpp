#pragma once
/// The hub: one event loop per OS thread, running that thread's fibers.
///
/// `weft::run` makes one for you. Construct a Hub yourself to embed weft's
/// scheduler in an event loop you already have: watch `poll_fd()`, call
/// `run_once()` when it is readable or when `next_deadline()` has passed.
///
/// fork(): the child has no hub, whatever thread or fiber forked; it may make
/// its own (weft::run, a Hub). What belonged to the parent's hubs (fibers,
/// streams, timers) must not be used in the child: its rings are not mapped
/// there. A child forked from a fiber runs on that fiber's stack; it should
/// end with _exit or exec, never by returning into the parent's fiber.

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/unique_function.hpp>
#include <weft/runtime/green_thread.hpp>

namespace weft {

enum class BackendKind {
  /// io_uring, or epoll (with one line on stderr saying why) where io_uring is
  /// unavailable. The WEFT_BACKEND environment variable (io_uring | epoll)
  /// overrides it; any other value is an error.
  automatic,
  io_uring,
  epoll,
};

struct HubOptions {
  BackendKind backend = BackendKind::automatic;
  /// Stack bytes of a fiber spawned without SpawnOptions::stack_size; 0 means
  /// the build's default (meson option default_stack_size_kib).
  std::size_t default_stack_size = 0;
  /// While a fiber waits for another thread's answer that should come soon
  /// (to_thread::run_sync), the hub polls for it this long before it sleeps:
  /// sleeping and being woken costs far more. 0 disables it.
  std::chrono::nanoseconds remote_spin = std::chrono::microseconds(50);
  /// The clock the hub's timers run on (weft/runtime/clock.hpp): real, or
  /// virtual time for tests, which jumps to the next timer whenever the hub
  /// would wait for it.
  Clock clock = Clock::steady;
};

/// Options of weft::run.
using RunOptions = HubOptions;

/// Receives exceptions that escape spawn_n fibers and link callbacks.
using ErrorHandler = std::function<void(std::string_view fiber_name, std::exception_ptr error)>;

class Hub {
 public:
  /// Makes this thread's hub. Throws std::logic_error if the thread has one,
  /// std::system_error if no backend can be set up, std::invalid_argument for
  /// a WEFT_BACKEND value that names no backend.
  explicit Hub(HubOptions options = {});
  /// Kills and unwinds the fibers still alive, then closes everything the hub
  /// opened. On the thread that made it: elsewhere it throws std::logic_error
  /// and destroys nothing (the hub's ring, fds and fibers belong to that
  /// thread and cannot be touched from this one; they are leaked).
  ~Hub() noexcept(false);
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  /// The calling thread's hub; throws NoHubError if it has none.
  static Hub& current();

  /// Spawns a fiber on this hub; callable from this hub's thread, inside or
  /// outside a fiber. Same semantics as weft::spawn. From any other thread
  /// (a fiber of another hub included) it throws std::logic_error: use post(),
  /// or Runtime::spawn_on for hubs of a Runtime.
  template <detail::not_spawn_options F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> spawn(F&& f, Args&&... args) {
    require_own_thread("weft::Hub::spawn");
    return weft::spawn(std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  GreenThread<detail::spawn_result_t<F, Args...>> spawn(const SpawnOptions& options, F&& f,
                                                        Args&&... args) {
    require_own_thread("weft::Hub::spawn");
    return weft::spawn(options, std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// Runs `f` on this hub's thread, outside any fiber, at its next round.
  /// Callable from any thread; never blocks. Throws std::invalid_argument if
  /// `f` is empty.
  void post(detail::UniqueFunction<void()> f);

  /// One scheduling round: collects I/O completions, remote posts and due
  /// timers, waiting at most `max_wait` for one of them if no fiber is ready,
  /// then runs every fiber that is ready. A zero or negative `max_wait` does
  /// not wait. On virtual time, a round that finds nothing to run while a
  /// timer is pending moves the clock to that timer instead of waiting.
  ///
  /// run_once, run, run_until, kill_all and next_deadline are for this hub's
  /// thread only, outside its fibers; elsewhere they throw std::logic_error.
  void run_once(std::chrono::nanoseconds max_wait = {});
  /// Runs rounds until nothing is left to do (no fiber alive or scheduled) or
  /// stop() is called.
  void run();
  /// Runs rounds until `done()` is true (checked after every round). From this
  /// hub's thread, outside any fiber.
  void run_until(const std::function<bool()>& done);
  /// Kills every fiber of this hub and runs rounds until all have unwound
  /// (a fiber that catches FiberExit and suspends again is killed again).
  void kill_all();
  /// Makes run() return after the current round. Callable from any thread.
  void stop();

  /// Time left until the hub has work: zero if fibers are ready or a timer is
  /// due (on virtual time: pending), nullopt if nothing is scheduled. Never
  /// negative.
  std::optional<std::chrono::nanoseconds> next_deadline() const;
  /// An fd that is readable while the hub has work that arrived from outside
  /// (I/O completions, posts from other threads). Call it from the hub's
  /// thread; run_once() consumes what made it readable.
  int poll_fd() const noexcept;

  /// "io_uring" or "epoll".
  std::string_view backend_name() const noexcept;
  void set_error_handler(ErrorHandler handler);
  /// Fibers spawned on this hub that have not ended yet.
  std::size_t live_fibers() const noexcept;

 private:
  /// Throws std::logic_error unless called on the thread that made the hub.
  void require_own_thread(const char* operation) const;

  std::unique_ptr<detail::HubCore> core_;
};

/// The current hub's backend name: "io_uring" or "epoll". From a hub's thread.
std::string backend_name();

}  // namespace weft

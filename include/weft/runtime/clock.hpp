#pragma once
/// The hub's clock: what every timer in weft reads (sleep, sleep_until,
/// Timeout, spawn_after, the `*_for` / `*_until` waits of sync objects, io
/// deadlines, looping calls, thread groups). Only spins that wait for another
/// thread's answer keep the real clock.

#include <chrono>

namespace weft {

/// Which clock a hub runs on (HubOptions::clock).
enum class Clock {
  /// steady_clock.
  steady,
  /// Virtual time, for tests of time-dependent code: the clock starts at
  /// steady_clock::now() and moves only by jumps. Whenever the hub would
  /// wait (no fiber ready, no io completion or post found by a non-blocking
  /// poll) it sets its clock to the earliest timer's deadline and fires every
  /// timer due then, at once in real time: sleep(1h) returns at once with
  /// now() advanced by exactly one hour, and fibers interleave as they would
  /// in real time with free computation.
  ///
  /// io and other threads still work, but neither pending io nor a wait for
  /// another thread (to_thread, a join, a name lookup) holds the clock back:
  /// a Timeout around a real read, or connect's timeout, may fire at once in
  /// real time (io deadlines are hub timers then, on io_uring too). With no
  /// timer pending the hub waits for real, and a timer at the largest
  /// deadline (sleep(hours::max())) never counts as pending. Each hub of a
  /// Runtime keeps its own clock. Embedded, next_deadline() is zero while a
  /// timer is pending: run_once() makes the jump, whatever its max_wait.
  virtual_time,
};

/// The current hub's clock (on its thread, inside or outside fibers);
/// steady_clock::now() on a thread without a hub. A virtual clock counts
/// from steady_clock's epoch too, so its instants are what sleep_until and
/// ConditionVariable::wait_until take. Any thread.
std::chrono::steady_clock::time_point now();

}  // namespace weft

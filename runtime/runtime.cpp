#include <weft/runtime/log.hpp>
#include <weft/runtime/runtime.hpp>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <weft/runtime/errors.hpp>

#include "runtime/hub_core.hpp"

namespace weft {

namespace detail {

namespace {
// The runtime whose hub runs on this thread, if any.
thread_local const RuntimeState* this_thread_runtime = nullptr;
}  // namespace

// Shutdown. A hub may be destroyed only when no other thread can still post
// to it or kick it. Fibers keep their hub alive on their own: a wake-up or a
// kill is posted only to a fiber that has not finished, under a lock that the
// fiber must take to finish (ParkingLot, GreenThreadCore::kill), and a hub
// ends only after all its fibers have. What remains are visits from outside,
// spawn_on and stop(): a visitor registers in `visitors` and then reads
// `stopping`; a hub thread reads `stopping`, then waits for `visitors` to
// drop to zero (all seq_cst, a Dekker pair). So either the visitor sees
// `stopping` and stays away, or the hub waits for it and runs what it posted.
class RuntimeState {
 public:
  struct HubSlot {
    std::thread thread;
    HubCore* core = nullptr;  // written once by the hub thread, under startup_mutex
  };

  explicit RuntimeState(const RuntimeOptions& options)
      : hub_options(options.hub),
        hubs(options.hubs ? options.hubs : std::max(1u, std::thread::hardware_concurrency())) {}

  void hub_main(std::size_t index) noexcept;
  bool runs_on_own_hub() const noexcept { return this_thread_runtime == this; }

  const HubOptions hub_options;
  std::vector<HubSlot> hubs;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> visitors{0};
  std::atomic<std::size_t> next_hub{0};

  std::mutex startup_mutex;
  std::condition_variable startup_done;
  std::size_t hubs_started = 0;  // made or failed
  std::exception_ptr startup_error;

  std::mutex join_mutex;
};

namespace {

/// Registered as a visitor of the runtime's hubs for the scope.
class Visit {
 public:
  explicit Visit(RuntimeState& state) : state_(state) {
    state_.visitors.fetch_add(1, std::memory_order_seq_cst);
  }
  ~Visit() { state_.visitors.fetch_sub(1, std::memory_order_release); }
  Visit(const Visit&) = delete;
  Visit& operator=(const Visit&) = delete;

 private:
  RuntimeState& state_;
};

/// The posted half of spawn_on, run by the target hub. Dropped unrun, it ends
/// the fiber unstarted, so its waiters never hang.
class PendingStart {
 public:
  PendingStart(GreenThreadCore* fiber, const std::atomic<bool>& stopping) noexcept
      : fiber_(fiber), stopping_(&stopping) {}
  PendingStart(PendingStart&& other) noexcept
      : fiber_(std::exchange(other.fiber_, nullptr)), stopping_(other.stopping_) {}
  PendingStart& operator=(PendingStart&&) = delete;
  ~PendingStart() {
    if (fiber_) fiber_->abort_unstarted(nullptr);
  }

  void operator()() {
    GreenThreadCore* fiber = std::exchange(fiber_, nullptr);
    HubCore& hub = *HubCore::current();
    hub.enqueue(fiber, std::nullopt);
    // Posted just before stop(): killed before it starts, so it never runs.
    if (stopping_->load(std::memory_order_acquire)) hub.kill(fiber, nullptr);
  }

 private:
  GreenThreadCore* fiber_;
  const std::atomic<bool>* stopping_;
};

}  // namespace

void RuntimeState::hub_main(std::size_t index) noexcept {
  const std::string name = "weft-hub-" + std::to_string(index);
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
  this_thread_runtime = this;
  std::optional<Hub> hub;
  try {
    try {
      hub.emplace(hub_options);
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), "weft::Runtime: making hub " + std::to_string(index) +
                                            " of " + std::to_string(hubs.size()) + ": " + e.what());
    }
  } catch (...) {
    std::lock_guard lock(startup_mutex);
    if (!startup_error) startup_error = std::current_exception();
    ++hubs_started;
    startup_done.notify_all();
    return;
  }
  HubCore& core = *HubCore::current();
  {
    std::lock_guard lock(startup_mutex);
    hubs[index].core = &core;
    ++hubs_started;
    startup_done.notify_all();
  }
  // Idle hubs sleep in their backend; stop() kicks them. The hub must keep
  // going until then whatever happens: other threads may post to it.
  const auto stop_seen = [this] { return stopping.load(std::memory_order_seq_cst); };
  while (!stop_seen()) {
    try {
      core.run_until(stop_seen);
    } catch (...) {
      core.report_error(name, std::current_exception());
    }
  }
  while (visitors.load(std::memory_order_seq_cst) != 0)
    ::sched_yield();
  // Kill and unwind every fiber; run what was posted meanwhile (wake-ups for
  // fibers that are ending, starts that PendingStart turns into kills).
  for (;;) {
    try {
      core.kill_all();
      if (core.idle()) break;
      core.run_round(core.next_deadline(), false);
    } catch (...) {
      core.report_error(name, std::current_exception());
    }
  }
  hub.reset();  // on its own thread, as a Hub must be
}

}  // namespace detail

namespace {

std::thread start_hub_thread(detail::RuntimeState& state, std::size_t index) {
  try {
    return std::thread([&state, index] { state.hub_main(index); });
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "weft::Runtime: starting the thread of hub " +
                                          std::to_string(index) + " of " +
                                          std::to_string(state.hubs.size()));
  }
}

}  // namespace

Runtime::Runtime(RuntimeOptions options) : state_(std::make_unique<detail::RuntimeState>(options)) {
  auto& state = *state_;
  try {
    for (std::size_t i = 0; i < state.hubs.size(); ++i)
      state.hubs[i].thread = start_hub_thread(state, i);
  } catch (...) {
    {
      std::lock_guard lock(state.startup_mutex);
      state.startup_error = std::current_exception();
    }
    stop();
    throw;
  }
  std::exception_ptr error;
  {
    std::unique_lock lock(state.startup_mutex);
    state.startup_done.wait(lock, [&] { return state.hubs_started == state.hubs.size(); });
    error = state.startup_error;
  }
  if (error) {
    stop();
    std::rethrow_exception(error);
  }
}

Runtime::~Runtime() {
  if (state_->runs_on_own_hub()) {
    detail::log(LogLevel::error,
                "a Runtime destroyed on one of its own hub threads (it cannot join itself)");
    std::abort();
  }
  stop();
}

void Runtime::stop() {
  auto& state = *state_;
  {
    detail::Visit visit(state);
    if (!state.stopping.exchange(true, std::memory_order_seq_cst)) {
      std::lock_guard lock(state.startup_mutex);
      for (auto& slot : state.hubs) {
        if (slot.core) slot.core->request_stop();
      }
    }
  }
  if (state.runs_on_own_hub()) return;  // the hub thread ends after this fiber is killed
  std::lock_guard lock(state.join_mutex);
  for (auto& slot : state.hubs) {
    if (slot.thread.joinable()) slot.thread.join();
  }
}

std::size_t Runtime::hub_count() const noexcept {
  return state_->hubs.size();
}

void Runtime::check_hub_index(std::size_t hub) const {
  if (hub >= state_->hubs.size()) {
    throw std::out_of_range("weft::Runtime::spawn_on: no hub " + std::to_string(hub) + " (" +
                            std::to_string(state_->hubs.size()) + " hubs)");
  }
}

std::size_t Runtime::next_hub() noexcept {
  return state_->next_hub.fetch_add(1, std::memory_order_relaxed) % state_->hubs.size();
}

void Runtime::start_on(std::size_t hub, detail::GreenThreadCore* fiber,
                       const SpawnOptions& options) {
  auto& state = *state_;
  detail::Visit visit(state);
  if (state.stopping.load(std::memory_order_seq_cst)) {
    fiber->abort_unstarted(nullptr);
    return;
  }
  detail::HubCore* target = state.hubs[hub].core;
  if (detail::HubCore::current() == target) {
    target->start(fiber, options, std::nullopt);  // its own hub: straight to the ready queue
    return;
  }
  target->prepare(fiber, options);
  target->post(detail::PendingStart(fiber, state.stopping));
}

void Runtime::require_plain_thread(const char* operation) {
  if (detail::HubCore::current()) {
    throw std::logic_error(std::string(operation) +
                           ": called on a hub's thread (it would block the hub)");
  }
}

}  // namespace weft

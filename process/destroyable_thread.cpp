#include <weft/process/destroyable.hpp>

#include <mutex>
#include <string>

#include <weft/runtime/detail/event_count.hpp>
#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/spawn_options.hpp>

#include "process/hub_worker.hpp"
#include "runtime/hub_core.hpp"

namespace weft::detail {

struct DestroyableWork::State {
  mutable std::mutex mutex;
  Phase phase = Phase::not_started;
  bool destroyed = false;
  bool canceled = false;
  bool ran = false;
  bool threw = false;
  std::exception_ptr error;
  // While the work's fiber runs: its hub (where destroy() posts) and the fiber.
  Hub* hub = nullptr;
  GreenThreadCore* fiber = nullptr;
  bool destroy_delivered = false;  // DestroyDelivery::once_started
  EventCount changed;              // notified once done
};

namespace {

std::exception_ptr destroy_error() {
  return std::make_exception_ptr(ThreadDestroyedError{});
}

bool is_destroy_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const ThreadDestroyedError&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

DestroyableWork::DestroyableWork(DestroyableOptions options)
    : options_(options), state_(std::make_unique<State>()) {}

DestroyableWork::~DestroyableWork() = default;

void DestroyableWork::start() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->phase != Phase::not_started || state_->destroyed) return;
    state_->phase = Phase::launched;
  }
  bool launched = false;
  try {
    launch();
    launched = true;
    run_on_hub_worker(
        [self = shared_from_this()](Hub* hub, std::exception_ptr no_hub) {
          if (!hub) {
            self->abandon_launch();
            return self->finish_unrun(std::move(no_hub));
          }
          self->run_on(*hub);
        },
        [self = shared_from_this()] { self->complete(); });
  } catch (...) {
    if (launched) abandon_launch();
    std::unique_lock lock(state_->mutex);
    if (!state_->destroyed) {
      state_->phase = Phase::not_started;
      throw;
    }
    // destroy() came meanwhile and found the work launched: it ends here.
    lock.unlock();
    finish_unrun(pre_cancel_error());
    complete();
    throw;
  }
}

void DestroyableWork::run_on(Hub& hub) noexcept {
  std::exception_ptr outcome;
  try {
    GreenThread<void> fiber =
        hub.spawn(SpawnOptions{.name = "destroyable work"}, [this] { run_work(); });
    GreenThreadCore& core = GreenThreadAccess::core(fiber);
    bool destroyed_already;
    {
      std::lock_guard lock(state_->mutex);
      state_->hub = &hub;
      state_->fiber = &core;
      destroyed_already = state_->destroyed;
    }
    if (destroyed_already) deliver_destroy();  // before the work begins: it never does
    hub.run_until([&] {
      if (core.finished()) return true;
      // Again after every round: a work that caught the last one and
      // suspended once more gets another at that suspension point.
      deliver_destroy();
      return false;
    });
    outcome = core.error();
    {
      std::lock_guard lock(state_->mutex);
      state_->hub = nullptr;
      state_->fiber = nullptr;
    }
    hub.kill_all();  // fibers the work spawned and left behind
  } catch (...) {
    // Only spawning can throw here (no memory for the fiber): the work never began.
    {
      std::lock_guard lock(state_->mutex);
      state_->hub = nullptr;
      state_->fiber = nullptr;
    }
    return finish_unrun(std::current_exception());
  }
  finish(std::move(outcome));
}

void DestroyableWork::deliver_destroy() noexcept {
  GreenThreadCore* fiber;
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->destroyed || !state_->fiber) return;
    fiber = state_->fiber;
  }
  // On the fiber's hub thread, outside its fibers: the fiber is suspended (or
  // not begun) and cannot end meanwhile.
  if (fiber->finished() || HubCore::kill_pending(*fiber)) return;
  if (destroy_delivery() == DestroyDelivery::once_started) {
    // Not begun: the work sees destroyed() when it begins. Once thrown: not again.
    if (!fiber->started() || state_->destroy_delivered) return;
    state_->destroy_delivered = true;
  }
  try {
    fiber->kill(destroy_error(), false);
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("weft: destroying work failed: ") + e.what());
  }
}

bool DestroyableWork::take_destroy() noexcept {
  std::lock_guard lock(state_->mutex);
  if (state_->destroyed) state_->destroy_delivered = true;
  return state_->destroyed;
}

void DestroyableWork::stop_destroy_delivery() noexcept {
  std::lock_guard lock(state_->mutex);
  state_->destroy_delivered = true;
}

void DestroyableWork::destroy() noexcept {
  std::unique_lock lock(state_->mutex);
  if (state_->destroyed) return;
  state_->destroyed = true;
  if (state_->phase == Phase::not_started) {
    // Never handed to a worker: it never will be.
    lock.unlock();
    finish_unrun(pre_cancel_error());
    return complete();
  }
  if (state_->phase != Phase::launched || !state_->hub) return;  // ended, or the worker will see it
  try {
    state_->hub->post([self = shared_from_this()] { self->deliver_destroy(); });
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("weft: destroy() could not reach the work: ") + e.what());
  }
}

void DestroyableWork::finish(std::exception_ptr outcome) noexcept {
  std::lock_guard lock(state_->mutex);
  state_->phase = Phase::ended;
  state_->ran = true;
  // The one place where a destroy and the work's own end are ordered.
  Settled settled = settle(std::move(outcome), state_->destroyed);
  state_->canceled = settled.canceled;
  state_->threw = settled.threw;
  state_->error = std::move(settled.error);
}

DestroyableWork::Settled DestroyableWork::settle(std::exception_ptr outcome, bool destroyed) {
  if (!outcome) return {};
  if (destroyed) {
    return {.canceled = true,
            .threw = false,
            .error = is_destroy_error(outcome) ? std::move(outcome) : destroy_error()};
  }
  return {.canceled = false, .threw = true, .error = std::move(outcome)};
}

std::exception_ptr DestroyableWork::pre_cancel_error() const {
  return destroy_error();
}

std::exception_ptr DestroyableWork::result_error() const {
  return error();
}

void DestroyableWork::finish_unrun(std::exception_ptr why) noexcept {
  {
    std::lock_guard lock(state_->mutex);
    const bool launched = state_->phase == Phase::launched;
    state_->phase = Phase::ended;
    state_->ran = launched;
    state_->canceled = state_->destroyed;
    state_->error = state_->destroyed ? pre_cancel_error() : std::move(why);
  }
}

void DestroyableWork::complete() noexcept {
  if (on_complete_) on_complete_();
  if (Event<>* event = options_.completion_event) {
    try {
      event->send();
    } catch (const std::exception& e) {
      log(LogLevel::warning,
          std::string("weft: the completion event of destroyable work was not sent: ") + e.what());
    }
  }
  done_.store(true, std::memory_order_release);
  state_->changed.notify_all();
}

bool DestroyableWork::never_started() const {
  std::lock_guard lock(state_->mutex);
  return state_->phase == Phase::not_started && !state_->destroyed;
}

bool DestroyableWork::called_from_the_work() const noexcept {
  std::lock_guard lock(state_->mutex);
  return state_->fiber && current_fiber() == state_->fiber;
}

bool DestroyableWork::join(std::optional<std::chrono::nanoseconds> timeout) {
  if (done()) return true;
  if (never_started()) return false;
  if (called_from_the_work()) {
    throw std::logic_error(
        "weft::DestroyableThread::join from the work itself (it would wait for itself)");
  }
  return state_->changed.wait_until([this] { return done(); },
                                    EventCount::caller_deadline(timeout));
}

void DestroyableWork::join_ignoring_interrupts() noexcept {
  if (done() || never_started() || called_from_the_work()) return;
  state_->changed.wait_until_ignoring_interrupts([this] { return done(); });
}

void DestroyableWork::wait_for_result() {
  if (never_started()) {
    throw std::logic_error("weft: get_or_throw on destroyable work that was never started");
  }
  join(std::nullopt);
  if (std::exception_ptr error = result_error()) std::rethrow_exception(error);
}

bool DestroyableWork::destroyed() const {
  std::lock_guard lock(state_->mutex);
  return state_->destroyed;
}

bool DestroyableWork::canceled() const {
  std::lock_guard lock(state_->mutex);
  return state_->canceled;
}

bool DestroyableWork::ran() const {
  std::lock_guard lock(state_->mutex);
  return state_->ran;
}

bool DestroyableWork::threw() const {
  std::lock_guard lock(state_->mutex);
  return state_->threw;
}

std::exception_ptr DestroyableWork::error() const {
  std::lock_guard lock(state_->mutex);
  return state_->error;
}

}  // namespace weft::detail

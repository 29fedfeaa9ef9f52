#include <weft/runtime/thread_group.hpp>

#include <algorithm>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>

#include <weft/runtime/errors.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/sleep.hpp>

#include "runtime/hub_core.hpp"

namespace weft {

namespace detail {

void GroupThreads::remove(const GreenThreadCore& core) noexcept {
  auto it = std::find_if(alive.begin(), alive.end(),
                         [&](const GroupThread& thread) { return &thread.core() == &core; });
  if (it != alive.end()) alive.erase(it);
}

}  // namespace detail

namespace {

bool is_caller(const detail::FiberBase& fiber) noexcept {
  return &fiber == detail::current_fiber();
}

// What the group swallows when it waited for a thread or a timer's loop.
void log_outcome(const char* what, const std::exception_ptr& error) noexcept {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const FiberExit& e) {
    detail::log(LogLevel::debug, std::string("ThreadGroup: ") + what + " was killed: " + e.what());
  } catch (const std::exception& e) {
    detail::log(LogLevel::error, std::string("ThreadGroup: ") + what + " failed: " + e.what());
  } catch (...) {
    detail::log(LogLevel::error,
                std::string("ThreadGroup: ") + what + " failed with a non-standard exception");
  }
}

// A stopped timer whose callback may still be running: the group lets go of
// it, but its loop's fiber keeps it until the callback has returned (its
// destructor would kill the callback).
void release_when_ended(std::shared_ptr<LoopingCall<>> timer) {
  const GreenThread<void>& fiber = detail::LoopingCallAccess::fiber(*timer);
  if (fiber && !fiber.dead()) fiber.link([keep = std::move(timer)] {});
}

std::chrono::nanoseconds checked_seconds(std::chrono::duration<double> seconds, const char* name,
                                         bool zero_allowed) {
  if (std::isnan(seconds.count()) || seconds.count() < 0 || (!zero_allowed && seconds.count() == 0))
    throw std::invalid_argument(std::string("weft::ThreadGroup::cancel: ") + name + " must be " +
                                (zero_allowed ? "zero or more" : "positive") + " seconds");
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::min(seconds, std::chrono::duration<double>(std::chrono::nanoseconds::max() / 2)));
}

}  // namespace

ThreadGroup::ThreadGroup(std::size_t thread_pool_size)
    : hub_(&detail::current_hub_core("weft::ThreadGroup")), pool_(thread_pool_size) {
  detail::current_hub_core("weft::ThreadGroup").require_fiber("weft::ThreadGroup");
}

ThreadGroup::~ThreadGroup() {
  for (auto& timer : timers_) {
    timer->stop();
    release_when_ended(std::move(timer));
  }
  timers_.clear();
  const bool in_a_fiber = detail::current_fiber() != nullptr;
  for (const detail::GroupThread& thread : others())
    thread.core().kill_deferring_interrupts();
  if (!in_a_fiber) return;
  for (const detail::GroupThread& thread : others())
    thread.core().wait_deferring_interrupts();
}

void ThreadGroup::check_hub(const char* operation) const {
  if (&detail::current_hub_core(operation) != hub_) {
    throw std::logic_error(std::string(operation) +
                           ": a ThreadGroup is used from fibers of the hub that made it");
  }
}

void ThreadGroup::adopt(detail::GreenThreadCore& core) {
  threads_->alive.emplace_back(core);
  // It leaves the group when it ends, however it ends (at once if it ran inline).
  core.add_link(
      [threads = std::weak_ptr<detail::GroupThreads>(threads_)](detail::GreenThreadCore& ended) {
        if (auto group = threads.lock()) group->remove(ended);
      });
}

void ThreadGroup::keep(std::shared_ptr<LoopingCall<>> timer) {
  timers_.push_back(std::move(timer));
}

std::size_t ThreadGroup::thread_count() const {
  check_hub("weft::ThreadGroup::thread_count");
  return threads_->alive.size();
}

std::size_t ThreadGroup::timer_count() const {
  check_hub("weft::ThreadGroup::timer_count");
  return timers_.size();
}

void ThreadGroup::timer_done(const std::shared_ptr<LoopingCall<>>& timer) {
  check_hub("weft::ThreadGroup::timer_done");
  std::erase(timers_, timer);
}

std::vector<detail::GroupThread> ThreadGroup::others() const {
  std::vector<detail::GroupThread> others;
  for (const detail::GroupThread& thread : threads_->alive)
    if (!is_caller(thread.core())) others.push_back(thread);
  return others;
}

bool ThreadGroup::any_other_thread_alive() const {
  return std::any_of(threads_->alive.begin(), threads_->alive.end(),
                     [](const detail::GroupThread& thread) {
                       return !is_caller(thread.core()) && !thread.core().finished();
                     });
}

void ThreadGroup::kill_threads() {
  for (const detail::GroupThread& thread : others())
    thread.core().kill(nullptr, false);  // from this hub: the target unwinds before kill returns
  wait_threads();
}

void ThreadGroup::wait_threads() {
  for (const detail::GroupThread& thread : others()) {
    thread.core().wait_finished();  // throws only what is aimed at the caller
    log_outcome("a thread", thread.core().error());
  }
}

void ThreadGroup::wait_timers() {
  // A copy: a timer callback may change the group while this one waits.
  const auto timers = timers_;
  for (const auto& timer : timers) {
    const GreenThread<void>& fiber = detail::LoopingCallAccess::fiber(*timer);
    if (!fiber || is_caller(detail::GreenThreadAccess::core(fiber))) continue;
    detail::GreenThreadAccess::core(fiber)
        .wait_finished();  // throws only what is aimed at the caller
    try {
      timer->wait();  // the loop has ended: its outcome, at once
    } catch (...) {
      log_outcome("a timer", std::current_exception());
    }
  }
}

void ThreadGroup::stop_timers(bool wait) {
  check_hub("weft::ThreadGroup::stop_timers");
  for (const auto& timer : timers_)
    timer->stop();
  if (wait) wait_timers();
  for (auto& timer : timers_)
    release_when_ended(std::move(timer));
  timers_.clear();
}

void ThreadGroup::stop(bool graceful) {
  check_hub("weft::ThreadGroup::stop");
  detail::current_hub_core("weft::ThreadGroup::stop").require_fiber("weft::ThreadGroup::stop");
  stop_timers(graceful);
  if (graceful) {
    wait_threads();
  } else {
    kill_threads();
  }
}

void ThreadGroup::wait() {
  check_hub("weft::ThreadGroup::wait");
  detail::current_hub_core("weft::ThreadGroup::wait").require_fiber("weft::ThreadGroup::wait");
  wait_timers();
  wait_threads();
}

void ThreadGroup::cancel(std::optional<std::chrono::duration<double>> timeout,
                         std::chrono::duration<double> wait_time) {
  check_hub("weft::ThreadGroup::cancel");
  detail::current_hub_core("weft::ThreadGroup::cancel").require_fiber("weft::ThreadGroup::cancel");
  const auto pause = checked_seconds(wait_time, "wait_time", false);
  const auto limit =
      timeout ? std::optional(checked_seconds(*timeout, "timeout", true)) : std::nullopt;
  for (const detail::GroupThread& thread : others())
    thread.core().kill(nullptr, true);  // only those that have not started
  if (!limit) return;
  const auto started = now();
  while (any_other_thread_alive()) {
    if (now() - started >= *limit) {
      stop();
      return;
    }
    sleep(pause);
  }
}

}  // namespace weft

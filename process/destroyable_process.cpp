#include <sys/wait.h>

#include <signal.h>

#include <stdexcept>
#include <string>
#include <utility>

#include <weft/process/child_error.hpp>
#include <weft/process/destroyable.hpp>
#include <weft/process/process_entry.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/green_thread.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/spawn_options.hpp>

#include "process/child_process.hpp"
#include "process/child_report.hpp"

namespace weft::detail {

ProcessWork::ProcessWork(DestroyableOptions options, UniqueFunction<std::string()> fork_body)
    : DestroyableWork(options),
      grace_(saturating_ns(options.destroy_grace_period)),
      fork_body_(std::move(fork_body)) {}

ProcessWork::ProcessWork(DestroyableOptions options, std::string entry, std::string arguments)
    : DestroyableWork(options),
      grace_(saturating_ns(options.destroy_grace_period)),
      entry_(std::move(entry)),
      arguments_(std::move(arguments)) {}

ProcessWork::~ProcessWork() = default;

void ProcessWork::launch() {
  if (!entry_.empty()) {
    if (!process_main_was_called()) {
      throw std::logic_error(
          "weft: StartMethod::spawn needs weft::process_main(argc, argv) called first thing in "
          "main (the child would run main again)");
    }
    child_ = std::make_unique<ChildProcess>(ChildProcess::spawn_entry(entry_));
  } else {
    child_ = std::make_unique<ChildProcess>(ChildProcess::fork_running(
        [this](int report_fd) { report_outcome(report_fd, std::move(fork_body_)); }));
  }
  pid_.store(child_->pid(), std::memory_order_release);
}

void ProcessWork::abandon_launch() noexcept {
  child_.reset();
}

void ProcessWork::run_work() {
  FrameReader frames;
  auto feed = [&frames](std::string_view bytes) { frames.feed(bytes); };
  // Drains the report pipe while this fiber waits for the exit, so that a
  // report larger than the pipe cannot block the child.
  GreenThread<void> reader;
  try {
    if (take_destroy()) throw ThreadDestroyedError{};
    reader = weft::spawn(SpawnOptions{.name = "child report reader"}, [this, &feed] {
      if (!entry_.empty()) child_->send_arguments(arguments_);
      child_->read_reports(feed);
    });
    child_->wait_exited(std::nullopt);
  } catch (const ThreadDestroyedError&) {
    end_destroyed_child();
  }
  stop_destroy_delivery();  // the child has exited: a destroy now changes nothing
  if (reader) {
    // Its last read may hold data: a kill lets it deliver that first.
    GreenThreadCore& core = GreenThreadAccess::core(reader);
    core.kill_deferring_interrupts();
    core.wait_deferring_interrupts();
    try {
      if (core.error()) std::rethrow_exception(core.error());
    } catch (const FiberExit&) {
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("weft: reading a child's report failed: ") + e.what());
    }
  }
  child_->drain_reports(feed);  // what it wrote last, if the reader had not read it yet
  status_ = child_->reap();
  if (std::optional<std::string> outcome = frames.next_frame()) {
    reported_ = true;
    result_ = decode_outcome(*outcome, child_error_);
  }
}

void ProcessWork::end_destroyed_child() {
  if (child_->exited()) return;  // it ended on its own: not canceled
  destroyed_while_alive_ = true;
  child_->terminate();
  if (child_->wait_exited(deadline_after(grace_))) return;
  child_->kill();
  sigkill_sent_ = true;
  child_->wait_exited(std::nullopt);
}

DestroyableWork::Settled ProcessWork::settle(std::exception_ptr outcome, bool destroyed) {
  const std::string who = "Process " + std::to_string(pid());
  if (outcome) return {.canceled = destroyed, .threw = false, .error = std::move(outcome)};
  Settled settled{.canceled = destroyed_while_alive_, .threw = false, .error = nullptr};
  if (child_error_) {
    settled.threw = true;
    settled.error = child_error_;
    return settled;
  }
  const bool sigkilled = WIFSIGNALED(status_) && WTERMSIG(status_) == SIGKILL;
  const bool exit_137 = WIFEXITED(status_) && WEXITSTATUS(status_) == 137;
  if ((sigkilled && !sigkill_sent_) || exit_137) {
    settled.error = std::make_exception_ptr(ChildOutOfMemoryError(who + " died with OOM error"));
    return settled;
  }
  if (settled.canceled) return settled;
  if (!(WIFEXITED(status_) && WEXITSTATUS(status_) == 0)) {
    settled.error = std::make_exception_ptr(
        std::runtime_error(who + " died with " + describe_wait_status(status_)));
  } else if (!reported_) {
    settled.error =
        std::make_exception_ptr(std::runtime_error(who + " exited before it reported a result"));
  }
  return settled;
}

std::exception_ptr ProcessWork::pre_cancel_error() const {
  return std::make_exception_ptr(std::runtime_error("Not starting work on pre-canceled process"));
}

std::exception_ptr ProcessWork::result_error() const {
  if (std::exception_ptr error = this->error()) return error;
  if (canceled()) return std::make_exception_ptr(std::runtime_error("process was destroyed"));
  return nullptr;
}

void ProcessWork::destroy_and_wait() {
  destroy();
  join(std::nullopt);
}

}  // namespace weft::detail

#include <sys/wait.h>

#include <signal.h>
#include <unistd.h>

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

ProcessWork::ProcessWork(DestroyableOptions options, UniqueFunction<std::string(int)> fork_body,
                         ChildReportHooks hooks)
    : DestroyableWork(options),
      grace_(saturating_ns(options.destroy_grace_period)),
      fork_body_(std::move(fork_body)),
      hooks_(std::move(hooks)) {}

ProcessWork::ProcessWork(DestroyableOptions options, StartMethod method, std::string entry,
                         std::string arguments, ChildReportHooks hooks)
    : DestroyableWork(options),
      grace_(saturating_ns(options.destroy_grace_period)),
      hooks_(std::move(hooks)),
      method_(method),
      entry_(std::move(entry)),
      arguments_(std::move(arguments)) {}

ProcessWork::~ProcessWork() {
  if (channel_fd_ >= 0) ::close(channel_fd_);
}

void ProcessWork::launch() {
  const bool capture = hooks_.output_capture_bytes > 0;
  if (!entry_.empty()) {
    if (!process_main_was_called()) {
      throw std::logic_error(
          "weft: StartMethod::spawn and forkserver need weft::process_main(argc, argv) called "
          "first thing in main (the child would run main again)");
    }
    child_ = std::make_unique<ChildProcess>(method_ == StartMethod::spawn
                                                ? ChildProcess::spawn_entry(entry_, capture)
                                                : ChildProcess::serve_entry(entry_, capture));
  } else {
    child_ = std::make_unique<ChildProcess>(ChildProcess::fork_running(
        [this](int report_fd) {
          report_outcome(report_fd, [this, report_fd] { return fork_body_(report_fd); });
        },
        capture));
  }
  pid_.store(child_->pid(), std::memory_order_release);
  if (hooks_.on_start) hooks_.on_start(pid());
  if (hooks_.keep_channel) channel_fd_ = child_->release_arguments_fd();
}

void ProcessWork::abandon_launch() noexcept {
  child_.reset();
}

void ProcessWork::run_work() {
  FrameReader frames;
  std::optional<std::string> outcome;
  std::string output;  // the tail of the child's stdout and stderr, when captured
  // Frames go to the hook as they come; without one, the first is the
  // outcome (with on_message: the first that is not a message).
  auto feed = [this, &frames, &outcome](std::string_view bytes) {
    frames.feed(bytes);
    if (!hooks_.on_frame && !hooks_.on_message) return;
    while (std::optional<std::string> frame = frames.next_frame()) {
      if (hooks_.on_frame) {
        hooks_.on_frame(pid(), *frame);
      } else if (!frame->empty() && frame->front() == 'M') {
        hooks_.on_message(std::string_view(*frame).substr(1));
      } else if (!outcome) {
        outcome = std::move(*frame);
      }
    }
  };
  auto keep_output = [this, &output](std::string_view bytes) {
    output.append(bytes);
    if (output.size() > hooks_.output_capture_bytes)
      output.erase(0, output.size() - hooks_.output_capture_bytes);
  };
  // Readers drain the pipes while this fiber waits for the exit, so that a
  // report (or output) larger than a pipe cannot block the child.
  GreenThread<void> reader, output_reader;
  try {
    if (take_destroy()) throw ThreadDestroyedError{};
    reader = weft::spawn(SpawnOptions{.name = "child report reader"}, [this, &feed] {
      if (!entry_.empty() && !hooks_.keep_channel) child_->send_arguments(arguments_);
      child_->read_reports(feed);
    });
    if (hooks_.output_capture_bytes > 0) {
      output_reader = weft::spawn(SpawnOptions{.name = "child output reader"},
                                  [this, &keep_output] { child_->read_output(keep_output); });
    }
    child_->wait_exited(std::nullopt);
  } catch (const ThreadDestroyedError&) {
    end_destroyed_child();
  }
  stop_destroy_delivery();  // the child has exited: a destroy now changes nothing
  for (GreenThread<void>* fiber : {&reader, &output_reader}) {
    if (!*fiber) continue;
    // Its last read may hold data: a kill lets it deliver that first.
    GreenThreadCore& core = GreenThreadAccess::core(*fiber);
    core.kill_deferring_interrupts();
    core.wait_deferring_interrupts();
    try {
      if (core.error()) std::rethrow_exception(core.error());
    } catch (const FiberExit&) {
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("weft: reading from a child failed: ") + e.what());
    }
  }
  child_->drain_reports(feed);  // what it wrote last, if the readers had not read it yet
  child_->drain_output(keep_output);
  status_ = child_->reap();
  if (!hooks_.on_frame) {
    if (!outcome && !hooks_.on_message) outcome = frames.next_frame();
    if (outcome) {
      reported_ = true;
      result_ = decode_outcome(*outcome, child_error_);
    }
  }
  if (hooks_.on_exit) hooks_.on_exit(pid(), status_, std::move(output));
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

#include <weft/runtime/hub.hpp>

#include <stdexcept>
#include <string>

#include "runtime/hub_core.hpp"

namespace weft {

Hub::Hub(HubOptions options) : core_(std::make_unique<detail::HubCore>(*this, options)) {}

Hub::~Hub() noexcept(false) {
  if (detail::HubCore::current() != core_.get()) {
    // Nothing of it may be touched from here (a SINGLE_ISSUER ring refuses
    // this thread, its fibers' thread-locals are the other thread's): leak it.
    static_cast<void>(core_.release());
    throw std::logic_error(
        "weft::Hub::~Hub: a hub must be destroyed on the thread that made it (it is leaked)");
  }
}

void Hub::require_own_thread(const char* operation) const {
  if (detail::HubCore::current() != core_.get()) {
    throw std::logic_error(std::string(operation) + ": a hub runs only on the thread that made it");
  }
}

Hub& Hub::current() {
  return detail::current_hub_core("weft::Hub::current").owner();
}

void Hub::post(detail::UniqueFunction<void()> f) {
  if (!f) throw std::invalid_argument("weft::Hub::post: an empty callable");
  core_->post(std::move(f));
}

void Hub::run_once(std::chrono::nanoseconds max_wait) {
  require_own_thread("weft::Hub::run_once");
  core_->run_round(max_wait, false);
}

void Hub::run() {
  require_own_thread("weft::Hub::run");
  core_->run_until_idle();
}

void Hub::run_until(const std::function<bool()>& done) {
  require_own_thread("weft::Hub::run_until");
  core_->run_until(done);
}

void Hub::kill_all() {
  require_own_thread("weft::Hub::kill_all");
  core_->kill_all();
}

void Hub::stop() {
  core_->request_stop();
}

std::optional<std::chrono::nanoseconds> Hub::next_deadline() const {
  require_own_thread("weft::Hub::next_deadline");
  return core_->next_deadline();
}

int Hub::poll_fd() const noexcept {
  return core_->poll_fd();
}

std::string_view Hub::backend_name() const noexcept {
  return core_->backend().name();
}

void Hub::set_error_handler(ErrorHandler handler) {
  core_->set_error_handler(std::move(handler));
}

std::size_t Hub::live_fibers() const noexcept {
  return core_->live_fibers();
}

std::string backend_name() {
  return std::string(detail::current_hub_core("weft::backend_name").backend().name());
}

std::chrono::steady_clock::time_point now() {
  return std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(detail::HubCore::current_now_ns()));
}

}  // namespace weft

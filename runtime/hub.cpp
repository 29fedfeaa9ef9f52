#include <weft/runtime/hub.hpp>

#include "runtime/hub_core.hpp"

namespace weft {

Hub::Hub(HubOptions options) : core_(std::make_unique<detail::HubCore>(*this, options)) {}

Hub::~Hub() = default;

Hub& Hub::current() {
  return detail::current_hub_core("weft::Hub::current").owner();
}

void Hub::post(detail::UniqueFunction<void()> f) {
  core_->post(std::move(f));
}

void Hub::run_once(std::chrono::nanoseconds max_wait) {
  core_->run_round(max_wait, false);
}

void Hub::run() {
  core_->run_until_idle();
}

void Hub::run_until(const std::function<bool()>& done) {
  core_->run_until(done);
}

void Hub::kill_all() {
  core_->kill_all();
}

void Hub::stop() {
  core_->request_stop();
}

std::optional<std::chrono::nanoseconds> Hub::next_deadline() const {
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

}  // namespace weft

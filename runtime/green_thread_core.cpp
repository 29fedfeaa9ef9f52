#include <weft/runtime/detail/green_thread_core.hpp>

#include <stdexcept>

#include <weft/runtime/errors.hpp>

namespace weft::detail {

void GreenThreadCore::wait_finished() {
  if (finished_) return;
  FiberBase* self = current_fiber();
  if (!self) throw NoHubError("weft::GreenThread::wait: must be called from a fiber");
  if (self == this)
    throw std::logic_error("weft::GreenThread::wait: a fiber cannot wait for itself");
  while (!finished_)
    waiters_.wait("GreenThread::wait");
}

std::uint64_t GreenThreadCore::add_link(LinkCallback callback) {
  const std::uint64_t id = next_link_id_++;
  links_.push_back(Link{id, std::move(callback)});
  if (finished_) resolve_links();
  return id;
}

bool GreenThreadCore::remove_link(std::uint64_t id) noexcept {
  for (auto it = links_.begin(); it != links_.end(); ++it) {
    if (it->id == id) {
      links_.erase(it);
      return true;
    }
  }
  return false;
}

void GreenThreadCore::finish(std::exception_ptr error) noexcept {
  error_ = std::move(error);
  finished_ = true;
  waiters_.notify_all();
  resolve_links();
}

void GreenThreadCore::resolve_links() noexcept {
  // A callback that links another one must not recurse: the outer loop runs it.
  if (resolving_links_) return;
  resolving_links_ = true;
  add_ref();  // a callback may drop the last handle
  while (!links_.empty()) {
    LinkCallback callback = std::move(links_.front().callback);
    links_.erase(links_.begin());
    try {
      callback(*this);
    } catch (...) {
      report_fiber_error(*this, std::current_exception());
    }
  }
  resolving_links_ = false;
  release();
}

}  // namespace weft::detail

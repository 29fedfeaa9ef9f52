#include <weft/runtime/debug.hpp>

#include "runtime/hub_core.hpp"

namespace weft {

std::string dump_fibers() {
  detail::HubCore* hub = detail::HubCore::current();
  return hub ? hub->dump() : std::string();
}

namespace this_fiber {

std::uint64_t id() noexcept {
  detail::FiberBase* self = detail::current_fiber();
  return self ? self->id() : 0;
}

std::string name() {
  detail::FiberBase* self = detail::current_fiber();
  return self ? self->name() : std::string();
}

void set_name(std::string name) {
  detail::current_hub_core("weft::this_fiber::set_name")
      .require_fiber("weft::this_fiber::set_name")
      .set_name(std::move(name));
}

}  // namespace this_fiber
}  // namespace weft

#pragma once
/// Debugging aids: fiber names, identity and a dump of the hub's live fibers.

#include <cstdint>
#include <string>

namespace weft {

/// One line per live fiber of the calling thread's hub: id, name, state and
/// what it waits for. Empty string outside a hub.
std::string dump_fibers();

namespace this_fiber {
/// The calling fiber's id (0 outside a fiber).
std::uint64_t id() noexcept;
/// The calling fiber's name ("" outside a fiber).
std::string name();
void set_name(std::string name);
}  // namespace this_fiber

}  // namespace weft

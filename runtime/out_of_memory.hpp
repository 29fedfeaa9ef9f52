#pragma once
// Where weft must allocate but cannot report a failure to anyone (a wake-up
// posted to another hub from inside a sync object, a Timeout that fires, a
// cancel that waits for room in the ring): these paths are noexcept, so an
// allocation failure there ends the process. It ends it with a line that says
// where, instead of std::terminate's bare "std::bad_alloc".

namespace weft::detail {

[[noreturn]] void out_of_memory(const char* while_doing) noexcept;

}  // namespace weft::detail

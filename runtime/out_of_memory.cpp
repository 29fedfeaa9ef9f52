#include "runtime/out_of_memory.hpp"

#include <cstdio>
#include <cstdlib>

namespace weft::detail {

void out_of_memory(const char* while_doing) noexcept {
  std::fprintf(stderr,
               "weft: out of memory while %s; a wake-up would be lost, so the process ends\n",
               while_doing);
  std::abort();
}

}  // namespace weft::detail

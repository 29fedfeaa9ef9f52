// Build-time check (meson runs it): weft's own switch routine and Boost's
// jump_fcontext must read and write the same frame, since weft switches over
// frames that make_fcontext laid out. Each direction is exercised: a context
// saved by one routine is resumed by the other. Exit status 0 when they agree.

#include <cstdlib>

#include "runtime/context_switch.cpp"
#include "runtime/context_switch.hpp"

namespace {

namespace ctx = boost::context::detail;

alignas(64) char stack[64 * 1024];
int steps = 0;

void entry(ctx::transfer_t from) {
  steps += from.data == &steps ? 1 : 100;
  // Saved by weft's routine, resumed by Boost's.
  from = ctx::jump_fcontext(from.fctx, &steps);
  steps += from.data == &steps ? 1 : 100;
  // Saved by Boost's routine, resumed by weft's.
  weft::detail::switch_context(from.fctx, &steps);
  std::abort();  // never resumed
}

}  // namespace

int main() {
  ctx::fcontext_t fresh = ctx::make_fcontext(stack + sizeof stack, sizeof stack, &entry);
  ctx::transfer_t back = weft::detail::switch_context(fresh, &steps);
  if (back.data != &steps || steps != 1) return 1;
  back = ctx::jump_fcontext(back.fctx, &steps);
  if (back.data != &steps || steps != 2) return 2;
  return 0;
}

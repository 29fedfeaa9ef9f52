// Build-time check (meson runs it): weft's own switch routine and Boost's
// jump_fcontext must read and write the same frame, since weft switches over
// frames that make_fcontext laid out, and so must the switch that weft::yield
// inlines into its caller (weft/runtime/detail/inline_switch.hpp). Each pair
// is exercised: a context saved by one routine is resumed by another. Exit
// status 0 when they agree.

#include <cstdlib>

#include <weft/runtime/detail/inline_switch.hpp>
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
  from = weft::detail::switch_context(from.fctx, &steps);
#ifdef WEFT_INLINE_SWITCH
  steps += from.data == &steps ? 1 : 100;
  // Saved by the inline switch, resumed by Boost's.
  from = ctx::jump_fcontext(from.fctx, &steps);
  steps += from.data == &steps ? 1 : 100;
  // Saved by Boost's routine, resumed by the inline switch.
  const auto back = weft::detail::switch_inline(from.fctx, &steps);
  steps += back.data == &steps ? 1 : 100;
  // Saved by the inline switch, resumed by weft's routine.
  weft::detail::switch_context(back.from_context, &steps);
#endif
  std::abort();  // never resumed
}

}  // namespace

int main() {
  ctx::fcontext_t fresh = ctx::make_fcontext(stack + sizeof stack, sizeof stack, &entry);
  ctx::transfer_t back = weft::detail::switch_context(fresh, &steps);
  if (back.data != &steps || steps != 1) return 1;
  back = ctx::jump_fcontext(back.fctx, &steps);
  if (back.data != &steps || steps != 2) return 2;
#ifdef WEFT_INLINE_SWITCH
  const auto inline_back = weft::detail::switch_inline(back.fctx, &steps);
  if (inline_back.data != &steps || steps != 3) return 3;
  back = ctx::jump_fcontext(inline_back.from_context, &steps);
  if (back.data != &steps || steps != 4) return 4;
  back = weft::detail::switch_context(back.fctx, &steps);
  if (back.data != &steps || steps != 5) return 5;
#endif
  return 0;
}

#pragma once
/// StepEmitter<E>: what a step (weft/process/step.hpp) reports its values
/// through.

#include <utility>

#include <weft/runtime/detail/unique_function.hpp>

namespace weft {

/// What a step reports its values through. In a child process, emit(value)
/// has written the value out of the child before it returns, so a value
/// emitted just before a crash is not lost.
template <class E>
class StepEmitter {
 public:
  using value_type = E;

  /// Every emit(value) calls `sink(value)`; weft makes one for each step it
  /// runs (make one yourself to call a step directly).
  explicit StepEmitter(detail::UniqueFunction<void(E)> sink) : sink_(std::move(sink)) {}
  StepEmitter(const StepEmitter&) = delete;
  StepEmitter& operator=(const StepEmitter&) = delete;

  /// Reports `value`; the reader's next() may return it at once.
  void operator()(E value) { sink_(std::move(value)); }

 private:
  detail::UniqueFunction<void(E)> sink_;
};

template <class T>
inline constexpr bool is_step_emitter_v = false;
template <class E>
inline constexpr bool is_step_emitter_v<StepEmitter<E>> = true;

}  // namespace weft

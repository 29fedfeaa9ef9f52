#pragma once
/// The non-template half of a GreenThread's shared state: completion, the
/// fibers waiting for it, and link callbacks.

#include <cstdint>
#include <exception>
#include <vector>

#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/detail/unique_function.hpp>

namespace weft::detail {

class GreenThreadCore : public FiberBase {
 public:
  using LinkCallback = UniqueFunction<void(GreenThreadCore&)>;

  bool finished() const noexcept { return finished_; }
  const std::exception_ptr& error() const noexcept { return error_; }

  /// Suspends the calling fiber until this one has finished (returns at once
  /// if it has). Throws logic_error when a fiber waits for itself.
  void wait_finished();
  /// Runs `callback` when the fiber ends, or now if it has ended.
  std::uint64_t add_link(LinkCallback callback);
  bool remove_link(std::uint64_t id) noexcept;

 protected:
  GreenThreadCore() = default;
  ~GreenThreadCore() override = default;

  /// Records the outcome (null = success), wakes the waiters and runs the
  /// links, each isolated: one that throws is reported and the rest still run.
  void finish(std::exception_ptr error) noexcept;

 private:
  struct Link {
    std::uint64_t id;
    LinkCallback callback;
  };

  void resolve_links() noexcept;

  WaitQueue waiters_;
  std::vector<Link> links_;
  std::exception_ptr error_;
  std::uint64_t next_link_id_ = 1;
  bool finished_ = false;
  bool resolving_links_ = false;
};

}  // namespace weft::detail

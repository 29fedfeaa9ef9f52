#pragma once
// Lets another thread hand work to a hub that may be ending. Whoever keeps a
// reference may ask, from any thread, whether it is that hub's thread, and
// post to the hub while it still runs fibers; the hub cuts the line once its
// fibers have all ended, under the lock that posters take, so a post never
// reaches a hub that is gone.

#include <atomic>
#include <mutex>

#include <weft/runtime/detail/unique_function.hpp>

namespace weft::detail {

class HubCore;

class HubLifeline {
 public:
  explicit HubLifeline(HubCore& hub) noexcept : hub_(&hub) {}
  HubLifeline(const HubLifeline&) = delete;
  HubLifeline& operator=(const HubLifeline&) = delete;

  /// True on the hub's own thread, and on a thread without a hub once the
  /// hub has ended (what was the hub's is then anyone's).
  bool is_callers() const noexcept;
  /// Posts `work` to the hub; false (and `work` left as it was) once the hub
  /// has ended its fibers. Throws what posting throws (std::bad_alloc).
  bool post_if_alive(UniqueFunction<void()>& work);
  /// From the hub's destructor, once its fibers have all ended.
  void cut() noexcept;

 private:
  std::mutex mutex_;
  std::atomic<HubCore*> hub_;
};

}  // namespace weft::detail

#pragma once
// Numbers unique in the process that grow within each hub (fiber ids, Timeout
// serials), taken from one process-wide counter a block at a time. An atomic
// increment per number would be a lock-prefixed instruction on every spawn or
// Timeout, which waits for the core's pending stores (many, and to cold lines,
// when a hub starts or ends fibers by the thousand), and a cache line that
// moves between the cores of hubs that take numbers at once.

#include <atomic>
#include <cstdint>

namespace weft::detail {

class SerialBlocks {
 public:
  static constexpr std::uint64_t per_block = 4096;

  explicit SerialBlocks(std::atomic<std::uint64_t>& source) noexcept : source_(&source) {}

  std::uint64_t take() noexcept {
    if (next_ == end_) [[unlikely]]
      refill();
    return next_++;
  }
  /// A bound below every number that take() gives from now on.
  std::uint64_t lower_bound() const noexcept {
    return next_ != end_ ? next_ : source_->load(std::memory_order_relaxed);
  }

 private:
  void refill() noexcept {
    next_ = source_->fetch_add(per_block, std::memory_order_relaxed);
    end_ = next_ + per_block;
  }

  std::atomic<std::uint64_t>* source_;
  std::uint64_t next_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace weft::detail

#pragma once
// Fiber stacks: mmap'd in slabs, each stack with a guard page below it, handed
// out LIFO so the most recently used (cache- and TLB-hot) stack is reused
// first. A hub owns one pool per stack size; stacks never move between hubs.
//
// Guard pages and vm.max_map_count: a guard made with mprotect splits the
// mapping, costing two VMAs per stack, and the default limit of 65530 VMAs
// would stop a program at ~32k fibers. So:
//  - Linux 6.13+ (MADV_GUARD_INSTALL): guards cost no VMA; every stack gets one.
//  - older kernels: mprotect guards while a process-wide budget (half of what
//    vm.max_map_count leaves free at start-up) lasts, then stacks without a
//    guard, said once on stderr. A million fibers still work.
//  - WEFT_STACK_GUARD=madvise|mprotect|none forces a mode (tests use it).
// Unused stacks are kept, but the pool gives the memory of cold ones back to
// the kernel (MADV_DONTNEED) when the hub goes idle with many of them.

#include <cstddef>
#include <vector>

namespace weft::detail {

struct Stack {
  void* base = nullptr;  // lowest usable byte; the guard page lies just below
  std::size_t size = 0;  // usable bytes; the stack grows down from base + size
};

enum class GuardMode { madvise, mprotect, none };

class StackPool {
 public:
  explicit StackPool(std::size_t usable_size);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  /// Throws std::system_error when the memory cannot be mapped.
  Stack acquire() {
    if (free_.empty()) add_slab();
    void* base = free_.back();
    free_.pop_back();
    if (free_.size() < trimmed_) trimmed_ = free_.size();
    return Stack{base, size_};
  }
  void release(Stack stack) noexcept { free_.push_back(stack.base); }

  /// Gives the memory of all but the `keep` most recently used idle stacks
  /// back to the kernel. At most `budget` stacks per call (each is a syscall).
  void trim(std::size_t keep, std::size_t budget) noexcept;

  std::size_t stack_size() const noexcept { return size_; }
  std::size_t guard_size() const noexcept { return guard_; }

  /// The guard mode new stacks get (process-wide, decided once).
  static GuardMode guard_mode() noexcept;

 private:
  struct Slab {
    void* memory;
    std::size_t bytes;
  };

  void add_slab();
  void prepare_slab(char* first, std::size_t count, std::size_t stride) noexcept;

  std::vector<void*> free_;  // LIFO: back() is the most recently released
  std::vector<Slab> slabs_;
  std::size_t size_;
  std::size_t guard_;
  std::size_t next_slab_stacks_ = 4;
  std::size_t stacks_mapped_ = 0;
  std::size_t trimmed_ = 0;  // free_[0, trimmed_) hold no memory
};

}  // namespace weft::detail

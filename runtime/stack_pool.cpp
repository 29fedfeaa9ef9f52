#include <weft/runtime/log.hpp>

#include "runtime/stack_pool.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>

#include "runtime/page_populate.hpp"
#include "runtime/switch_annotations.hpp"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_HAVE_VALGRIND 1
#endif

namespace weft::detail {

namespace {

constexpr int madv_guard_install = 102;  // Linux 6.13, not yet in Debian 12's headers
constexpr std::size_t max_slab_stacks = 256;
constexpr std::size_t max_slab_bytes = std::size_t{64} << 20;

std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}

long read_long(const char* path, long fallback) {
  std::ifstream in(path);
  long value = fallback;
  return (in >> value) ? value : fallback;
}

long count_lines(const char* path) {
  std::ifstream in(path);
  return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
}

struct GuardPolicy {
  std::atomic<GuardMode> mode{GuardMode::madvise};
  // Stacks that may still get an mprotect guard (each costs two VMAs).
  std::atomic<long> mprotect_budget{0};
  std::once_flag exhausted_warning;

  GuardPolicy() {
#ifdef WEFT_NO_GUARD_PAGES
    mode = GuardMode::none;
#endif
    if (const char* forced = std::getenv("WEFT_STACK_GUARD")) {
      if (std::strcmp(forced, "mprotect") == 0)
        mode = GuardMode::mprotect;
      else if (std::strcmp(forced, "none") == 0)
        mode = GuardMode::none;
      else if (std::strcmp(forced, "madvise") == 0)
        mode = GuardMode::madvise;
    }
    const long max_maps = read_long("/proc/sys/vm/max_map_count", 65530);
    const long free_maps = max_maps - count_lines("/proc/self/maps");
    mprotect_budget = std::max(0L, free_maps / 2) / 2;
  }
};

GuardPolicy& guard_policy() {
  static GuardPolicy policy;
  return policy;
}

bool install_mprotect_guard(void* guard, std::size_t bytes) {
  GuardPolicy& policy = guard_policy();
  if (policy.mprotect_budget.fetch_sub(1, std::memory_order_relaxed) <= 0) {
    std::call_once(policy.exhausted_warning, [] {
      log(LogLevel::warning,
          "vm.max_map_count leaves no room for more mprotect guard pages; further fiber stacks "
          "have none (raise vm.max_map_count, or use Linux 6.13+ for MADV_GUARD_INSTALL)");
    });
    return false;
  }
  return ::mprotect(guard, bytes, PROT_NONE) == 0;
}

void install_guard(void* guard, std::size_t bytes) {
  GuardPolicy& policy = guard_policy();
  switch (policy.mode.load(std::memory_order_relaxed)) {
    case GuardMode::none:
      return;
    case GuardMode::madvise:
      if (::madvise(guard, bytes, madv_guard_install) == 0) return;
      // Older kernel: every later stack uses the mprotect budget instead.
      policy.mode.store(GuardMode::mprotect, std::memory_order_relaxed);
      [[fallthrough]];
    case GuardMode::mprotect:
      install_mprotect_guard(guard, bytes);
      return;
  }
}

// One madvise for many ranges of this process: process_madvise on a pidfd of
// our own (any advice since Linux 6.13), instead of a system call per stack.
// False when the kernel refuses: the caller then advises range by range.
bool advise_batch(std::vector<iovec>& ranges, int advice) noexcept {
  static std::atomic<bool> unsupported{false};
  if (ranges.empty()) return true;
  if (unsupported.load(std::memory_order_relaxed)) return false;
  const int self = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  if (self < 0) return false;
  bool done = true;
  constexpr std::size_t max_ranges = 1024;  // UIO_MAXIOV
  for (std::size_t at = 0; at < ranges.size() && done; at += max_ranges) {
    const std::size_t count = std::min(max_ranges, ranges.size() - at);
    std::size_t bytes = 0;
    for (std::size_t i = at; i < at + count; ++i)
      bytes += ranges[i].iov_len;
    const long advised = ::syscall(SYS_process_madvise, self, ranges.data() + at, count, advice, 0);
    if (advised < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
      unsupported.store(true, std::memory_order_relaxed);
    done = advised == static_cast<long>(bytes);
  }
  ::close(self);
  return done;
}

// Gives `advice` to ranges range_of(0..count): in one call where the kernel
// takes it, else range by range with advise_one (also when the list of
// ranges cannot be allocated).
template <class RangeOf, class AdviseOne>
void advise_ranges(std::size_t count, int advice, RangeOf range_of, AdviseOne advise_one) noexcept {
  std::vector<iovec> ranges;
  try {
    ranges.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
      ranges.push_back(range_of(i));
  } catch (const std::bad_alloc&) {
    ranges.clear();
  }
  if (!ranges.empty() && advise_batch(ranges, advice)) return;
  for (std::size_t i = 0; i < count; ++i)
    advise_one(range_of(i));
}

}  // namespace

GuardMode StackPool::guard_mode() noexcept {
  return guard_policy().mode.load();
}

StackPool::StackPool(std::size_t usable_size)
    : size_(round_up(std::max(usable_size, page_size()), page_size())),
      guard_(guard_mode() == GuardMode::none ? 0 : page_size()) {}

StackPool::~StackPool() {
  for (const Slab& slab : slabs_) {
    // Frames of fibers that never returned (killed, or parked when their hub
    // ended) leave redzone poison behind, and ASan keeps a region's poison
    // through munmap: the next mapping at these addresses (another hub's
    // io_uring rings) would be reported as a stack overflow.
    asan_unpoison_stack(slab.memory, slab.bytes);
    ::munmap(slab.memory, slab.bytes);
  }
}

void StackPool::add_slab() {
  const std::size_t stride = guard_ + size_;
  std::size_t count =
      std::min(next_slab_stacks_, std::max<std::size_t>(1, max_slab_bytes / stride));
  const std::size_t bytes = count * stride;
  // Room in both lists before the mapping, so that a bad_alloc leaves nothing
  // mapped. Room for every stack there is, too: else the idle list grows while
  // a burst of fibers ends and hands its stacks back, into fresh heap pages
  // then (the memory of the fibers that end is kept for new ones), and copies
  // itself.
  if (slabs_.size() == slabs_.capacity())
    slabs_.reserve(std::max<std::size_t>(8, 2 * slabs_.capacity()));
  if (free_.capacity() < stacks_mapped_ + count)
    free_.reserve(std::max(stacks_mapped_ + count, 2 * free_.capacity()));
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (memory == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(),
                            "weft: mapping " + std::to_string(bytes) + " bytes of fiber stacks");
  }
  slabs_.push_back(Slab{memory, bytes});
  next_slab_stacks_ = std::min(next_slab_stacks_ * 2, max_slab_stacks);
  stacks_mapped_ += count;
  char* first = static_cast<char*>(memory);
  prepare_slab(first, count, stride);
  // Called with no idle stack left. Push in reverse so the lowest stack is
  // handed out first.
  for (std::size_t i = count; i-- > 0;) {
    char* guard = first + i * stride;
#ifdef WEFT_HAVE_VALGRIND
    if (RUNNING_ON_VALGRIND) VALGRIND_STACK_REGISTER(guard + guard_, guard + stride);
#endif
    free_.push_back(guard + guard_);
  }
  // Fresh stacks hold only their top page: not worth a trim. (At most one
  // slab's top pages, 1 MiB, are ever outside trim's reach: a slab is added
  // only when no stack is idle.)
  trimmed_ = free_.size();
}

void StackPool::prepare_slab(char* first, std::size_t count, std::size_t stride) noexcept {
  // Every fiber writes its top page at once (its first frame). Fault them all
  // in here, then install every guard with one call. Both orders are measured,
  // on a VM (Firecracker, Linux 6.18 guest under PVM's shadow paging), where a
  // first touch costs 15 us:
  //  - A page first written after a guard marker went in beside it, or
  //    populated together with others before any is written, costs 1-10 us
  //    again on its next touch after a while, as if the hypervisor had dropped
  //    its mapping. That next touch is what waking 200k parked fibers is made
  //    of (1.4 s against 0.12 s). A page written first and guarded after costs
  //    0.04 us.
  //  - Each page populated (MADV_POPULATE_WRITE) and then written at once,
  //    one by one, costs 10-12 us in all instead of 15, and its next touch
  //    stays cheap: parking 200k fibers went from 3.3 s to 2.5 s. Populating
  //    4-64 tops in one process_madvise before writing them saves a little
  //    more, but now and then (16 at a time: once in 4 runs; 64: always) the
  //    next touch costs 8-10 us again.
  // Without MADV_POPULATE_WRITE (Linux < 5.14) the write alone faults it in.
  const std::size_t page = page_size();
  for (std::size_t i = 0; i < count; ++i) {
    char* top = first + (i + 1) * stride;
    populate_for_write(top - page, page);
    static_cast<volatile char*>(top)[-1] = 0;
  }
  if (guard_ == 0) return;
  const auto guard_of = [&](std::size_t i) { return iovec{first + i * stride, guard_}; };
  if (guard_policy().mode.load(std::memory_order_relaxed) == GuardMode::madvise) {
    advise_ranges(count, madv_guard_install, guard_of,
                  [](iovec guard) { install_guard(guard.iov_base, guard.iov_len); });
  } else {
    for (std::size_t i = 0; i < count; ++i)
      install_guard(guard_of(i).iov_base, guard_);
  }
}

void StackPool::trim(std::size_t keep, std::size_t budget) noexcept {
  if (free_.size() <= keep) return;
  const std::size_t end = std::min(free_.size() - keep, trimmed_ + budget);
  if (end <= trimmed_) return;
  advise_ranges(
      end - trimmed_, MADV_DONTNEED,
      [&](std::size_t i) {
        return iovec{free_[trimmed_ + i], size_};
      },
      [](iovec stack) { ::madvise(stack.iov_base, stack.iov_len, MADV_DONTNEED); });
  trimmed_ = end;
}

}  // namespace weft::detail

#pragma once
/// The fiber control block and the few scheduler entry points that weft's
/// templates (spawn, GreenThread) call. Not part of the public contract: use
/// the headers one level up.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include <weft/runtime/detail/intrusive_list.hpp>

namespace weft {
struct SpawnOptions;
}

namespace weft::detail {

class HubCore;
class FiberBase;
class LocalStorage;

struct ReadyTag;
struct LiveTag;
struct WaitTag;

/// A pending timer. Owned by whoever armed it (a sleeping fiber's stack, a
/// Timeout, a fiber started later); the hub's timer heap only points at it.
struct TimerNode {
  static constexpr std::uint32_t not_armed = ~std::uint32_t{0};

  std::uint32_t slot = not_armed;               // the timer heap's handle for it, while armed
  void (*fire)(TimerNode*) noexcept = nullptr;  // runs on the hub, outside any fiber
  void* owner = nullptr;                        // what `fire` acts on

  bool armed() const noexcept { return slot != not_armed; }
};

enum class FiberState : std::uint8_t { created, ready, running, suspended, dead };

const char* to_string(FiberState state) noexcept;

/// Lets a suspension decide what an interrupt (kill, Timeout) does to it. Without
/// one, an interrupted fiber is made ready and throws from its suspension point.
/// io uses it to cancel an operation in the kernel and resume only once the
/// kernel has let go of the buffer.
class InterruptHook {
 public:
  virtual void on_interrupt(FiberBase& fiber) noexcept = 0;

 protected:
  ~InterruptHook() = default;
};

/// One fiber. Allocated by spawn together with its callable; the stack is bound
/// only when the fiber first runs and handed back to the pool when it ends, so
/// a fiber that is killed before it starts never costs a stack.
class FiberBase : public ListHook<ReadyTag>, public ListHook<LiveTag> {
 public:
  FiberBase(const FiberBase&) = delete;
  FiberBase& operator=(const FiberBase&) = delete;

  /// A fiber's memory comes first from what ended fibers left with this
  /// thread's hub (runtime/fiber_block_cache.hpp), else from the heap.
  static void* operator new(std::size_t size);
  static void operator delete(void* block, std::size_t size) noexcept;
  // An over-aligned callable: straight from the heap.
  static void* operator new(std::size_t size, std::align_val_t alignment) {
    return ::operator new(size, alignment);
  }
  static void operator delete(void* block, std::size_t size, std::align_val_t alignment) noexcept {
    ::operator delete(block, size, alignment);
  }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::uint64_t id() const noexcept { return id_; }
  FiberState state() const noexcept { return state_; }
  bool dead() const noexcept { return state_ == FiberState::dead; }
  /// Has it begun running? (False for one killed before it started.) Any thread.
  bool started() const noexcept { return has_run_.load(std::memory_order_relaxed); }
  const std::string& name() const noexcept { return name_ ? *name_ : no_name(); }
  void set_name(std::string name) {
    if (name.empty()) {
      name_.reset();
    } else if (name_) {
      *name_ = std::move(name);
    } else {
      name_ = std::make_unique<std::string>(std::move(name));
    }
  }

 protected:
  FiberBase() noexcept = default;
  virtual ~FiberBase() = default;

  /// Runs the callable on the fiber's own stack and records how it ended.
  virtual void run_body() noexcept = 0;
  /// The fiber was killed before it started: drop the callable unrun and
  /// record `error` as its outcome. Runs in the killer's context.
  virtual void abort_before_start(std::exception_ptr error) noexcept = 0;

  /// For a control block that stands for work already done elsewhere (a pool
  /// that ran a job inline): it is dead without ever having been scheduled.
  void mark_ended_without_running() noexcept { state_ = FiberState::dead; }

  /// Destroys the fiber's FiberLocal values (fiber_local.hpp), in the fiber.
  /// run_body calls it once the callable is gone and before the outcome is
  /// published; the hub calls it again once run_body has returned, for values
  /// made after that (by link callbacks). One test when none was ever made.
  void destroy_locals() noexcept {
    if (locals_) [[unlikely]]
      destroy_local_storage();
  }

 private:
  friend class HubCore;
  friend struct FiberAccess;

  void destroy_local_storage() noexcept;
  static const std::string& no_name() noexcept;

  // Scheduling state, touched only by the owning hub's thread.
  void* context_ = nullptr;  // Boost.Context fcontext while switched out
  void* stack_base_ = nullptr;
  std::size_t stack_size_ = 0;
  std::size_t requested_stack_size_ = 0;
  HubCore* hub_ = nullptr;
  FiberState state_ = FiberState::created;
  std::atomic<bool> has_run_{false};  // read by started() from any thread
  std::uint32_t suspend_epoch_ = 0;   // counts suspensions; see runtime/detail/parking.hpp
  const char* wait_reason_ = "start";
  InterruptHook* interrupt_hook_ = nullptr;
  std::exception_ptr interrupt_;
  std::uint64_t interrupt_source_ = 0;  // serial of the Timeout that raised it, 0 for a kill
  TimerNode start_timer_;               // spawn_after
  // The C++ runtime's per-thread exception bookkeeping, saved across switches
  // (uncaught_exceptions_ is below, beside refs_, where it fills a gap).
  void* caught_exceptions_ = nullptr;
  // The spawner's floating-point control state, which the fiber starts with
  // (as a thread starts with its creator's).
  std::uint64_t start_fp_control_ = 0;
  // Sanitizer bookkeeping, unused unless built with one: ASan's fake stack or
  // TSan's fiber (the two are never built in together).
  union {
    void* asan_fake_stack_ = nullptr;
    void* tsan_fiber_;
  };

  std::uint64_t id_ = 0;
  // Most fibers have no name: one pointer instead of a string's 32 bytes in
  // every fiber (a million parked fibers are a million of these objects).
  std::unique_ptr<std::string> name_;
  LocalStorage* locals_ = nullptr;  // made by the fiber's first FiberLocal::get
  unsigned int uncaught_exceptions_ = 0;
  std::atomic<std::uint32_t> refs_{1};  // the fiber's own reference, dropped when it ends
};

/// One counted reference to a fiber, held by a closure posted to its hub from
/// another thread. A hub destroyed with posts still queued drops them unrun,
/// so the reference must go with the closure, not with its body.
class FiberRef {
 public:
  explicit FiberRef(FiberBase* fiber) noexcept : fiber_(fiber) { fiber_->add_ref(); }
  FiberRef(FiberRef&& other) noexcept : fiber_(std::exchange(other.fiber_, nullptr)) {}
  FiberRef& operator=(FiberRef&&) = delete;
  ~FiberRef() {
    if (fiber_) fiber_->release();
  }

 private:
  FiberBase* fiber_;
};

/// One waiting fiber in a WaitQueue; lives on the waiter's stack.
struct Waiter : ListHook<WaitTag> {
  FiberBase* fiber = nullptr;
  /// Set by notify: what the waiter was woken for (a slot, an item) is its own,
  /// even if an interrupt reaches it before it resumes.
  bool notified = false;
};

/// FIFO queue of fibers of one hub waiting for something (GreenPool). What
/// fibers of several hubs may wait on uses ParkingLot (runtime/detail/parking.hpp).
class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  /// Suspends the calling fiber until notified. Throws the interrupt (kill,
  /// Timeout) if one arrives first; the waiter is then no longer queued.
  void wait(const char* reason);
  /// As wait(), with the caller's Waiter, whose `notified` tells after an
  /// interrupt whether a notification had reached it (and must be passed on).
  void wait(Waiter& waiter, const char* reason);
  /// Wakes the oldest waiter; false if there was none. Never suspends.
  bool notify_one() noexcept;
  void notify_all() noexcept;
  bool empty() const noexcept { return waiters_.empty(); }
  std::size_t size() const noexcept { return waiters_.size(); }

 private:
  IntrusiveList<Waiter, WaitTag> waiters_;
};

/// The fiber running on this thread, or nullptr outside a fiber.
FiberBase* current_fiber() noexcept;
/// The calling thread's hub; throws NoHubError if it has none.
HubCore& current_hub_core(const char* operation);
/// Registers a new fiber with the calling thread's hub and queues it to start
/// at the next scheduling round (or after `delay`). Takes over the fiber's own
/// reference.
void start_fiber(HubCore& hub, FiberBase* fiber, const SpawnOptions& options);
void start_fiber_after(HubCore& hub, FiberBase* fiber, std::chrono::nanoseconds delay,
                       const SpawnOptions& options);
/// Hands an exception that escaped a fiber to its hub's error handler.
void report_fiber_error(const FiberBase& fiber, std::exception_ptr error) noexcept;

}  // namespace weft::detail

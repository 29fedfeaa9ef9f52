#pragma once
// The scheduler of one hub: ready queue, timers, remote queue, backend, and
// the switches between fibers.
//
// Rounds. The hub works in scheduling rounds: collect completions, remote
// posts and due timers, then run every fiber that was ready at that moment,
// each to its next suspension point. Fibers made ready during a round (spawned,
// yielded, woken) run in the next one, so I/O is polled between them and no
// fiber can starve the others. Inside a long round the loop still looks at
// timers, completions and posts every 64 fibers; what they wake joins the
// back of the queue.
//
// Switching. A fiber that suspends switches straight to the next ready fiber;
// only at the end of a round does control go back to the loop context (the
// thread's own stack) to poll. When nothing outside can have happened (no
// timers, no I/O in flight, no remote posts, no fiber ended) the next round
// starts in place, without the two extra switches and without a syscall or a
// clock read: a yield costs one context switch and a few pointer writes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <weft/runtime/detail/fiber_base.hpp>
#include <weft/runtime/hub.hpp>

#include "runtime/context_switch.hpp"
#include "runtime/fiber_block_cache.hpp"
#include "runtime/heap_prefault.hpp"
#include "runtime/hub_lifeline.hpp"
#include "runtime/reactor/backend.hpp"
#include "runtime/remote_queue.hpp"
#include "runtime/serial_blocks.hpp"
#include "runtime/stack_pool.hpp"
#include "runtime/switch_annotations.hpp"
#include "runtime/timer_heap.hpp"

namespace weft::detail {

class HubCore;

// initial-exec: a plain TLS load, no __tls_get_addr call from the shared library.
extern thread_local constinit HubCore* this_thread_hub __attribute__((tls_model("initial-exec")));
/// The calling thread's hub's virtual clock; nullptr without a hub or on a
/// steady one, so that reading the current clock costs a steady hub one
/// branch (every sleep, Timeout and timed wait does).
extern thread_local constinit const std::int64_t* this_thread_virtual_now
    __attribute__((tls_model("initial-exec")));

/// The C++ runtime's per-thread exception bookkeeping (libstdc++/libc++ ABI):
/// the chain of exceptions being handled and the count of those in flight.
struct ExceptionGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

/// The loop context: the hub thread's own stack, seen as a fiber that never ends.
class LoopContext final : public FiberBase {
 private:
  void run_body() noexcept override {}
  void abort_before_start(std::exception_ptr) noexcept override {}
};

/// Access to a fiber's innards for the stack-overflow reporter and FiberLocal.
struct FiberAccess {
  static const void* stack_base(const FiberBase& f) noexcept { return f.stack_base_; }
  static std::size_t stack_size(const FiberBase& f) noexcept { return f.stack_size_; }
  static HubCore* hub(const FiberBase& f) noexcept { return f.hub_; }
  static LocalStorage*& locals(FiberBase& f) noexcept { return f.locals_; }
};

class HubCore {
 public:
  HubCore(Hub& owner, const HubOptions& options);
  ~HubCore();
  HubCore(const HubCore&) = delete;
  HubCore& operator=(const HubCore&) = delete;

  /// The calling thread's hub, or nullptr.
  static HubCore* current() noexcept { return this_thread_hub; }

  Hub& owner() noexcept { return owner_; }
  /// The running fiber, or nullptr when the loop context runs.
  FiberBase* running_fiber() const noexcept {
    return current_ == &loop_context_ ? nullptr : current_;
  }
  FiberBase& require_fiber(const char* operation) const {
    if (current_ == &loop_context_) [[unlikely]]
      throw_not_in_fiber(operation);
    return *current_;
  }

  // --- fibers -------------------------------------------------------------
  void start(FiberBase* fiber, const SpawnOptions& options, std::optional<std::int64_t> at_ns) {
    prepare(fiber, options);
    enqueue(fiber, at_ns);
  }
  /// The half of start() that any thread may do before handing the fiber to
  /// this hub (Runtime::spawn_on): id, name, stack size, home hub.
  void prepare(FiberBase* fiber, const SpawnOptions& options);
  /// The half that only this hub's thread may do: live list, ready queue or timer.
  void enqueue(FiberBase* fiber, std::optional<std::int64_t> at_ns);
  /// Kills `fiber` (not the caller). From a fiber, the killer then yields
  /// once, unless `killer_yields` is false (a destructor that must not throw
  /// the killer's own pending interrupt).
  void kill(FiberBase* fiber, std::exception_ptr error, bool killer_yields = true);
  void kill_all();
  /// Delivers an interrupt (kill: source 0; Timeout: its serial) to a started
  /// fiber; a suspended one wakes and throws it from its suspension point.
  void interrupt(FiberBase* fiber, std::exception_ptr error, std::uint64_t source) noexcept;
  /// Drops a pending interrupt that came from `source` (a Timeout leaving scope).
  void withdraw_interrupt(FiberBase* fiber, std::uint64_t source) noexcept;

  // --- suspension (from a fiber of this hub) -------------------------------
  void suspend(const char* reason, InterruptHook* hook = nullptr) {
    FiberBase& self = require_fiber(reason);
    throw_if_interrupted(self);
    suspend_keeping_interrupt(self, reason, hook);
    throw_if_interrupted(self);
  }
  /// Suspends until woken; an interrupt (kill, Timeout) wakes it too but is
  /// left pending for the caller to inspect (sync objects decide whether an
  /// interrupt or what they were handed wins).
  /// With a hook, the hook decides what an interrupt does instead.
  void suspend_keeping_interrupt(FiberBase& self, const char* reason,
                                 InterruptHook* hook = nullptr) noexcept {
    self.state_ = FiberState::suspended;
    self.wait_reason_ = reason;
    self.interrupt_hook_ = hook;
    switch_out(&self);
    ++self.suspend_epoch_;
    self.interrupt_hook_ = nullptr;
  }
  static bool interrupt_pending(const FiberBase& self) noexcept {
    return static_cast<bool>(self.interrupt_);
  }
  /// Is a kill (not a Timeout) pending for `fiber`? Then killing it again
  /// would change nothing; once it has been thrown, a fiber that caught it
  /// and suspended again needs another.
  static bool kill_pending(const FiberBase& fiber) noexcept {
    return fiber.interrupt_ && fiber.interrupt_source_ == 0;
  }
  /// Throws the pending interrupt, which is then no longer pending.
  [[noreturn]] static void rethrow_interrupt(FiberBase& self);

  /// The whole of weft::yield: one context switch and a few pointer writes
  /// when the round can go on in place. Inlined into one frame on purpose:
  /// no call level between user code and the switch (context_switch.hpp).
  __attribute__((always_inline)) void yield_now() {
    FiberBase& self = queue_yielder();
    switch_out(&self);
    throw_if_interrupted(self);
  }
  /// weft::yield as two halves around a switch inlined into its caller
  /// (detail/inline_switch.hpp): yield_begin does all of yield_now up to the
  /// switch and returns the context to switch to, handing the caller as
  /// `self`; nullptr when there is none (the caller is the only fiber ready),
  /// or when it did the whole yield itself (sanitizer builds, whose switch
  /// annotations need the library's switch).
  void* yield_begin(FiberBase*& self_out) {
    if constexpr (built_with_asan || built_with_tsan) {
      yield_now();
      return nullptr;
    }
    FiberBase& self = queue_yielder();
    FiberBase* to = switch_target(&self);
    if (!to) return nullptr;
    leave_for(&self, to);
    self_out = &self;
    return to->context_;
  }
  /// The half after the switch: `from_context` and `from` are what the
  /// resuming side handed over.
  void yield_end(void* from_context, void* from) {
    after_resume(boost::context::detail::transfer_t{from_context, from});
    throw_if_interrupted(*current_);
  }

  /// Makes a suspended fiber ready (no-op for any other state).
  void wake(FiberBase* fiber) noexcept {
    if (fiber->state_ == FiberState::suspended) {
      fiber->state_ = FiberState::ready;
      ready_.push_back(fiber);
    }
  }
  /// Makes `fiber` ready if it is still in suspension number `epoch` (a
  /// wake-up that arrives after the fiber moved on is dropped).
  void wake_if(FiberBase* fiber, std::uint32_t epoch) noexcept {
    if (fiber->suspend_epoch_ == epoch) wake(fiber);
  }
  static std::uint32_t suspend_epoch(const FiberBase& fiber) noexcept {
    return fiber.suspend_epoch_;
  }

  // --- timers ---------------------------------------------------------------
  /// The hub's clock, in ns since steady_clock's epoch: CLOCK_MONOTONIC, or
  /// the virtual clock (Clock::virtual_time), which only the loop moves.
  std::int64_t now_ns() const noexcept {
    if (virtual_clock_) [[unlikely]]
      return virtual_now_ns_;
    return steady_now_ns();
  }
  /// The calling thread's hub's clock; CLOCK_MONOTONIC on a thread without one.
  static std::int64_t current_now_ns() noexcept {
    if (const std::int64_t* virtual_now = this_thread_virtual_now) [[unlikely]]
      return *virtual_now;
    return steady_now_ns();
  }
  /// CLOCK_MONOTONIC (steady_clock), whatever the hub's clock: what a wait
  /// for another thread reads, since a virtual clock would not move meanwhile.
  static std::int64_t steady_now_ns() noexcept;
  bool virtual_clock() const noexcept { return virtual_clock_; }
  void arm_timer(TimerNode* node, std::int64_t deadline_ns) { timers_.arm(node, deadline_ns); }
  /// Serials for this hub's Timeouts (runtime/timeout.cpp): unique across
  /// hubs, growing within a hub.
  SerialBlocks& timeout_serials() noexcept { return timeout_serials_; }
  static std::atomic<std::uint64_t> timeout_serial_source;
  /// The memory of ended fibers, kept for the next ones (fiber.cpp).
  FiberBlockCache& fiber_blocks() noexcept { return fiber_blocks_; }
  /// Faults in heap pages ahead of a burst's new fiber blocks (fiber.cpp).
  HeapPrefault& heap_prefault() noexcept { return heap_prefault_; }
  void disarm_timer(TimerNode* node) noexcept { timers_.disarm(node); }

  // --- the loop (outside fibers) -----------------------------------------------
  void run_round(std::optional<std::chrono::nanoseconds> max_wait, bool chain_rounds);
  void run_until(const std::function<bool()>& done);
  void run_until_idle();
  bool idle() const noexcept;
  std::optional<std::chrono::nanoseconds> next_deadline() const;
  void post(UniqueFunction<void()> work) { remote_.post(std::move(work)); }
  /// A fiber now waits for a wake-up that another thread will post soon (or
  /// no longer does): while one does, the hub spins briefly before sleeping.
  void expect_remote_wakeup(bool expecting) noexcept {
    remote_wakeups_expected_ += expecting ? 1 : -1;
  }
  void request_stop() noexcept;
  /// Tests: runs on the hub's thread each time a round is about to block in
  /// the backend (after it told other threads that it sleeps), so a test can
  /// act on another thread exactly then instead of sleeping and hoping.
  void set_before_blocking_for_test(std::function<void()> hook) {
    before_blocking_ = std::move(hook);
  }

  // --- reporting ----------------------------------------------------------------
  void set_error_handler(ErrorHandler handler) { error_handler_ = std::move(handler); }
  void report_error(std::string_view fiber_name, std::exception_ptr error) noexcept;
  std::size_t live_fibers() const noexcept { return live_.size(); }
  std::string dump() const;
  Backend& backend() noexcept { return *backend_; }
  /// For objects that other threads may act on after the fibers that used
  /// them here are gone (a socket closed from another thread).
  const std::shared_ptr<HubLifeline>& lifeline() const noexcept { return lifeline_; }
  /// For a host loop (embedding): the backend's fd, which posts from other
  /// threads then also make readable.
  int poll_fd() noexcept {
    const int fd = backend_->poll_fd();
    remote_.set_extra_kick_fd(backend_->extra_kick_fd());
    return fd;
  }
  std::size_t stack_guard_size() const noexcept { return default_stacks_.guard_size(); }

 private:
  static void fiber_entry(boost::context::detail::transfer_t from) noexcept;
  [[noreturn]] void exit_running_fiber() noexcept;
  [[noreturn]] static void throw_not_in_fiber(const char* operation);

  /// Yield's first half: the caller joins the back of the ready queue.
  __attribute__((always_inline)) FiberBase& queue_yielder() {
    FiberBase& self = require_fiber("weft::yield");
    throw_if_interrupted(self);
    self.state_ = FiberState::ready;
    self.wait_reason_ = "yield";
    ready_.push_back(&self);
    return self;
  }
  __attribute__((always_inline)) void switch_out(FiberBase* self) {
    if (FiberBase* to = switch_target(self)) jump(self, to);
  }
  /// Where `self`, leaving the running state, goes: the next fiber or the
  /// loop context; nullptr when `self` is next itself and simply runs on.
  __attribute__((always_inline)) FiberBase* switch_target(FiberBase* self) noexcept {
    FiberBase* next = pick_next();
    if (next == self) {
      self->state_ = FiberState::running;
      return nullptr;
    }
    return next ? next : &loop_context_;
  }

  __attribute__((always_inline)) FiberBase* pick_next() noexcept {
    for (;;) {
      if (round_budget_ == 0) {
        if (loop_has_work()) return nullptr;
        round_budget_ = ready_.size();  // the next round, started in place
      }
      // Every look_interval fibers, a look at timers, io and posts: the rest
      // of the round waits for it (round_budget_ is kept).
      if (--until_look_ == 0) [[unlikely]] {
        until_look_ = look_interval;
        if (work_for_a_look()) return nullptr;
      }
      FiberBase* next = ready_.pop_front();
      if (!next) {
        round_budget_ = 0;
        return nullptr;
      }
      --round_budget_;
      if (next->state_ != FiberState::created || bind_stack(next)) [[likely]]
        return next;
    }
  }
  bool loop_has_work() const noexcept { return !chain_rounds_ || attention_ || work_for_a_look(); }
  /// What a look inside a round attends to: a timer that may be due,
  /// completions, posts from other threads.
  bool work_for_a_look() const noexcept {
    return !timers_.empty() || backend_->needs_polling() || remote_.maybe_pending();
  }
  __attribute__((always_inline)) void jump(FiberBase* from, FiberBase* to) noexcept {
    leave_for(from, to);
    after_resume(switch_context(to->context_, from));
  }
  /// What a switch from `from` to `to` does before the registers move.
  __attribute__((always_inline)) void leave_for(FiberBase* from, FiberBase* to) noexcept {
    from->caught_exceptions_ = exception_globals_->caught_exceptions;
    from->uncaught_exceptions_ = exception_globals_->uncaught_exceptions;
    current_ = to;
    to->state_ = FiberState::running;
    annotate_switch_out(&from->asan_fake_stack_, from->state_ == FiberState::dead,
                        StackBounds{to->stack_base_, to->stack_size_},
                        built_with_tsan ? to->tsan_fiber_ : nullptr);
  }

  __attribute__((always_inline)) void after_resume(
      boost::context::detail::transfer_t from) noexcept {
    FiberBase* self = current_;
    [[maybe_unused]] const StackBounds left =
        annotate_switch_in(built_with_asan ? self->asan_fake_stack_ : nullptr);
    auto* previous = static_cast<FiberBase*>(from.data);
    previous->context_ = from.fctx;
    if constexpr (built_with_asan) {
      if (previous == &loop_context_ && !loop_context_.stack_base_) {
        loop_context_.stack_base_ = const_cast<void*>(left.bottom);  // learnt for ASan
        loop_context_.stack_size_ = left.size;
      }
    }
    if (previous->state_ == FiberState::dead) [[unlikely]]
      retire(previous);
    exception_globals_->caught_exceptions = self->caught_exceptions_;
    exception_globals_->uncaught_exceptions = self->uncaught_exceptions_;
  }
  bool bind_stack(FiberBase* fiber) noexcept;
  void retire(FiberBase* fiber) noexcept;
  StackPool& pool_for(std::size_t size);
  void make_ready_first(FiberBase* fiber) noexcept;
  void throw_if_interrupted(FiberBase& self) {
    if (self.interrupt_) [[unlikely]]
      rethrow_interrupt(self);
  }

  void poll(std::optional<std::chrono::nanoseconds> max_wait, bool collect);
  bool virtual_timer_pending() const noexcept;
  void jump_to_next_timer(bool collect);
  auto post_error_handler() noexcept {
    return [this](std::exception_ptr error) { report_error("hub.post", error); };
  }
  // Inlined: a call costs as much as the rest of a round without a timer due.
  __attribute__((always_inline)) inline void fire_due_timers() noexcept;
  void trim_idle_memory() noexcept;
  bool spin_for_remote_post(std::optional<std::chrono::nanoseconds> max_wait) noexcept;
  void run_ready();
  void look_inside_round();

  static std::atomic<std::uint64_t> fiber_id_source;
  static SerialBlocks& plain_thread_fiber_ids() noexcept;

  // First, so that it outlives every member that may still free a fiber.
  FiberBlockCache fiber_blocks_;
  HeapPrefault heap_prefault_;
  Hub& owner_;
  // The scheduler's hot members start a cache line of their own, whatever the
  // size of the cache above: moved by 16 bytes, they made the first turns of
  // 100k sleepers 5-9% slower (timer_fire's first_round_ms, 111.9 -> 117.0 ms).
  alignas(64) IntrusiveList<FiberBase, ReadyTag> ready_;
  IntrusiveList<FiberBase, LiveTag> live_;
  std::size_t round_budget_ = 0;  // fibers of the current round still to run
  // A long round (100k fibers just spawned) must not hold back timers and io
  // until it ends: every look_interval fibers the loop looks at them (tokio's
  // scheduler checks its drivers every 61 tasks). Whatever that makes ready
  // joins the back of the queue, so FIFO order and yield()'s promise hold.
  static constexpr std::uint32_t look_interval = 64;
  // bind_stack: a fiber's frames begin (id % stack_staggers) steps below the
  // top of its stack; the steps cover a saved-register frame and then some.
  static constexpr std::size_t stack_staggers = 8;
  static constexpr std::size_t stack_stagger_step = 64;
  std::uint32_t until_look_ = look_interval;
  bool chain_rounds_ = false;  // may a round start without the loop polling?
  bool attention_ = false;     // a fiber ended: the loop must look
  bool stop_requested_ = false;
  const bool virtual_clock_;
  std::atomic<bool> stop_flag_{false};
  std::ptrdiff_t remote_wakeups_expected_ = 0;
  std::chrono::nanoseconds remote_spin_;
  FiberBase* current_;
  LoopContext loop_context_;
  ExceptionGlobals* exception_globals_;
  TimerHeap timers_;
  SerialBlocks timeout_serials_{timeout_serial_source};
  SerialBlocks fiber_ids_{fiber_id_source};  // for the fibers spawned on this thread
  std::int64_t virtual_now_ns_;              // the clock, when virtual_clock_
  StackPool default_stacks_;
  std::vector<std::unique_ptr<StackPool>> sized_stacks_;
  RemoteQueue remote_;
  std::unique_ptr<Backend> backend_;
  std::shared_ptr<HubLifeline> lifeline_ = std::make_shared<HubLifeline>(*this);
  ErrorHandler error_handler_;
  std::function<void()> before_blocking_;
  std::vector<char> signal_stack_;
};

}  // namespace weft::detail

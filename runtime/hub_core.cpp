#include "runtime/hub_core.hpp"

#include <cxxabi.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <sstream>
#include <system_error>

#include <weft/runtime/detail/spin_pause.hpp>
#include <weft/runtime/errors.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/spawn_options.hpp>

#include "runtime/stack_overflow.hpp"
#include "runtime/switch_annotations.hpp"

#ifndef WEFT_DEFAULT_STACK_SIZE
#define WEFT_DEFAULT_STACK_SIZE (64 * 1024)
#endif

namespace weft::detail {

namespace ctx = boost::context::detail;

namespace {

std::size_t default_stack_size(const HubOptions& options) {
  std::size_t size = options.default_stack_size ? options.default_stack_size
                                                : std::size_t{WEFT_DEFAULT_STACK_SIZE};
  // ASan's redzones make frames bigger; give fibers room for them.
  return built_with_asan ? size * 2 : size;
}

}  // namespace

constinit thread_local HubCore* this_thread_hub __attribute__((tls_model("initial-exec"))) =
    nullptr;
constinit thread_local const std::int64_t* this_thread_virtual_now
    __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

// A fork()ed child has only the thread that forked, and none of the parent's
// hubs: their rings are not mapped in it (io_uring_ring_dontfork), their
// threads do not exist, and their fibers must not be resumed. Forget the
// forking thread's hub, so the child starts with none and may make its own.
void forget_hub_in_child() noexcept {
  this_thread_hub = nullptr;
  this_thread_virtual_now = nullptr;
}

// weft's switch returns on another fiber's stack (context_switch.hpp), which
// a shadow stack (x86 CET, Linux 6.6+, enabled through glibc) takes for an
// attack: the process would die at the first switch. Say so at once instead.
void refuse_shadow_stacks() {
#if defined(__x86_64__)
  constexpr int arch_shstk_status = 0x5005;   // ARCH_SHSTK_STATUS
  constexpr unsigned long shstk_enabled = 1;  // ARCH_SHSTK_SHSTK
  unsigned long features = 0;
  if (::syscall(SYS_arch_prctl, arch_shstk_status, &features) == 0 &&
      (features & shstk_enabled) != 0) {
    throw std::system_error(ENOTSUP, std::generic_category(),
                            "weft: this thread runs with a shadow stack (x86 CET), which weft's "
                            "fiber switch does not support; run without it "
                            "(GLIBC_TUNABLES=glibc.cpu.x86_shstk=off)");
  }
#endif
}

// A kill that nobody catches ends the program: weft::run or Runtime::run
// rethrows the FiberExit of a main fiber that was killed. FiberExit is not a
// std::exception (a catch-all for std::exception must not swallow a kill), so
// the C++ runtime's message would name only its type: say what it means
// first, then let the handler that was installed before this one go on.
std::terminate_handler terminate_before_weft = nullptr;

[[noreturn]] void terminate_explaining_fiber_exit() noexcept {
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const FiberExit& e) {
      // Formatted without allocating: the process is ending, perhaps for want of memory.
      char line[512];
      std::snprintf(line, sizeof line,
                    "%s, and nothing caught the FiberExit: a fiber whose outcome this thread "
                    "waited for (weft::run's main, Runtime::run's main, a GreenThread::wait) "
                    "was killed; catch weft::FiberExit there to handle it",
                    e.what());
      log(LogLevel::error, line);
    } catch (...) {
    }
  }
  if (terminate_before_weft) terminate_before_weft();
  std::abort();
}

void explain_fiber_exit_at_terminate() {
  static const bool installed = [] {
    terminate_before_weft = std::set_terminate(terminate_explaining_fiber_exit);
    return true;
  }();
  static_cast<void>(installed);
}

void forget_hubs_on_fork() {
  static const int installed = ::pthread_atfork(nullptr, nullptr, forget_hub_in_child);
  if (installed != 0) throw std::system_error(installed, std::generic_category(), "pthread_atfork");
}

}  // namespace

std::atomic<std::uint64_t> HubCore::fiber_id_source{1};
std::atomic<std::uint64_t> HubCore::timeout_serial_source{1};

SerialBlocks& HubCore::plain_thread_fiber_ids() noexcept {
  thread_local SerialBlocks ids{fiber_id_source};
  return ids;
}

HubCore::HubCore(Hub& owner, const HubOptions& options)
    : owner_(owner),
      virtual_clock_(options.clock == Clock::virtual_time),
      remote_spin_(options.remote_spin),
      current_(&loop_context_),
      exception_globals_(reinterpret_cast<ExceptionGlobals*>(abi::__cxa_get_globals())),
      virtual_now_ns_(steady_now_ns()),
      default_stacks_(default_stack_size(options)),
      backend_(make_backend(options.backend, remote_.wake_fd())) {
  if (this_thread_hub) {
    throw std::logic_error("weft: this thread already runs a hub (one hub per thread)");
  }
  refuse_shadow_stacks();
  forget_hubs_on_fork();
  explain_fiber_exit_at_terminate();
  loop_context_.state_ = FiberState::running;
  if constexpr (built_with_tsan) loop_context_.tsan_fiber_ = tsan_current_fiber();
  loop_context_.set_name("hub");
  install_stack_overflow_handler();
  signal_stack_ = make_signal_stack();
  this_thread_hub = this;
  if (virtual_clock_) this_thread_virtual_now = &virtual_now_ns_;
  remote_.set_hub_sleeping(true);  // a host loop may wait on poll_fd before any round
}

HubCore::~HubCore() {
  kill_all();
  // Nothing of this hub's is in use any more; what other threads post from
  // now on is theirs to do (a queued post is dropped unrun, with what it owns).
  lifeline_->cut();
  release_signal_stack(signal_stack_);
  this_thread_hub = nullptr;
  this_thread_virtual_now = nullptr;
}

void HubCore::throw_not_in_fiber(const char* operation) {
  throw NoHubError(std::string(operation) + ": must be called from a fiber");
}

std::int64_t HubCore::steady_now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const std::int64_t now = HubCore::current_now_ns();
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  if (timeout.count() <= 0) return now;
  return timeout.count() > max - now ? max : now + timeout.count();
}

// --- fibers -------------------------------------------------------------------

void HubCore::prepare(FiberBase* fiber, const SpawnOptions& options) {
  fiber->hub_ = this;
  // From the spawning thread's blocks: this hub's, unless a Runtime spawns
  // here from another thread. Every taker takes whole blocks, so ids spawned
  // in a row on one thread stay consecutive from block to block (bind_stack's
  // stagger counts on it).
  HubCore* here = current();
  fiber->id_ = here ? here->fiber_ids_.take() : plain_thread_fiber_ids().take();
  fiber->requested_stack_size_ = options.stack_size;
  fiber->start_fp_control_ = current_fp_control();
  if (!options.name.empty()) fiber->set_name(options.name);
}

void HubCore::enqueue(FiberBase* fiber, std::optional<std::int64_t> at_ns) {
  live_.push_back(fiber);
  fiber_blocks_.note_live(live_.size());
  if (at_ns) {
    fiber->start_timer_.owner = fiber;
    fiber->start_timer_.fire = [](TimerNode* node) noexcept {
      auto* starting = static_cast<FiberBase*>(node->owner);
      starting->hub_->ready_.push_back(starting);
    };
    timers_.arm(&fiber->start_timer_, *at_ns);
  } else {
    ready_.push_back(fiber);
  }
}

void HubCore::kill(FiberBase* fiber, std::exception_ptr error, bool killer_yields) {
  if (fiber->state_ == FiberState::dead) return;
  if (!error) error = std::make_exception_ptr(FiberExit{});
  if (fiber->state_ == FiberState::created) {
    // Never started: it never will. Its outcome and links happen here, in the killer.
    if (fiber->start_timer_.armed()) {
      timers_.disarm(&fiber->start_timer_);
    } else {
      ready_.remove(fiber);
    }
    fiber->state_ = FiberState::dead;
    live_.remove(fiber);
    attention_ = true;
    fiber->abort_before_start(std::move(error));
    fiber->release();
    return;
  }
  if (fiber == current_) std::rethrow_exception(error);
  interrupt(fiber, std::move(error), 0);
  // The killer yields once, so the target unwinds before kill returns.
  if (killer_yields && running_fiber()) yield_now();
}

void HubCore::kill_all() {
  std::vector<FiberBase*> alive;
  while (!live_.empty()) {  // left by the break below once nothing is alive
    // A snapshot: links run by a kill may spawn or end other fibers.
    alive.clear();
    live_.for_each([&](FiberBase* fiber) {
      fiber->add_ref();
      alive.push_back(fiber);
    });
    for (FiberBase* fiber : alive) {
      if (fiber->state_ == FiberState::created) {
        kill(fiber, nullptr);
      } else if (!kill_pending(*fiber)) {
        // Again if it caught the last FiberExit and suspended once more.
        interrupt(fiber, std::make_exception_ptr(FiberExit{}), 0);
      }
      fiber->release();
    }
    if (live_.empty()) break;
    run_round(ready_.empty() ? std::nullopt : std::optional(std::chrono::nanoseconds{0}), false);
  }
}

void HubCore::interrupt(FiberBase* fiber, std::exception_ptr error, std::uint64_t source) noexcept {
  if (fiber->state_ == FiberState::dead || fiber->state_ == FiberState::created) return;
  // A pending kill is never replaced; a kill replaces a pending Timeout, and
  // so does an older (outer) Timeout: its error unwinds through the newer
  // one's scope, whereas dropping it would leave the outer scope, once the
  // inner has caught its error, without a deadline.
  if (fiber->interrupt_ &&
      (fiber->interrupt_source_ == 0 || (source != 0 && source > fiber->interrupt_source_)))
    return;
  fiber->interrupt_ = std::move(error);
  fiber->interrupt_source_ = source;
  if (fiber->state_ != FiberState::suspended) return;  // ready: throws when it resumes
  if (fiber->interrupt_hook_) {
    fiber->interrupt_hook_->on_interrupt(*fiber);
  } else {
    fiber->state_ = FiberState::ready;
    make_ready_first(fiber);
  }
}

void HubCore::withdraw_interrupt(FiberBase* fiber, std::uint64_t source) noexcept {
  if (fiber->interrupt_ && fiber->interrupt_source_ == source) {
    fiber->interrupt_ = nullptr;
    fiber->interrupt_source_ = 0;
  }
}

void HubCore::make_ready_first(FiberBase* fiber) noexcept {
  ready_.push_front(fiber);
  if (running_fiber()) ++round_budget_;  // it runs in this round, before the rest
}

// --- suspension ---------------------------------------------------------------

void HubCore::rethrow_interrupt(FiberBase& self) {
  std::exception_ptr error = std::move(self.interrupt_);
  self.interrupt_ = nullptr;
  self.interrupt_source_ = 0;
  std::rethrow_exception(error);
}

void HubCore::fiber_entry(ctx::transfer_t from) noexcept {
  HubCore* hub = this_thread_hub;
  hub->after_resume(from);
  hub->current_->run_body();
  hub->current_->destroy_locals();  // still in the fiber, on its stack
  hub->exit_running_fiber();
}

void HubCore::exit_running_fiber() noexcept {
  FiberBase* self = current_;
  self->state_ = FiberState::dead;
  self->wait_reason_ = "ended";
  live_.remove(self);
  attention_ = true;
  switch_out(self);  // retire() runs in whichever context comes next
  __builtin_unreachable();
}

bool HubCore::bind_stack(FiberBase* fiber) noexcept {
  try {
    Stack stack = pool_for(fiber->requested_stack_size_).acquire();
    asan_unpoison_stack(stack.base, stack.size);
    fiber->stack_base_ = stack.base;
    fiber->stack_size_ = stack.size;
    // Fibers spawned one after another start at different offsets in their
    // top page. Two fibers that switch back and forth would otherwise save and
    // restore their registers at addresses equal modulo 4 KiB, and the CPU,
    // which checks a load against earlier stores by those 12 bits first,
    // stalls the one's loads on the other's stores (4K aliasing: a yield
    // ping-pong took 13-15 ns instead of 10.7).
    const std::size_t stagger = (fiber->id_ % stack_staggers) * stack_stagger_step;
    fiber->context_ = ctx::make_fcontext(static_cast<char*>(stack.base) + stack.size - stagger,
                                         stack.size - stagger, &fiber_entry);
    set_start_fp_control(fiber->context_, fiber->start_fp_control_);
    if constexpr (built_with_tsan) fiber->tsan_fiber_ = tsan_create_fiber();
    fiber->has_run_.store(true, std::memory_order_relaxed);
    return true;
  } catch (...) {
    // No stack for it: it ends unrun, and its wait() tells why.
    fiber->state_ = FiberState::dead;
    live_.remove(fiber);
    attention_ = true;
    fiber->abort_before_start(std::current_exception());
    fiber->release();
    return false;
  }
}

void HubCore::retire(FiberBase* fiber) noexcept {
  pool_for(fiber->requested_stack_size_).release(Stack{fiber->stack_base_, fiber->stack_size_});
  if constexpr (built_with_tsan) {
    tsan_destroy_fiber(fiber->tsan_fiber_);
    fiber->tsan_fiber_ = nullptr;
  }
  fiber->stack_base_ = nullptr;
  fiber->release();
}

StackPool& HubCore::pool_for(std::size_t size) {
  if (size == 0 || size == default_stacks_.stack_size()) return default_stacks_;
  for (auto& pool : sized_stacks_) {
    if (pool->stack_size() >= size && pool->stack_size() - size < 4096) return *pool;
  }
  sized_stacks_.push_back(std::make_unique<StackPool>(size));
  return *sized_stacks_.back();
}

// --- the loop -----------------------------------------------------------------

void HubCore::run_round(std::optional<std::chrono::nanoseconds> max_wait, bool chain_rounds) {
  if (running_fiber())
    throw std::logic_error("weft: a hub's loop cannot run inside one of its fibers");
  attention_ = false;
  chain_rounds_ = chain_rounds;
  remote_.set_hub_sleeping(false);
  // A round a host loop asked for enters the kernel even when it need not
  // wait: the wake-up that made poll_fd readable must be consumed.
  poll(ready_.empty() ? max_wait : std::optional(std::chrono::nanoseconds{0}), !chain_rounds);
  run_ready();
  if (!chain_rounds) {
    // Back to a host loop that sleeps on poll_fd: submit what the fibers
    // queued, and have posts from other threads kick the eventfd.
    backend_->flush();
    remote_.set_hub_sleeping(true);
  }
}

void HubCore::poll(std::optional<std::chrono::nanoseconds> max_wait, bool collect) {
  // Posted work that ran counts as this round's event: the caller (run_until's
  // predicate, an embedding loop) must get to look before the hub blocks.
  const bool ran_posts = remote_.run_pending(post_error_handler()) != 0;
  if (ran_posts || !ready_.empty() || stop_flag_.load(std::memory_order_relaxed)) {
    max_wait = std::chrono::nanoseconds{0};
  } else if (virtual_clock_ && virtual_timer_pending()) [[unlikely]] {
    return jump_to_next_timer(collect);
  }
  if (!timers_.empty() && (!max_wait || max_wait->count() > 0)) {
    const auto until_timer =
        std::chrono::nanoseconds(std::max<std::int64_t>(0, timers_.top_deadline() - now_ns()));
    if (!max_wait || until_timer < *max_wait) max_wait = until_timer;
  }
  if ((!max_wait || max_wait->count() > 0) && remote_wakeups_expected_ > 0 &&
      spin_for_remote_post(max_wait)) {
    max_wait = std::chrono::nanoseconds{0};
  }
  const bool may_block = !max_wait || max_wait->count() > 0;
  if (may_block) {
    trim_idle_memory();
    remote_.set_hub_sleeping(true);
    if (remote_.maybe_pending()) max_wait = std::chrono::nanoseconds{0};
    if (before_blocking_) before_blocking_();
  }
  backend_->wait(max_wait, collect);
  if (may_block) remote_.set_hub_sleeping(false);
  remote_.run_pending(post_error_handler());
  fire_due_timers();
}

bool HubCore::virtual_timer_pending() const noexcept {
  // A timer at the largest deadline never fires (detail/deadline.hpp): jumping
  // to it would end a wait for ever. The hub waits for real instead.
  return !timers_.empty() && timers_.top_deadline() != std::numeric_limits<std::int64_t>::max();
}

void HubCore::jump_to_next_timer(bool collect) {
  // The hub would wait for its next timer: a virtual clock jumps to it
  // instead, whatever the round's max_wait (a host loop calls run_once
  // without waiting, since next_deadline() is zero). But first a look,
  // without waiting, for what arrived meanwhile: it came first in real time,
  // so it runs first, at the present instant. Pending io and other threads'
  // work do not hold the clock back: only what is here now counts.
  backend_->wait(std::chrono::nanoseconds{0}, collect);
  const bool ran_posts = remote_.run_pending(post_error_handler()) != 0;
  if (ready_.empty() && !ran_posts && virtual_timer_pending())
    virtual_now_ns_ = std::max(virtual_now_ns_, timers_.top_deadline());
  fire_due_timers();
}

bool HubCore::spin_for_remote_post(std::optional<std::chrono::nanoseconds> max_wait) noexcept {
  // A fiber waits for another thread that is working for it right now (a
  // to_thread call): its answer usually comes within microseconds, sooner
  // than this thread could go to sleep and be woken again (a wake-up across
  // CPUs costs 10-40 us on a VM). Poll for it a little first. Bounded, so an
  // idle hub burns at most remote_spin_ per wait.
  std::int64_t budget = remote_spin_.count();
  if (max_wait) budget = std::min<std::int64_t>(budget, max_wait->count());
  if (budget <= 0) return false;
  const std::int64_t until = steady_now_ns() + budget;
  for (unsigned i = 1;; ++i) {
    if (remote_.maybe_pending()) return true;
    spin_pause();
    if (i % 64 == 0 && steady_now_ns() >= until) return false;
  }
}

void HubCore::trim_idle_memory() noexcept {
  // Going idle: a good moment to return the memory of cold stacks and of ended
  // fibers (a burst leaves many behind). Bounded: each stack costs a syscall,
  // each block a free().
  constexpr std::size_t keep_hot = 256;
  constexpr std::size_t per_idle_round = 256;
  default_stacks_.trim(keep_hot, per_idle_round);
  for (auto& pool : sized_stacks_)
    pool->trim(keep_hot, per_idle_round);
  constexpr std::size_t blocks_per_idle_round = 16 * 1024;
  fiber_blocks_.trim(keep_hot, blocks_per_idle_round);
}

inline void HubCore::fire_due_timers() noexcept {
  if (timers_.empty()) return;
  const std::int64_t now = now_ns();
  while (TimerNode* due = timers_.pop_due(now))
    due->fire(due);
}

void HubCore::run_ready() {
  round_budget_ = ready_.size();
  for (;;) {
    if (FiberBase* next = pick_next()) jump(&loop_context_, next);
    if (round_budget_ == 0) return;  // the round is over; else it paused for a look
    look_inside_round();
  }
}

void HubCore::look_inside_round() {
  // Nothing here waits: the rest of the round is ready to run.
  remote_.run_pending(post_error_handler());
  if (backend_->needs_polling()) backend_->wait(std::chrono::nanoseconds{0});
  fire_due_timers();
}

void HubCore::run_until(const std::function<bool()>& done) {
  while (!done()) {
    if (stop_flag_.exchange(false)) return;
    run_round(std::nullopt, true);
  }
}

void HubCore::run_until_idle() {
  run_until([this] { return idle(); });
}

bool HubCore::idle() const noexcept {
  return live_.empty() && timers_.empty() && !backend_->has_operations_in_flight() &&
         !remote_.maybe_pending();
}

std::optional<std::chrono::nanoseconds> HubCore::next_deadline() const {
  if (!ready_.empty() || remote_.maybe_pending()) return std::chrono::nanoseconds{0};
  if (timers_.empty()) return std::nullopt;
  // Virtual time passes in run_once, at once: the host loop must not sleep for it.
  if (virtual_clock_ && virtual_timer_pending()) return std::chrono::nanoseconds{0};
  return std::chrono::nanoseconds(std::max<std::int64_t>(0, timers_.top_deadline() - now_ns()));
}

void HubCore::request_stop() noexcept {
  stop_flag_.store(true, std::memory_order_relaxed);
  remote_.kick();
}

// --- reporting ----------------------------------------------------------------

void HubCore::report_error(std::string_view fiber_name, std::exception_ptr error) noexcept {
  try {
    if (error_handler_) {
      error_handler_(fiber_name, error);
      return;
    }
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (const FiberExit& e) {
      what = e.what();
    } catch (...) {
    }
    log(LogLevel::error, "exception in fiber '" + std::string(fiber_name) + "': " + what);
  } catch (...) {
    log(LogLevel::error, "the hub's error handler threw; exception dropped");
  }
}

std::string HubCore::dump() const {
  std::ostringstream out;
  live_.for_each([&](FiberBase* fiber) {
    out << '#' << fiber->id_ << ' ' << (fiber->name().empty() ? "-" : fiber->name()) << ' '
        << to_string(fiber->state_);
    if (fiber->state_ == FiberState::suspended) out << " waiting on " << fiber->wait_reason_;
    out << '\n';
  });
  return out.str();
}

}  // namespace weft::detail

// Managed processes: each run is a detail::ProcessWork (the child, watched
// by a fiber on a hub worker, reaped there, its exception or exit status
// settled there), plus a control channel the parent writes to.
//
// The channel is a SOCK_STREAM socketpair: for spawn and forkserver the one
// process_main reads the arguments from (fd 3 in the child; the parent keeps
// its end, ChildReportHooks::keep_channel), for fork one made here before
// the fork. The parent sends frames on it: 'S' stop (a pausable child
// pauses), 'R' resume, 'E' end, 'I' and an encoded item or command. The child
// answers on its report pipe with 'M' frames (ChildReportHooks::on_message):
// 'A' an item begun, 'Z' parked after a pause, 'W' the channel was emptied.
//
// The parent never blocks on the channel: what the socket does not take now
// waits in an outbox, sent again whenever the child says anything (it says
// 'W' each time it has emptied the socket). Items stay in the parent's
// `unacked` list until the child says it began them, so the items a child
// never took are sent again to the next child (queue_size counts them).
//
// A child does not rely on EOF to learn that its parent has gone (a forked
// child of the parent may hold the parent's end of the channel): it keeps a
// pidfd of the process that made the object and watches it in every wait
// and between iterations (getppid() where pidfds are missing).

#include <weft/process/managed_process.hpp>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include <weft/process/destroyable.hpp>
#include <weft/runtime/detail/deadline.hpp>
#include <weft/runtime/detail/event_count.hpp>
#include <weft/runtime/log.hpp>

#include "process/child_report.hpp"
#include "process/periodic_schedule.hpp"
#include "runtime/exception_text.hpp"

namespace weft {
namespace detail {
namespace {

using Clock = std::chrono::steady_clock;

// Parent → child.
constexpr char stop_message = 'S';
constexpr char resume_message = 'R';
constexpr char end_message = 'E';
constexpr char item_message = 'I';
// Child → parent.
constexpr char item_begun = 'A';
constexpr char parked = 'Z';
constexpr char emptied = 'W';

// The longest a child waits before it looks at its parent again (when a
// pidfd does not wake it first).
constexpr std::int64_t owner_check_ns = 100'000'000;

// In a spawned or served child, the socket process_main read the arguments
// from.
constexpr int spawned_control_fd = 3;

constexpr const char* managed_entry_name = "weft.managed_process";

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

const char* class_name(ManagedProcessKind kind) {
  switch (kind) {
    case ManagedProcessKind::continuous:
      return "weft::ContinuousProcess";
    case ManagedProcessKind::pausable:
      return "weft::PausableProcess";
    case ManagedProcessKind::periodic:
      return "weft::PeriodicProcess";
    case ManagedProcessKind::operation:
      return "weft::OperationProcess";
    case ManagedProcessKind::command:
      return "weft::CommandProcess";
  }
  return "weft::ManagedProcess";
}

// ----- commands -----

struct CommandRegistry {
  std::mutex mutex;
  std::map<std::pair<std::string, std::string>, CommandInvoker, std::less<>> commands;
  std::set<std::pair<std::string, std::string>> clashes;
  std::map<std::string, CommandObjectFactory, std::less<>> factories;
};

// Made on first use, so commands registered by any static initializer find it.
CommandRegistry& command_registry() {
  static CommandRegistry* const instance = new CommandRegistry;  // children exit without it
  return *instance;
}

CommandObjectFactory find_command_factory(const std::string& type_key) {
  CommandRegistry& registry = command_registry();
  std::lock_guard lock(registry.mutex);
  const auto found = registry.factories.find(type_key);
  return found == registry.factories.end() ? nullptr : found->second;
}

}  // namespace

void register_command(const std::string& type_key, const std::string& name, CommandInvoker invoke,
                      CommandObjectFactory factory) noexcept {
  try {
    CommandRegistry& registry = command_registry();
    std::lock_guard lock(registry.mutex);
    auto key = std::make_pair(type_key, name);
    if (!registry.commands.emplace(key, invoke).second) registry.clashes.insert(std::move(key));
    registry.factories.emplace(type_key, factory);
  } catch (...) {
    // Out of memory before main: running the command will say it is missing.
  }
}

void run_command_payload(const std::string& type_key, void* object,
                         std::string_view payload) noexcept {
  std::string name;
  try {
    name = Codec<std::string>::decode(payload);
    CommandInvoker invoke = nullptr;
    {
      CommandRegistry& registry = command_registry();
      std::lock_guard lock(registry.mutex);
      const auto key = std::make_pair(type_key, name);
      const auto found = registry.commands.find(key);
      if (found != registry.commands.end() && !registry.clashes.contains(key))
        invoke = found->second;
    }
    if (!invoke) {
      log(LogLevel::error, "weft::CommandProcess: no command '" + name + "' of " +
                               demangled_name(type_key.c_str()) + " (or more than one)");
      return;
    }
    invoke(object, payload);
  } catch (...) {
    try {
      log(LogLevel::error, "weft::CommandProcess: command '" + name + "' of " +
                               demangled_name(type_key.c_str()) +
                               " failed: " + exception_text(std::current_exception()));
    } catch (...) {
    }
  }
}

namespace {

// ----- the child's side -----

struct ChildConfig {
  ManagedProcessKind kind = ManagedProcessKind::continuous;
  std::int64_t interval_ns = 0;
  pid_t owner = -1;             // the process that made the object
  bool parent_is_owner = true;  // false for a forkserver child
  std::string name;
};

struct ChildFunctions {
  std::function<void()> init;
  std::function<void()> cleanup;
  std::function<void()> target;
  std::function<std::function<void(std::string_view)>()> make_item_runner;
};

class ChildLoop {
 public:
  ChildLoop(const ChildConfig& config, int control, int report)
      : config_(config), control_(control), report_(report), parent_(::getppid()) {
    owner_pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, config.owner, 0));
    if (owner_pidfd_ < 0 && errno == ESRCH) owner_gone_ = true;
    // The owner may have gone before the pidfd was made (and its pid have
    // been taken since): a fork or spawn child then has a new parent.
    if (config.parent_is_owner && parent_ != config.owner) owner_gone_ = true;
  }
  ~ChildLoop() {
    if (owner_pidfd_ >= 0) ::close(owner_pidfd_);
  }
  ChildLoop(const ChildLoop&) = delete;
  ChildLoop& operator=(const ChildLoop&) = delete;

  void run(const ChildFunctions& functions) {
    switch (config_.kind) {
      case ManagedProcessKind::continuous:
      case ManagedProcessKind::pausable:
        return run_continuous(functions.target);
      case ManagedProcessKind::periodic:
        return run_periodic(functions.target);
      case ManagedProcessKind::operation:
      case ManagedProcessKind::command:
        return run_items(functions.make_item_runner());
    }
  }

 private:
  bool over() const { return end_ || owner_gone_; }

  void run_continuous(const std::function<void()>& target) {
    const bool pausable = config_.kind == ManagedProcessKind::pausable;
    for (;;) {
      receive(0);
      if (pausable) {
        // Between iterations: a pause read by now is acted on before the
        // target runs again, so its 'Z' means "the target is not running".
        acknowledge_pauses();
        while (paused_ && !over()) {
          receive(owner_check_ns);
          acknowledge_pauses();
        }
      }
      if (over()) return;
      target();
    }
  }

  void run_periodic(const std::function<void()>& target) {
    PeriodicSchedule schedule(now_ns(), config_.interval_ns);
    for (;;) {
      const std::int64_t due = schedule.due();
      receive(0);
      for (;;) {
        if (over()) return;
        const std::int64_t now = now_ns();
        if (now >= due) break;
        receive(std::min(due - now, owner_check_ns));
      }
      target();
      schedule.advance(now_ns());
    }
  }

  void run_items(const std::function<void(std::string_view)>& run_item) {
    for (;;) {
      // Once asked to end, nothing more is read until the final drain: a
      // parent that keeps adding does not keep a stopped child alive.
      if (!over()) receive(0);
      if (!items_.empty()) {
        run_next(run_item);
        continue;
      }
      if (over()) break;
      receive(owner_check_ns);
    }
    // What was still on its way runs too (continuous_threading drains qsize()).
    if (!control_closed_) read_control();
    while (!items_.empty())
      run_next(run_item);
  }

  void run_next(const std::function<void(std::string_view)>& run_item) {
    const std::string item = std::move(items_.front());
    items_.pop_front();
    tell_parent(item_begun);
    run_item(item);
  }

  void acknowledge_pauses() {
    for (; pauses_to_acknowledge_ > 0; --pauses_to_acknowledge_)
      tell_parent(parked);
  }

  // Takes in what the channel holds, waiting up to `wait_ns` for something
  // to arrive (or the owner to go) if nothing has.
  void receive(std::int64_t wait_ns) {
    pollfd waiting[2] = {{.fd = control_closed_ ? -1 : control_, .events = POLLIN, .revents = 0},
                         {.fd = owner_pidfd_, .events = POLLIN, .revents = 0}};
    const timespec timeout{.tv_sec = static_cast<time_t>(wait_ns / 1'000'000'000),
                           .tv_nsec = static_cast<long>(wait_ns % 1'000'000'000)};
    const int ready = ::ppoll(waiting, owner_pidfd_ >= 0 ? 2 : 1, &timeout, nullptr);
    if (ready < 0 && errno != EINTR) throw_errno("weft: a managed process waiting (ppoll)");
    if (owner_pidfd_ >= 0 ? waiting[1].revents != 0 : ::getppid() != parent_) owner_gone_ = true;
    if (ready > 0 && waiting[0].revents != 0) read_control();
  }

  void read_control() {
    bool got = false;
    buffer_.resize(65536);
    for (;;) {
      const ssize_t n = ::recv(control_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n > 0) {
        frames_.feed(std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
        got = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // EOF or an error: the parent closes its end only once this child has
      // been reaped, so it has gone.
      control_closed_ = true;
      owner_gone_ = true;
      break;
    }
    while (std::optional<std::string> frame = frames_.next_frame())
      handle(std::move(*frame));
    if (got && !control_closed_) tell_parent(emptied);
  }

  void handle(std::string frame) {
    if (frame.empty()) return;
    switch (frame.front()) {
      case stop_message:
        if (config_.kind == ManagedProcessKind::pausable) {
          paused_ = true;
          ++pauses_to_acknowledge_;
        } else {
          end_ = true;
        }
        break;
      case resume_message:
        paused_ = false;
        break;
      case end_message:
        end_ = true;
        break;
      case item_message:
        frame.erase(0, 1);
        items_.push_back(std::move(frame));
        break;
      default:
        log(LogLevel::error, "weft: a managed process got a message of an unknown kind");
    }
  }

  void tell_parent(char kind) {
    if (report_lost_) return;
    try {
      write_child_frame(report_, std::string{'M', kind});
    } catch (const std::system_error&) {
      report_lost_ = true;  // the parent has gone (SIGPIPE is ignored here)
      owner_gone_ = true;
    }
  }

  const ChildConfig& config_;
  const int control_;
  const int report_;
  const pid_t parent_;
  int owner_pidfd_ = -1;
  FrameReader frames_;
  std::string buffer_;
  std::deque<std::string> items_;
  std::uint64_t pauses_to_acknowledge_ = 0;
  bool paused_ = false;
  bool end_ = false;
  bool owner_gone_ = false;
  bool control_closed_ = false;
  bool report_lost_ = false;
};

// The child's life: init, the loop, cleanup on every path; the first
// exception is rethrown for report_outcome to send.
void run_managed_child(const ChildConfig& config, const ChildFunctions& functions, int control,
                       int report) {
  // A write to a parent that has gone fails instead of killing the child
  // before its cleanup.
  ::signal(SIGPIPE, SIG_IGN);
  if (!config.name.empty()) ::prctl(PR_SET_NAME, config.name.substr(0, 15).c_str(), 0, 0, 0);
  std::exception_ptr failure;
  try {
    ChildLoop loop(config, control, report);
    if (functions.init) functions.init();
    loop.run(functions);
  } catch (...) {
    failure = std::current_exception();
  }
  try {
    if (functions.cleanup) functions.cleanup();
  } catch (...) {
    if (failure) {
      log(LogLevel::warning, "managed process: cleanup threw after an error: " +
                                 exception_text(std::current_exception()));
    } else {
      failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// What a spawned child is told: the config and the names of what it runs.
using SpawnSpec = std::tuple<std::uint8_t,  // kind
                             std::int64_t,  // interval_ns
                             std::int32_t,  // owner
                             bool,          // parent_is_owner
                             std::string,   // name
                             std::string,   // init entry
                             std::string,   // cleanup entry
                             std::string,   // target entry
                             std::string,   // item entry
                             std::string,   // command type
                             bool,          // command object given
                             std::string>;  // command object

std::function<void()> spawned_function(const std::string& entry) {
  if (entry.empty()) return {};
  EntryInvoker invoke = find_process_entry(entry);
  if (!invoke) {
    throw std::invalid_argument("weft: no ProcessEntry named '" + entry +
                                "' (or more than one) in this program");
  }
  return [invoke = std::move(invoke)] { invoke({}); };
}

void run_spawned_managed_child(const std::string& encoded) {
  const auto [kind, interval_ns, owner, parent_is_owner, name, init, cleanup, target, item_entry,
              command_type, has_object, object] = decode_whole<SpawnSpec>(encoded);
  const ChildConfig config{.kind = static_cast<ManagedProcessKind>(kind),
                           .interval_ns = interval_ns,
                           .owner = owner,
                           .parent_is_owner = parent_is_owner,
                           .name = name};
  ChildFunctions functions;
  functions.init = spawned_function(init);
  functions.cleanup = spawned_function(cleanup);
  functions.target = spawned_function(target);
  if (config.kind == ManagedProcessKind::operation) {
    EntryInvoker invoke = find_process_entry(item_entry);
    if (!invoke) {
      throw std::invalid_argument("weft: no ProcessEntry named '" + item_entry +
                                  "' (or more than one) in this program");
    }
    functions.make_item_runner = [invoke] {
      return std::function<void(std::string_view)>(
          [invoke](std::string_view item) { invoke(item); });
    };
  } else if (config.kind == ManagedProcessKind::command) {
    const CommandObjectFactory factory = find_command_factory(command_type);
    if (!factory) {
      throw std::invalid_argument("weft::CommandProcess: no weft::Command of " +
                                  demangled_name(command_type.c_str()) + " in this program");
    }
    functions.make_item_runner = [factory, type = command_type,
                                  object = has_object ? std::optional(object) : std::nullopt] {
      std::shared_ptr<void> instance = factory(object ? &*object : nullptr);
      return std::function<void(std::string_view)>([instance, type](std::string_view payload) {
        run_command_payload(type, instance.get(), payload);
      });
    };
  }
  run_managed_child(config, functions, spawned_control_fd, spawned_report_fd);
}

// Registered before main in every process of the program, so a spawned or
// served child finds it.
const ProcessEntry<void(std::string)> managed_process_entry{
    managed_entry_name, [](std::string spec) { run_spawned_managed_child(spec); }};

// ----- the parent's side -----

// Destroys work that has not ended within a grace period, unless dismissed
// first: a timed wait of the destructor's that no kill or Timeout ends.
class GraceTimer {
 public:
  GraceTimer(std::chrono::nanoseconds grace, std::function<void()> expire)
      : thread_([this, grace = std::min(grace, longest_grace), expire = std::move(expire)] {
          std::unique_lock lock(mutex_);
          if (!dismissed_cv_.wait_for(lock, grace, [this] { return dismissed_; })) expire();
        }) {}
  ~GraceTimer() {
    {
      std::lock_guard lock(mutex_);
      dismissed_ = true;
    }
    dismissed_cv_.notify_all();
    thread_.join();
  }
  GraceTimer(const GraceTimer&) = delete;
  GraceTimer& operator=(const GraceTimer&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable dismissed_cv_;
  bool dismissed_ = false;
  std::thread thread_;  // last: starts once the rest is ready

  // Long enough to mean "for ever", short enough that no clock overflows
  // adding it to now.
  static constexpr std::chrono::nanoseconds longest_grace = std::chrono::hours(24 * 365 * 100);
};

}  // namespace

// What the object and its child's watcher (the report hooks) share. The
// mutex also guards the state's own fields.
struct ManagedChannel {
  std::mutex mutex;
  int fd = -1;  // the parent's end of the running child's channel
  std::string outbox;
  std::size_t outbox_sent = 0;
  std::deque<std::string> unacked;  // item payloads the child has not begun
  std::uint64_t pauses_sent = 0;
  std::uint64_t parks_seen = 0;
  bool exited = false;  // the running child has exited
  EventCount changed;   // parks_seen, exited

  void send_locked(char kind, std::string_view body = {}) {
    std::string payload(1, kind);
    payload.append(body);
    append_frame(outbox, payload);
    flush_locked();
  }

  void flush_locked() noexcept {
    while (fd >= 0 && outbox_sent < outbox.size()) {
      const ssize_t sent = ::send(fd, outbox.data() + outbox_sent, outbox.size() - outbox_sent,
                                  MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent > 0) {
        outbox_sent += static_cast<std::size_t>(sent);
      } else if (sent < 0 && errno == EINTR) {
        continue;
      } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;  // the rest goes when the child says it emptied the socket
      } else {
        outbox_sent = outbox.size();  // the child has gone: nothing reaches it any more
      }
    }
    if (outbox_sent == outbox.size()) {
      outbox.clear();
      outbox_sent = 0;
    } else if (outbox_sent > outbox.size() / 2) {
      outbox.erase(0, outbox_sent);
      outbox_sent = 0;
    }
  }

  void close_locked() noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
    outbox.clear();
    outbox_sent = 0;
  }

  // On the watcher's hub worker.
  void on_message(std::string_view message) {
    {
      std::lock_guard lock(mutex);
      if (!message.empty()) {
        if (message.front() == item_begun && !unacked.empty()) unacked.pop_front();
        if (message.front() == parked) ++parks_seen;
      }
      flush_locked();
    }
    changed.notify_all();
  }

  void on_exit() {
    {
      std::lock_guard lock(mutex);
      exited = true;
    }
    changed.notify_all();
  }
};

class ManagedProcessState {
 public:
  enum class Ask { run, stop, end };

  ManagedProcessState(StartMethod method, ManagedProcessKind kind, ManagedProcessProgram program,
                      std::chrono::nanoseconds interval, ManagedProcessOptions options)
      : method(method),
        kind(kind),
        interval(interval),
        options(std::move(options)),
        program(std::move(program)) {}

  bool in_owner() const { return ::getpid() == owner; }

  void start() {
    if (!in_owner()) {
      throw std::logic_error("weft: a managed process inherited across fork() cannot start");
    }
    for (;;) {
      std::shared_ptr<ProcessWork> ending;
      {
        std::lock_guard lock(channel->mutex);
        if (!work || work->done()) return launch_locked();
        if (ask == Ask::run) return;
        if (kind == ManagedProcessKind::pausable && ask == Ask::stop) {
          ask = Ask::run;
          channel->send_locked(resume_message);
          return;
        }
        ending = work;
      }
      ending->join(std::nullopt);  // asked to end: a new child once it has
    }
  }

  void stop() {
    if (!in_owner()) return;
    std::unique_lock lock(channel->mutex);
    if (!work || work->done() || ask == Ask::end) return;
    if (ask == Ask::run) {
      ask = Ask::stop;
      if (kind == ManagedProcessKind::pausable) ++channel->pauses_sent;
      channel->send_locked(stop_message);
    }
    if (kind != ManagedProcessKind::pausable) return;
    const std::uint64_t pause = channel->pauses_sent;
    lock.unlock();
    // A start() in between resumes it, and a join ends it instead: do not
    // wait for a park that will not come.
    channel->changed.wait_until([&] {
      std::lock_guard relock(channel->mutex);
      return channel->parks_seen >= pause || channel->exited || ask != Ask::stop;
    });
  }

  bool join(std::optional<std::chrono::nanoseconds> timeout) {
    if (!in_owner()) return true;
    std::shared_ptr<ProcessWork> run;
    {
      std::lock_guard lock(channel->mutex);
      if (!work) return true;
      run = work;
      ask_to_end_locked();
    }
    if (!run->join(timeout)) return false;
    std::lock_guard lock(channel->mutex);
    if (work == run) channel->close_locked();
    return true;
  }

  // The destructor's join: the grace period, then destroy; never throws.
  void release() noexcept {
    std::shared_ptr<ProcessWork> run;
    {
      std::lock_guard lock(channel->mutex);
      run = work;
      if (run) ask_to_end_locked();
    }
    if (run && !run->done()) {
      try {
        GraceTimer timer(saturating_ns(options.destroy_grace_period), [run] { run->destroy(); });
        run->join_ignoring_interrupts();
      } catch (const std::system_error&) {
        // No thread for the timer: destroy at once rather than risk a hang.
        run->destroy();
        run->join_ignoring_interrupts();
      }
    }
    std::lock_guard lock(channel->mutex);
    channel->close_locked();
  }

  void push_item(std::string payload) {
    if (!in_owner()) {
      throw std::logic_error("weft: a managed process inherited across fork() cannot start");
    }
    std::lock_guard lock(channel->mutex);
    channel->unacked.push_back(payload);
    if (!work || work->done()) return launch_locked();  // sends every unacked item
    payload.insert(payload.begin(), item_message);
    append_frame(channel->outbox, payload);
    channel->flush_locked();
  }

  bool is_alive() const {
    if (!in_owner()) return false;
    std::lock_guard lock(channel->mutex);
    return work && !work->done() && ask == Ask::run;
  }
  std::exception_ptr error() const {
    std::lock_guard lock(channel->mutex);
    return work && work->done() ? work->error() : nullptr;
  }
  pid_t pid() const {
    std::lock_guard lock(channel->mutex);
    return work ? work->pid() : -1;
  }
  std::size_t queued_items() const {
    std::lock_guard lock(channel->mutex);
    return channel->unacked.size();
  }

 private:
  void ask_to_end_locked() {
    if (work->done() || ask == Ask::end) return;
    ask = Ask::end;
    channel->send_locked(end_message);
  }

  void launch_locked() {
    channel->close_locked();  // the last child's
    ChildReportHooks hooks;
    hooks.on_message = [channel = channel](std::string_view message) {
      channel->on_message(message);
    };
    hooks.on_exit = [channel = channel](pid_t, int, std::string) { channel->on_exit(); };
    const DestroyableOptions destroyable{.destroy_grace_period = options.destroy_grace_period,
                                         .completion_event = nullptr};
    const ChildConfig config{.kind = kind,
                             .interval_ns = interval.count(),
                             .owner = ::getpid(),
                             .parent_is_owner = method != StartMethod::forkserver,
                             .name = options.name};
    std::shared_ptr<ProcessWork> next;
    int fd = -1;
    std::string first;  // spawn, forkserver: the arguments frame
    if (method == StartMethod::fork) {
      int pair[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        throw_errno("weft: a managed process's channel (socketpair)");
      const int flags = ::fcntl(pair[0], F_GETFL);
      ChildFunctions functions{.init = options.init.function(),
                               .cleanup = options.cleanup.function(),
                               .target = program.target.function(),
                               .make_item_runner = program.make_item_runner};
      try {
        if (flags < 0 || ::fcntl(pair[0], F_SETFL, flags | O_NONBLOCK) < 0)
          throw_errno("weft: a managed process's channel (O_NONBLOCK)");
        next = std::make_shared<ProcessWork>(
            destroyable,
            UniqueFunction<std::string(int)>([config, functions = std::move(functions),
                                              control = pair[1], parent = pair[0]](int report_fd) {
              ::close(parent);
              run_managed_child(config, functions, control, report_fd);
              return std::string();
            }),
            std::move(hooks));
        next->start();
      } catch (...) {
        ::close(pair[0]);
        ::close(pair[1]);
        throw;
      }
      ::close(pair[1]);
      fd = pair[0];
    } else {
      hooks.keep_channel = true;
      next = std::make_shared<ProcessWork>(destroyable, method, managed_entry_name, std::string(),
                                           std::move(hooks));
      next->start();
      fd = next->take_channel();
      const SpawnSpec spec{static_cast<std::uint8_t>(kind),
                           interval.count(),
                           config.owner,
                           config.parent_is_owner,
                           options.name,
                           options.init.entry_name(),
                           options.cleanup.entry_name(),
                           program.target.entry_name(),
                           program.item_entry,
                           program.command_type,
                           program.command_object.has_value(),
                           program.command_object.value_or(std::string())};
      append_frame(first, encode_all(encode_all(spec)));  // the entry's one argument
    }
    work = std::move(next);
    ask = Ask::run;
    channel->fd = fd;
    channel->outbox = std::move(first);
    channel->outbox_sent = 0;
    channel->pauses_sent = 0;
    channel->parks_seen = 0;
    channel->exited = false;
    for (const std::string& item : channel->unacked) {
      std::string payload(1, item_message);
      payload.append(item);
      append_frame(channel->outbox, payload);
    }
    channel->flush_locked();
  }

  const StartMethod method;
  const ManagedProcessKind kind;
  const std::chrono::nanoseconds interval;
  const ManagedProcessOptions options;
  const ManagedProcessProgram program;
  const pid_t owner = ::getpid();
  const std::shared_ptr<ManagedChannel> channel = std::make_shared<ManagedChannel>();
  // Guarded by channel->mutex.
  std::shared_ptr<ProcessWork> work;  // the running or last child
  Ask ask = Ask::run;
};

}  // namespace detail

ManagedProcess::ManagedProcess(StartMethod method, detail::ManagedProcessKind kind,
                               detail::ManagedProcessProgram program,
                               std::chrono::nanoseconds interval, ManagedProcessOptions options) {
  using detail::ManagedProcessKind;
  const char* who = detail::class_name(kind);
  detail::saturating_ns(options.destroy_grace_period);  // std::invalid_argument for NaN
  const bool has_target =
      kind != ManagedProcessKind::operation && kind != ManagedProcessKind::command;
  if (has_target && !program.target)
    throw std::invalid_argument(std::string(who) + ": empty target");
  if (method != StartMethod::fork) {
    for (const ProcessFunction<void()>* function :
         {&program.target, &options.init, &options.cleanup}) {
      if (*function && function->entry_name().empty()) detail::throw_not_an_entry(method, who);
    }
    if (kind == ManagedProcessKind::command &&
        !detail::find_command_factory(program.command_type)) {
      throw std::invalid_argument(std::string(who) +
                                  ": with spawn or forkserver the child makes the object through a "
                                  "weft::Command of its type, and none is registered");
    }
  }
  state_ = std::make_shared<detail::ManagedProcessState>(method, kind, std::move(program), interval,
                                                         std::move(options));
}

ManagedProcess::~ManagedProcess() {
  if (!state_->in_owner()) {
    // In a fork()ed child: the child process belongs to the parent, and
    // destroying its ProcessWork here would kill it. Kept for ever instead.
    static_cast<void>(new std::shared_ptr<detail::ManagedProcessState>(std::move(state_)));
    return;
  }
  state_->release();
}

void ManagedProcess::start() {
  state_->start();
}

void ManagedProcess::stop() {
  state_->stop();
}

bool ManagedProcess::join(std::optional<std::chrono::duration<double>> timeout) {
  std::optional<std::chrono::nanoseconds> limit;
  if (timeout) limit = detail::saturating_ns(*timeout);
  return state_->join(limit);
}

bool ManagedProcess::is_alive() const {
  return state_->is_alive();
}

std::exception_ptr ManagedProcess::error() const {
  return state_->error();
}

pid_t ManagedProcess::pid() const {
  return state_->pid();
}

void ManagedProcess::push_item(std::string payload) {
  state_->push_item(std::move(payload));
}

std::size_t ManagedProcess::queued_items() const {
  return state_->queued_items();
}

std::chrono::nanoseconds ManagedProcess::checked_interval(std::chrono::duration<double> interval) {
  const std::chrono::nanoseconds ns = detail::saturating_ns(interval);
  if (ns.count() < 0) throw std::invalid_argument("weft: a negative PeriodicProcess interval");
  return ns;
}

}  // namespace weft

#pragma once
/// Managed processes (continuous_threading's `safe_multiprocessing`): the
/// managed threads of managed_thread.hpp with the loop in a child process.
/// ContinuousProcess, PausableProcess, PeriodicProcess and OperationProcess<T>
/// mirror ContinuousThread, PausableThread, PeriodicThread and
/// OperationThread<T>; CommandProcess<T> keeps an object in a child and runs
/// named commands (Command) on it, in order.
///
/// Each object owns at most one child at a time. The child runs the options'
/// `init` once, then the loop, then `cleanup` once, on every path: an
/// exception from `init`, the target or `cleanup` ends the loop, `cleanup`
/// still runs, and the exception comes back to the parent as a ChildError in
/// error(). The parent talks to the child over a socket (stop, resume, end,
/// items, commands) and hears from it over its report pipe.
///
/// What each start method accepts (see process_entry.hpp for the methods):
/// - `fork`: the target, init and cleanup may be any callables (they run in
///   the forked copy of the parent), and so may ProcessEntrys.
/// - `spawn` and `forkserver`: the target, init and cleanup must be
///   ProcessEntrys (`ProcessEntry<void()>`; `ProcessEntry<void(T)>` for an
///   OperationProcess<T>), since a fresh process finds its functions by
///   name; a plain callable throws std::invalid_argument at construction.
///   The program calls weft::process_main first thing in main.
/// - Items of an OperationProcess<T> and the arguments of commands cross
///   into the child through weft::Codec, for every start method (a type
///   without one is a compile error that names Codec).
///
/// A child whose parent has died stops by itself: it watches the process
/// that made the object (a pidfd, and getppid() as a fallback) in every
/// wait and between iterations, and ends as if joined (an OperationProcess
/// child runs the items it already holds). A forkserver child's parent is
/// the server, which exits with the program.
///
/// The waits (join, PausableProcess::stop, the destructor) suspend only the
/// calling fiber inside a weft fiber and block a plain thread otherwise. The
/// child is watched by a fiber on a hub worker thread, as a
/// DestroyableProcess is; every child is reaped and every fd closed, on
/// every path. Unlike managed threads, live managed processes are not
/// stopped at exit by shutdown_managed_threads: their children notice the
/// exit and stop by themselves. A fork()ed child must not use objects it
/// inherited.

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <weft/process/codec.hpp>
#include <weft/process/process_entry.hpp>

namespace weft {

template <class Sig>
class ProcessFunction;

namespace detail {
/// A callable that ProcessFunction `Self` (of arguments `Args`) wraps as a
/// plain callable (not a ProcessEntry, nor another ProcessFunction).
template <class F, class Self, class... Args>
concept plain_child_callable =
    std::invocable<F&, Args...> && !std::is_same_v<std::decay_t<F>, Self> &&
    !is_process_entry_v<std::decay_t<F>>;
}  // namespace detail

/// A function for a managed process's child: either a ProcessEntry (any
/// start method) or, for StartMethod::fork only, any callable. Empty when
/// default-constructed, or made from a null function pointer or an empty
/// std::function.
template <class... Args>
class ProcessFunction<void(Args...)> {
 public:
  ProcessFunction() = default;
  /// A registered function, found by name in a spawned child.
  ProcessFunction(const ProcessEntry<void(Args...)>& entry)
      : entry_name_(entry.name()), function_(entry) {}
  /// Any callable (its result is ignored): for StartMethod::fork only.
  template <detail::plain_child_callable<ProcessFunction, Args...> F>
  ProcessFunction(F function) {
    if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
      if (function == nullptr) return;
    } else if constexpr (requires { function.operator bool(); }) {
      if (!function) return;  // an empty std::function
    }
    function_ = [function = std::move(function)](Args... args) mutable {
      std::invoke(function, std::forward<Args>(args)...);
    };
  }

  explicit operator bool() const noexcept { return static_cast<bool>(function_); }
  /// The ProcessEntry's name; empty for a plain callable (or nothing).
  const std::string& entry_name() const noexcept { return entry_name_; }
  /// The function itself (what a forked child calls).
  const std::function<void(Args...)>& function() const noexcept { return function_; }

 private:
  std::string entry_name_;
  std::function<void(Args...)> function_;
};

struct ManagedProcessOptions {
  /// The child's name in /proc/<pid>/comm (its first 15 bytes); left as it
  /// is if empty.
  std::string name{};
  /// Runs once in the child before the first iteration.
  ProcessFunction<void()> init{};
  /// Runs once in the child after the last iteration, on every path (after
  /// an exception from init or the target too).
  ProcessFunction<void()> cleanup{};
  /// How long the destructor waits for the child to end before it destroys
  /// it (SIGTERM to its group), and then after SIGTERM before SIGKILL.
  std::chrono::duration<double> destroy_grace_period{10};
};

namespace detail {

enum class ManagedProcessKind : std::uint8_t { continuous, pausable, periodic, operation, command };

/// What a managed process's child runs. With fork, the callables (run in the
/// forked copy); with spawn and forkserver, ProcessEntry names.
struct ManagedProcessProgram {
  ProcessFunction<void()> target{};
  /// Operation and command processes: called in the child once (after init)
  /// to make the function that runs one encoded item (fork only).
  std::function<std::function<void(std::string_view)>()> make_item_runner{};
  /// Operation processes with spawn or forkserver: the ProcessEntry that
  /// runs an item.
  std::string item_entry{};
  /// Command processes: the object's type (command_type_key) and, if the
  /// child is not to default-construct it, its encoding (spawn, forkserver).
  std::string command_type{};
  std::optional<std::string> command_object{};
};

/// The registry key of a command object's type.
template <class T>
std::string command_type_key() {
  return typeid(T).name();
}

/// Runs a registered command on `object` (a T of the command's type) with
/// encoded arguments.
using CommandInvoker = void (*)(void* object, std::string_view arguments);
/// Makes a command process's object in a spawned child: from its encoding,
/// or default-constructed when `encoded` is null.
using CommandObjectFactory = std::shared_ptr<void> (*)(const std::string* encoded);

/// Registers the command `name` of type `type_key` (before main; any
/// thread), and the factory of its objects (the first one registered for
/// the type is kept). A name taken twice is reported when it is run.
void register_command(const std::string& type_key, const std::string& name, CommandInvoker invoke,
                      CommandObjectFactory factory) noexcept;

/// In a command process's child: runs one command payload (command_payload)
/// on `object`, of the type `type_key`, logging (not throwing) what goes
/// wrong: an unknown name, arguments that do not decode, an exception.
void run_command_payload(const std::string& type_key, void* object,
                         std::string_view payload) noexcept;

template <class M>
struct MemberFunctionTraits;
#define WEFT_MEMBER_FUNCTION_TRAITS(QUALIFIERS)            \
  template <class C, class R, class... A>                  \
  struct MemberFunctionTraits<R (C::*)(A...) QUALIFIERS> { \
    using Object = C;                                      \
    using Arguments = std::tuple<std::decay_t<A>...>;      \
  };
WEFT_MEMBER_FUNCTION_TRAITS()
WEFT_MEMBER_FUNCTION_TRAITS(const)
WEFT_MEMBER_FUNCTION_TRAITS(noexcept)
WEFT_MEMBER_FUNCTION_TRAITS(const noexcept)
#undef WEFT_MEMBER_FUNCTION_TRAITS

template <class T>
std::shared_ptr<void> make_command_object(const std::string* encoded) {
  if (encoded) {
    if constexpr (has_codec<T>) {
      return std::make_shared<T>(decode_whole<T>(*encoded));
    } else {
      throw std::logic_error("weft::CommandProcess: the object has no weft::Codec");
    }
  }
  if constexpr (std::default_initializable<T>) {
    return std::make_shared<T>();
  } else {
    throw std::logic_error("weft::CommandProcess: the object cannot be default-constructed");
  }
}

/// The payload of one command for the child: its name and its encoded
/// arguments.
inline std::string command_payload(std::string_view name, std::string arguments) {
  std::string payload;
  Codec<std::string>::encode(std::string(name), payload);
  payload += arguments;
  return payload;
}

/// A command's argument as send_cmd by name encodes it: character strings
/// as std::string, anything else as it is.
template <class A>
decltype(auto) as_sent(const A& argument) {
  if constexpr (std::is_convertible_v<const A&, const char*>) {
    return std::string(argument);
  } else {
    return (argument);
  }
}

class ManagedProcessState;

}  // namespace detail

/// A command of a CommandProcess<T>: the member function `Method` of T, by
/// name. Define it at namespace scope, so that a spawned child has it too:
///
///     inline const weft::Command<&Point::set_x> set_x{"set_x"};
///
/// Its arguments cross into the child through weft::Codec (a type without
/// one is a compile error naming Codec); its result is ignored. The name is
/// unique among the commands of T.
template <auto Method>
requires std::is_member_function_pointer_v<decltype(Method)>
class Command {
  using Traits = detail::MemberFunctionTraits<decltype(Method)>;

 public:
  using object_type = typename Traits::Object;
  /// The decayed parameter types, as sent.
  using arguments_type = typename Traits::Arguments;

  explicit Command(std::string name) : name_(std::move(name)) {
    static_assert(detail::has_codec<arguments_type>,
                  "weft::Command: every argument type needs a weft::Codec");
    detail::register_command(detail::command_type_key<object_type>(), name_, &invoke,
                             &detail::make_command_object<object_type>);
  }

  const std::string& name() const noexcept { return name_; }

 private:
  static void invoke(void* object, std::string_view arguments) {
    auto decoded = detail::decode_whole<arguments_type>(arguments);
    std::apply(
        [object](auto&... values) {
          (static_cast<object_type*>(object)->*Method)(std::move(values)...);
        },
        decoded);
  }

  std::string name_;
};

/// What every kind of managed process has in common. Not copyable or
/// movable. Calls may come from any thread or fiber of the process that made
/// the object.
class ManagedProcess {
 public:
  ManagedProcess(const ManagedProcess&) = delete;
  ManagedProcess& operator=(const ManagedProcess&) = delete;
  /// Joins (an OperationProcess's child first runs what it was sent); a
  /// child that has not ended after destroy_grace_period is destroyed:
  /// SIGTERM to its group, the grace period again, SIGKILL; then reaped.
  /// Never throws; a kill or Timeout aimed at a fiber destroying the object
  /// stays pending for its next suspension point.
  virtual ~ManagedProcess();

  /// Starts a child, which runs init again, if none is running (never
  /// started, or ended by join, stop or an exception: error() is cleared).
  /// While the child runs it is idempotent, and it resumes a paused
  /// PausableProcess. A child that was asked to end and has not yet is
  /// waited for first (a suspension point), then a new one starts.
  /// Throws std::system_error if no process can be made, std::logic_error
  /// for spawn or forkserver in a program that never called process_main.
  void start();

  /// Asks the child's loop to end after the current iteration (an
  /// OperationProcess: after the current item, and the items the child
  /// already holds run first), without waiting; a PausableProcess instead
  /// pauses, and returns only once the child is parked.
  void stop();

  /// Stops the child, then waits until it has ended and been reaped: true
  /// if it has (or never ran), false if `timeout` passed first (the child
  /// still ends when it can). An OperationProcess's child first runs every
  /// item added before the join. Never rethrows the child's exception: read
  /// error(). Throws std::invalid_argument for a NaN timeout.
  bool join(std::optional<std::chrono::duration<double>> timeout = std::nullopt);

  /// True from start() until the child's loop ends or is asked to stop (or
  /// pause).
  bool is_alive() const;

  /// Once the last child has ended: what init, the target or cleanup threw
  /// there (a ChildError: the type's name and what()), or a
  /// std::runtime_error naming the signal or exit code of a child that died
  /// otherwise; null if it ended cleanly, if it was destroyed by the
  /// destructor, or while it runs. start() clears it.
  std::exception_ptr error() const;

  /// The last child's pid; -1 before the first start().
  pid_t pid() const;

 protected:
  ManagedProcess(StartMethod method, detail::ManagedProcessKind kind,
                 detail::ManagedProcessProgram program, std::chrono::nanoseconds interval,
                 ManagedProcessOptions options);

  /// OperationProcess and CommandProcess: sends one encoded item (starting
  /// the child if needed).
  void push_item(std::string payload);
  /// Items sent and not yet begun by the child.
  std::size_t queued_items() const;

  static std::chrono::nanoseconds checked_interval(std::chrono::duration<double> interval);

 private:
  std::shared_ptr<detail::ManagedProcessState> state_;
};

/// Calls target() again and again in a child; stop() ends the loop after the
/// current call.
class ContinuousProcess : public ManagedProcess {
 public:
  /// Throws std::invalid_argument for an empty target, or (spawn,
  /// forkserver) a target, init or cleanup that is not a ProcessEntry.
  ContinuousProcess(StartMethod method, ProcessFunction<void()> target,
                    ManagedProcessOptions options = {})
      : ManagedProcess(method, detail::ManagedProcessKind::continuous,
                       {.target = std::move(target)}, {}, std::move(options)) {}
};

/// A ContinuousProcess that stop() pauses instead of ending: stop() returns
/// only once the child is parked, so the target does not run after it
/// returns. start() resumes without running init again; join() ends the
/// child.
class PausableProcess : public ManagedProcess {
 public:
  /// As ContinuousProcess's.
  PausableProcess(StartMethod method, ProcessFunction<void()> target,
                  ManagedProcessOptions options = {})
      : ManagedProcess(method, detail::ManagedProcessKind::pausable, {.target = std::move(target)},
                       {}, std::move(options)) {}
};

/// Calls target() in a child at once, then on the absolute schedule
/// start + k·interval (steady_clock). A call that overruns its slot is
/// followed at once by the next, and the schedule goes on from the latest
/// slot already due, without a burst of catch-up calls. stop() ends the wait
/// for the next slot at once.
class PeriodicProcess : public ManagedProcess {
 public:
  /// As ContinuousProcess's; also for an interval that is NaN or negative.
  PeriodicProcess(StartMethod method, std::chrono::duration<double> interval,
                  ProcessFunction<void()> target, ManagedProcessOptions options = {})
      : ManagedProcess(method, detail::ManagedProcessKind::periodic, {.target = std::move(target)},
                       checked_interval(interval), std::move(options)) {}
};

/// Calls target(item) in a child for each item given to add_data, in FIFO
/// order, and waits for more in between. stop() ends the loop after the
/// current item, once the child has run the items it already holds; items
/// that had not reached it stay queued for a later start() (queue_size()).
/// join() first runs every item added before it, then ends. The target is
/// `void(T)`: with spawn or forkserver a ProcessEntry<void(T)>.
template <class T>
class OperationProcess : public ManagedProcess {
  static_assert(detail::has_codec<T>, "weft::OperationProcess<T>: T needs a weft::Codec");

 public:
  /// As ContinuousProcess's.
  OperationProcess(StartMethod method, ProcessFunction<void(T)> target,
                   ManagedProcessOptions options = {})
      : ManagedProcess(method, detail::ManagedProcessKind::operation,
                       program(method, std::move(target)), {}, std::move(options)) {}

  /// Sends `item` to the child, starting one if none runs (a child that
  /// is ending is not restarted: an item it does not take waits for a
  /// later start()). Never waits.
  void add_data(const T& item) {
    std::string payload;
    Codec<T>::encode(item, payload);
    push_item(std::move(payload));
  }

  /// Items added and not yet begun by the child.
  std::size_t queue_size() const { return queued_items(); }

 private:
  static detail::ManagedProcessProgram program(StartMethod method,
                                               ProcessFunction<void(T)> target) {
    if (!target) throw std::invalid_argument("weft::OperationProcess: empty target");
    if (method != StartMethod::fork && target.entry_name().empty())
      detail::throw_not_an_entry(method, "weft::OperationProcess");
    detail::ManagedProcessProgram made;
    made.item_entry = target.entry_name();
    made.make_item_runner = [function = target.function()] {
      return std::function<void(std::string_view)>(
          [function](std::string_view bytes) { function(detail::decode_whole<T>(bytes)); });
    };
    return made;
  }
};

/// Keeps an object of type T in a child and runs commands on it in the
/// order they were sent (continuous_threading's CommandProcess). A command
/// is a member function of T registered as a Command at namespace scope;
/// send_cmd names it. A command that is unknown, whose arguments do not
/// decode as its parameters, or that throws, is logged in the child
/// (weft::log, error level) and the loop goes on.
///
/// The object: each child starts with its own, made anew at every start():
/// - `CommandProcess(method, object)`: with fork, a copy of `object`; with
///   spawn or forkserver, `object` sent through weft::Codec<T> (without a
///   Codec: std::invalid_argument at construction);
/// - `CommandProcess(method)`: T default-constructed in the child.
/// With spawn or forkserver the child needs at least one Command of T
/// registered (it makes the object through it).
template <class T>
class CommandProcess : public ManagedProcess {
 public:
  explicit CommandProcess(StartMethod method,
                          ManagedProcessOptions options = {}) requires std::default_initializable<T>
      : ManagedProcess(method, detail::ManagedProcessKind::command, program(method, nullptr), {},
                       std::move(options)) {}
  CommandProcess(StartMethod method, T object, ManagedProcessOptions options = {})
      : ManagedProcess(method, detail::ManagedProcessKind::command,
                       program(method, std::make_shared<const T>(std::move(object))), {},
                       std::move(options)) {}

  /// Sends the command `name` with `args` (encoded as they are given, a
  /// string literal as a std::string: they must match the command's
  /// parameters after decay, or the child logs a decode error), starting a
  /// child if none runs. Never waits.
  template <class... Args>
  void send_cmd(std::string_view name, const Args&... args) {
    push_item(detail::command_payload(name, detail::encode_all(detail::as_sent(args)...)));
  }

  /// The same through the Command itself: `args` are converted to its
  /// parameter types here, so a mismatch is a compile error.
  template <auto Method, class... Args>
  requires std::same_as<typename Command<Method>::object_type, T> &&
      std::constructible_from<typename Command<Method>::arguments_type, Args &&...> void
      send_cmd(const Command<Method>& command, Args&&... args) {
    using Arguments = typename Command<Method>::arguments_type;
    std::string arguments;
    Codec<Arguments>::encode(Arguments(std::forward<Args>(args)...), arguments);
    push_item(detail::command_payload(command.name(), std::move(arguments)));
  }

  /// Commands sent and not yet begun by the child.
  std::size_t queue_size() const { return queued_items(); }

 private:
  static detail::ManagedProcessProgram program(StartMethod method,
                                               std::shared_ptr<const T> object) {
    detail::ManagedProcessProgram made;
    made.command_type = detail::command_type_key<T>();
    if (object && method != StartMethod::fork) {
      if constexpr (detail::has_codec<T>) {
        made.command_object.emplace();
        Codec<T>::encode(*object, *made.command_object);
      } else {
        throw std::invalid_argument(
            "weft::CommandProcess: with spawn or forkserver the object crosses through a "
            "weft::Codec<T>, and T has none");
      }
    }
    made.make_item_runner = [object, type = made.command_type] {
      std::shared_ptr<void> instance;
      if (object) {
        if constexpr (std::copy_constructible<T>) {
          instance = std::make_shared<T>(*object);
        } else {
          throw std::logic_error("weft::CommandProcess: the object cannot be copied");
        }
      } else {
        instance = detail::make_command_object<T>(nullptr);
      }
      return std::function<void(std::string_view)>([instance, type](std::string_view payload) {
        detail::run_command_payload(type, instance.get(), payload);
      });
    };
    return made;
  }
};

}  // namespace weft

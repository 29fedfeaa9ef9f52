#pragma once
/// How weft starts a child process (StartMethod), and the functions a child
/// started by `spawn` can run (ProcessEntry, process_main).
///
/// - `fork`: the child is a copy of the parent made by fork(); it runs any
///   callable. It gets no hub, ring, thread-cache worker or managed thread of
///   the parent, and may make its own. Fastest for a small parent; a parent
///   with many threads or much memory pays for copying its page tables, and
///   only the forking thread exists in the child.
/// - `spawn`: a fresh exec of this program (/proc/self/exe); the child runs a
///   ProcessEntry, named, with arguments and result through Codec. Slower to
///   start, but the child is clean whatever the parent holds.
/// - `forkserver`: a clean server process, spawned once on first use, forks
///   each child; the child runs a ProcessEntry, as with `spawn`. Nearly as
///   fast as `fork` however big the parent is, and the child is as clean as
///   a spawned one. The server costs the parent one fd, kept until exit, and
///   exits when the parent does.
///
/// A program that uses `spawn` or `forkserver` calls `weft::process_main(argc, argv)` first
/// thing in main: in an ordinary run it returns at once; in a child it runs
/// the entry it was started for and exits.
///
///     inline const weft::ProcessEntry<int(int)> doubler{"doubler", [](int x) { return 2 * x; }};
///
///     int main(int argc, char** argv) {
///       weft::process_main(argc, argv);
///       weft::DestroyableProcess work(weft::StartMethod::spawn, doubler, 21);
///       work.start();
///       return work.get_or_throw() == 42 ? 0 : 1;
///     }

#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/process/codec.hpp>
#include <weft/process/step_emitter.hpp>
#include <weft/runtime/detail/unique_function.hpp>

namespace weft {

enum class StartMethod { fork, spawn, forkserver };

/// "fork", "spawn" or "forkserver".
constexpr const char* to_string(StartMethod method) noexcept {
  switch (method) {
    case StartMethod::fork:
      return "fork";
    case StartMethod::spawn:
      return "spawn";
    case StartMethod::forkserver:
      return "forkserver";
  }
  return "unknown";
}

namespace detail {

/// Runs a registered function in a spawned child: decodes its arguments from
/// `arguments` and returns its encoded result, or throws what it threw.
using EntryInvoker = std::function<std::string(std::string_view arguments)>;

/// Registers `invoke` under `name` (before main; any thread). A name already
/// taken keeps its first entry and the clash is reported when the name is
/// started.
void register_process_entry(const std::string& name, EntryInvoker invoke) noexcept;
/// Has process_main been called in this process?
bool process_main_was_called() noexcept;

/// Where a spawned child writes its report (see process_main).
inline constexpr int spawned_report_fd = 4;

/// In a child: writes `payload` to `fd` as one frame, blocking until all of
/// it is written. Throws std::system_error if the parent has gone.
void write_child_frame(int fd, std::string_view payload);

/// In a child running a step: what its StepEmitter does with a value (a 'V'
/// frame on the report pipe, written before emit returns).
template <class E>
UniqueFunction<void(E)> child_step_sink(int fd) {
  static_assert(has_codec<E>, "weft: a child-process step's values need a weft::Codec");
  return [fd](E value) {
    std::string payload = "V";
    Codec<E>::encode(value, payload);
    write_child_frame(fd, payload);
  };
}

/// The arguments of a ProcessEntry: all through Codec, or, for a step entry,
/// a StepEmitter<E>& first and the rest through Codec.
template <class... Args>
struct EntryArguments {
  static constexpr bool step = false;
  using Decoded = std::tuple<std::decay_t<Args>...>;
};
template <class E, class... Rest>
struct EntryArguments<StepEmitter<E>&, Rest...> {
  static constexpr bool step = true;
  using Event = E;
  using Decoded = std::tuple<std::decay_t<Rest>...>;
};

}  // namespace detail

template <class Sig>
class ProcessEntry;

/// A function registered by name, so that a `spawn`ed child (a fresh exec of
/// this program) can run it. Define it at namespace scope, with a name unique
/// in the program:
///
///     inline const weft::ProcessEntry<int(int)> doubler{"doubler", [](int x) { return 2 * x; }};
///
/// Its result and arguments cross the process boundary through Codec (a type
/// without one is a compile error naming Codec). Copyable; callable in the
/// parent like the function it names.
template <class R, class... Args>
class ProcessEntry<R(Args...)> {
 public:
  using result_type = R;

  template <class F>
  ProcessEntry(std::string name, F function)
      : name_(std::move(name)), function_(std::move(function)) {
    using Arguments = detail::EntryArguments<Args...>;
    static_assert(detail::has_codec_or_void<R>,
                  "weft::ProcessEntry: the result type needs a weft::Codec");
    static_assert(detail::has_codec<typename Arguments::Decoded>,
                  "weft::ProcessEntry: every argument type needs a weft::Codec");
    static_assert(!Arguments::step || std::is_void_v<R>,
                  "weft::ProcessEntry: a step entry (StepEmitter<E>& first) returns void");
    detail::register_process_entry(name_, [function = function_](std::string_view arguments) {
      auto decoded = detail::decode_whole<typename Arguments::Decoded>(arguments);
      if constexpr (Arguments::step) {
        using Event = typename Arguments::Event;
        StepEmitter<Event> emit(detail::child_step_sink<Event>(detail::spawned_report_fd));
        std::apply([&](auto&... values) { function(emit, std::move(values)...); }, decoded);
        return std::string();
      } else {
        return std::apply(
            [&](auto&... values) {
              return detail::invoke_and_encode(function, std::move(values)...);
            },
            decoded);
      }
    });
  }

  R operator()(Args... args) const { return function_(std::forward<Args>(args)...); }
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  std::function<R(Args...)> function_;
};

template <class T>
inline constexpr bool is_process_entry_v = false;
template <class Sig>
inline constexpr bool is_process_entry_v<ProcessEntry<Sig>> = true;

namespace detail {

/// What a `spawn` or `forkserver` start of a plain callable throws.
[[noreturn]] inline void throw_not_an_entry(StartMethod method, const char* who) {
  throw std::invalid_argument(
      std::string(who) + ": StartMethod::" + to_string(method) +
      " runs a weft::ProcessEntry (a plain callable cannot cross into a fresh process)");
}

}  // namespace detail

/// Call first thing in main in a program that uses StartMethod::spawn or
/// forkserver: it returns at once in an ordinary run, and in a child (or the
/// forkserver) runs what it was started for and exits (its code: 0 after the entry ran,
/// whether it returned or threw, which its parent is told; 2 for a name no
/// entry has).
void process_main(int argc, char** argv);

}  // namespace weft

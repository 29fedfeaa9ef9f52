#pragma once
// The skeleton the example servers share: one listener per hub on the same
// port (SO_REUSEPORT, so the kernel spreads connections over the hubs), a
// fiber per connection, and a server that ends by itself once every client it
// accepted has gone, or after a time limit — what a benchmark harness needs.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

#include <weft/weft.hpp>

#include "example_args.hpp"

namespace example {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the kernel picks one (printed)
  std::chrono::duration<double> max_time{60};
  /// How long the server must have had no client before it ends (0: as soon
  /// as the last one leaves). wrk, for one, probes with a connection of its
  /// own before it opens the real ones.
  std::chrono::duration<double> idle_grace{0};
  std::size_t hubs = 1;
};

/// The flags every example server takes: --host= --port= --hubs= --max-secs=
/// and --idle-exit-secs=.
inline ServerOptions server_options(Args& args, int default_port, double default_idle_exit) {
  ServerOptions options;
  options.host = args.text("host", options.host);
  options.port = static_cast<int>(args.number("port", default_port));
  options.hubs = static_cast<std::size_t>(args.number("hubs", 1));
  options.max_time = std::chrono::duration<double>(args.number("max-secs", 60));
  options.idle_grace =
      std::chrono::duration<double>(args.number("idle-exit-secs", default_idle_exit));
  return options;
}

namespace detail {

// Open connections over all hubs; the one that closes the last sends `idle`.
struct ConnectionCount {
  std::atomic<long> open{0};
  weft::Event<> idle;

  void opened() { open.fetch_add(1, std::memory_order_relaxed); }
  void closed() {
    if (open.fetch_sub(1, std::memory_order_acq_rel) == 1 && !idle.ready()) idle.send();
  }
};

template <class Serve>
void accept_forever(weft::TcpListener listener, ConnectionCount& count, const Serve& serve) {
  for (;;) {
    weft::TcpStream stream;
    try {
      stream = listener.accept();
      stream.set_nodelay(true);
    } catch (const std::system_error& e) {
      // Out of fds (EMFILE), or a connection reset before it was accepted:
      // this hub keeps accepting once the moment has passed.
      std::fprintf(stderr, "accept: %s\n", e.what());
      weft::sleep(std::chrono::milliseconds(10));
      continue;
    }
    count.opened();
    weft::spawn_n([&count, &serve, stream = std::move(stream)]() mutable {
      try {
        serve(stream);
      } catch (const std::system_error&) {
        // A client that resets its connection ends only its own fiber.
      }
      stream.close();
      count.closed();
    });
  }
}

}  // namespace detail

/// From a fiber of `runtime`: binds one listener per hub on `options.host`
/// and `options.port` and serves `serve(weft::TcpStream&)` per connection, in
/// fibers that run until the runtime stops. Returns the port (the kernel's
/// pick when options.port is 0).
template <class Serve>
int listen_on_every_hub(weft::Runtime& runtime, const ServerOptions& options,
                        detail::ConnectionCount& count, const Serve& serve) {
  const weft::ListenOptions listen{.backlog = 1024, .reuse_port = true};
  auto first = weft::TcpListener::bind(options.host, options.port, listen);
  const int port = first.local_port();
  for (std::size_t hub = 1; hub < runtime.hub_count(); ++hub) {
    // Bound here, so a failure shows now; accepted from the hub it serves.
    auto listener = weft::TcpListener::bind(options.host, port, listen);
    runtime.spawn_on(hub, [&count, &serve, listener = std::move(listener)]() mutable {
      detail::accept_forever(std::move(listener), count, serve);
    });
  }
  weft::spawn_n([&count, &serve, first = std::move(first)]() mutable {
    detail::accept_forever(std::move(first), count, serve);
  });
  return port;
}

/// Serves `serve(weft::TcpStream&)` per connection on `options.hubs` hubs.
/// Returns 0 once the clients have all gone (after at least one came) and
/// none came back within options.idle_grace, or when max_time has passed.
template <class Serve>
int run_server(const ServerOptions& options, const Serve& serve) {
  using std::chrono::duration_cast;
  using std::chrono::nanoseconds;
  detail::ConnectionCount count;  // first: the hubs' fibers use it until ~Runtime
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = options.hubs});
  runtime.run([&] {
    const int port = listen_on_every_hub(runtime, options, count, serve);
    std::printf("listening on %s:%d, %zu hub(s), backend %s\n", options.host.c_str(), port,
                runtime.hub_count(), weft::backend_name().c_str());
    std::fflush(stdout);
    weft::Timeout limit(duration_cast<nanoseconds>(options.max_time));
    try {
      for (;;) {
        count.idle.wait();
        weft::sleep(duration_cast<nanoseconds>(options.idle_grace));
        if (count.open.load() == 0) return;
        count.idle.reset();  // clients came back: wait for them to go again
        if (count.open.load() == 0) return;
      }
    } catch (const weft::TimeoutError& e) {
      if (!e.is(limit)) throw;
    }
  });
  return 0;
}

}  // namespace example

// HTTP/1.1 "Hello, world!" server with keep-alive: a fiber per connection,
// one listener per hub. Drive it with wrk:
//
//   http_server --port=8080 --hubs=1 --max-secs=60 &
//   wrk -t1 -c64 -d5s http://127.0.0.1:8080/
//
// Ends once no client has been connected for --idle-exit-secs (default 2: wrk
// probes with a connection of its own first), or after --max-secs.

#include "example_args.hpp"
#include "hello_http.hpp"
#include "server_on_every_hub.hpp"

int main(int argc, char** argv) {
  example::Args args(argc, argv);
  example::ServerOptions options;
  options.host = args.text("host", options.host);
  options.port = static_cast<int>(args.number("port", 8080));
  options.hubs = static_cast<std::size_t>(args.number("hubs", 1));
  options.max_time = std::chrono::duration<double>(args.number("max-secs", 60));
  options.idle_grace = std::chrono::duration<double>(args.number("idle-exit-secs", 2));
  args.reject_unknown();
  return example::run_server(options, example::serve_http);
}

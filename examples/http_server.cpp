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
  const example::ServerOptions options = example::server_options(args, 8080, 2);
  args.reject_unknown();
  return example::run_server(options, example::serve_http);
}

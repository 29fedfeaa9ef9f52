// TCP echo server: a fiber per connection, one listener per hub.
//
//   echo_server [--port=7001] [--host=127.0.0.1] [--hubs=1] [--max-secs=60]
//
// Ends by itself once every client has disconnected, or after --max-secs; the
// shape ../shared/peers/run_all.sh expects of an echo server (EXTRA_ECHO).

#include <cstddef>

#include "example_args.hpp"
#include "server_on_every_hub.hpp"

namespace {

void echo(weft::TcpStream& stream) {
  char buffer[4096];
  for (;;) {
    const std::size_t got = stream.read_some(buffer, sizeof buffer);
    if (got == 0) return;
    stream.write_all(buffer, got);
  }
}

}  // namespace

int main(int argc, char** argv) {
  example::Args args(argc, argv);
  example::ServerOptions options;
  options.host = args.text("host", options.host);
  options.port = static_cast<int>(args.number("port", 7001));
  options.hubs = static_cast<std::size_t>(args.number("hubs", 1));
  options.max_time = std::chrono::duration<double>(args.number("max-secs", 60));
  args.reject_unknown();
  return example::run_server(options, echo);
}

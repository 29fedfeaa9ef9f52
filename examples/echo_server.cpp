// TCP echo server: a fiber per connection, one listener per hub.
//
//   echo_server [--port=7001] [--host=127.0.0.1] [--hubs=1] [--max-secs=60]
//               [--idle-exit-secs=0]
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
  const example::ServerOptions options = example::server_options(args, 7001, 0);
  args.reject_unknown();
  return example::run_server(options, echo);
}

// A program built the way users build theirs: against the installed headers
// and library, found through weft.pc, including only <weft/weft.hpp>.
// scripts/check_installed.sh builds and runs it.

#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main() {
  using namespace std::chrono_literals;
  const int answer = weft::run([] {
    weft::Event<int> ready;
    auto listener = weft::TcpListener::bind("127.0.0.1", 0);
    auto server = weft::spawn([&] {
      auto stream = listener.accept();
      char buffer[5];
      stream.read_exact(buffer, sizeof buffer);
      stream.write_all(buffer, sizeof buffer);
    });
    weft::spawn_after(1ms, [&] { ready.send(weft::to_thread::run_sync([] { return 42; })); });
    auto client = weft::TcpStream::connect("127.0.0.1", listener.local_port());
    client.write_all("hello", 5);
    char echoed[5];
    client.read_exact(echoed, sizeof echoed);
    server.wait();
    return std::string(echoed, 5) == "hello" ? ready.wait() : -1;
  });
  std::printf("weft consumer: %s (%d)\n", answer == 42 ? "ok" : "FAILED", answer);
  return answer == 42 ? 0 : 1;
}

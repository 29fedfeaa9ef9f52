// The README's demo: an HTTP/1.1 server and its clients in one process, on a
// Runtime with one hub per core. Client fibers send keep-alive requests for a
// few seconds while a progress line updates; then a summary: requests per
// second, latency percentiles, and the backend the hubs ran on.
//
//   server_demo [--secs=3] [--clients=64] [--hubs=0 (one per core)]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "example_args.hpp"
#include "hello_http.hpp"
#include "server_on_every_hub.hpp"

using Clock = std::chrono::steady_clock;

namespace {

struct alignas(64) ClientStats {
  std::atomic<std::uint64_t> requests{0};  // read by the progress line
  std::vector<std::uint32_t> latencies_us;
};

// Reads one response: the head, then Content-Length bytes of body.
void read_response(weft::TcpStream& stream, std::string& pending) {
  char buffer[4096];
  std::size_t head_end;
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
    const std::size_t got = stream.read_some(buffer, sizeof buffer);
    if (got == 0) throw std::runtime_error("server closed the connection");
    pending.append(buffer, got);
  }
  if (pending.compare(0, 12, "HTTP/1.1 200") != 0) throw std::runtime_error("not a 200 answer");
  const std::size_t total =
      head_end + 4 +
      example::http_detail::content_length(std::string_view(pending).substr(0, head_end));
  while (pending.size() < total) {
    const std::size_t got = stream.read_some(buffer, sizeof buffer);
    if (got == 0) throw std::runtime_error("server closed the connection");
    pending.append(buffer, got);
  }
  if (std::string_view(pending).substr(head_end + 4, total - head_end - 4) != "Hello, world!") {
    throw std::runtime_error("unexpected body");
  }
  pending.erase(0, total);
}

void client(int port, Clock::time_point until, ClientStats& stats) {
  static constexpr std::string_view request =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: weft-demo\r\n\r\n";
  auto stream = weft::TcpStream::connect("127.0.0.1", port);
  stream.set_nodelay(true);
  std::string pending;
  stats.latencies_us.reserve(1 << 16);
  while (Clock::now() < until) {
    const auto sent = Clock::now();
    stream.write_all(request.data(), request.size());
    read_response(stream, pending);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent);
    stats.latencies_us.push_back(static_cast<std::uint32_t>(took.count()));
    stats.requests.fetch_add(1, std::memory_order_relaxed);
  }
}

std::uint64_t total_requests(const std::vector<std::unique_ptr<ClientStats>>& stats) {
  std::uint64_t total = 0;
  for (const auto& s : stats)
    total += s->requests.load(std::memory_order_relaxed);
  return total;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void print_summary(std::vector<std::uint32_t> latencies, double seconds, std::size_t clients,
                   std::size_t hubs, const std::string& backend) {
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    return latencies.empty() ? 0u : latencies[static_cast<std::size_t>(p * (latencies.size() - 1))];
  };
  std::printf("\nsummary: %zu requests in %.2f s = %.0f requests/s\n", latencies.size(), seconds,
              static_cast<double>(latencies.size()) / seconds);
  std::printf("latency: p50 %u us, p99 %u us, max %u us\n", percentile(0.50), percentile(0.99),
              latencies.empty() ? 0u : latencies.back());
  std::printf("setup:   %zu client fibers, %zu hub(s), backend %s\n", clients, hubs,
              backend.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  example::Args args(argc, argv);
  const double secs = args.number("secs", 3);
  const auto clients = static_cast<std::size_t>(args.number("clients", 64));
  example::ServerOptions server;
  server.hubs = static_cast<std::size_t>(args.number("hubs", 0));
  args.reject_unknown();

  example::detail::ConnectionCount connections;  // first: the hubs' fibers use it until ~Runtime
  weft::Runtime runtime(weft::RuntimeOptions{.hubs = server.hubs});
  return runtime.run([&] {
    const int port =
        example::listen_on_every_hub(runtime, server, connections, example::serve_http);
    const std::string backend = weft::backend_name();
    std::printf("HTTP server on 127.0.0.1:%d, %zu hub(s), backend %s; %zu clients for %.1f s\n",
                port, runtime.hub_count(), backend.c_str(), clients, secs);

    std::vector<std::unique_ptr<ClientStats>> stats;
    std::vector<weft::GreenThread<void>> fibers;
    const auto start = Clock::now();
    const auto until =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
    for (std::size_t i = 0; i < clients; ++i) {
      stats.push_back(std::make_unique<ClientStats>());
      fibers.push_back(runtime.spawn(client, port, until, std::ref(*stats.back())));
    }
    while (Clock::now() < until) {
      weft::sleep(std::chrono::milliseconds(250));
      const double elapsed = seconds_since(start);
      const std::uint64_t done = total_requests(stats);
      std::printf("\r  %5.2f s  %10llu requests  %9.0f requests/s", elapsed,
                  static_cast<unsigned long long>(done), static_cast<double>(done) / elapsed);
      std::fflush(stdout);
    }
    int failed = 0;
    for (auto& fiber : fibers) {
      try {
        fiber.wait();
      } catch (const std::exception& e) {
        if (failed++ == 0) std::fprintf(stderr, "\nclient failed: %s\n", e.what());
      }
    }
    const double elapsed = seconds_since(start);
    std::vector<std::uint32_t> latencies;
    for (const auto& s : stats)
      latencies.insert(latencies.end(), s->latencies_us.begin(), s->latencies_us.end());
    print_summary(std::move(latencies), elapsed, clients, runtime.hub_count(), backend);
    return failed == 0 ? 0 : 1;
  });
}

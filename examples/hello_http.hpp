#pragma once
// A minimal HTTP/1.1 server connection: answers every request with
// "Hello, world!", keeps the connection alive (HTTP/1.1 default, or an
// HTTP/1.0 "Connection: keep-alive"), and answers pipelined requests with one
// write. Enough for wrk and the demo's clients; not a general HTTP parser.

#include <cstddef>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include <weft/weft.hpp>

namespace example {

namespace http_detail {

constexpr std::size_t max_head_bytes = 8192;

bool has_token(std::string_view head, std::string_view header, std::string_view token) {
  // Case-insensitive search for "header: ...token..." in the request head.
  auto lower = [](std::string_view text) {
    std::string out(text);
    for (char& c : out)
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return out;
  };
  const std::string text = lower(head);
  const std::size_t at = text.find("\r\n" + lower(header) + ":");
  if (at == std::string::npos) return false;
  const std::size_t end = text.find("\r\n", at + 2);
  return text.substr(at, end - at).find(lower(token)) != std::string::npos;
}

std::size_t content_length(std::string_view head) {
  static constexpr std::string_view name = "\r\ncontent-length:";
  for (std::size_t i = 0; i + name.size() <= head.size(); ++i) {
    if (strncasecmp(head.data() + i, name.data(), name.size()) == 0) {
      return std::strtoul(std::string(head.substr(i + name.size(), 20)).c_str(), nullptr, 10);
    }
  }
  return 0;
}

// The Date header, formatted once a second per thread.
std::string_view date_header() {
  thread_local std::time_t formatted_at = 0;
  thread_local char line[64];
  const std::time_t now = std::time(nullptr);
  if (now != formatted_at) {
    std::tm utc{};
    gmtime_r(&now, &utc);
    std::strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &utc);
    formatted_at = now;
  }
  return line;
}

void append_response(std::string& out, bool keep_alive) {
  static constexpr std::string_view status = "HTTP/1.1 200 OK\r\nServer: weft\r\n";
  static constexpr std::string_view body = "Content-Type: text/plain\r\nContent-Length: 13\r\n";
  out += status;
  out += date_header();
  out += body;
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\nHello, world!";
}

}  // namespace http_detail

/// Serves HTTP requests on `stream` until the client closes it, asks to, or
/// sends something that is not an HTTP request (answered with 400).
inline void serve_http(weft::TcpStream& stream) {
  using namespace http_detail;
  std::string in;
  std::string out;
  char buffer[16384];
  for (;;) {
    const std::size_t got = stream.read_some(buffer, sizeof buffer);
    if (got == 0) return;
    in.append(buffer, got);
    bool keep_alive = true;
    std::size_t used = 0;
    for (;;) {  // every complete request in the buffer (pipelining)
      const std::size_t head_end = in.find("\r\n\r\n", used);
      if (head_end == std::string::npos) break;
      const std::string_view head(in.data() + used, head_end - used);
      const std::size_t body = content_length(head);
      if (body > in.size() - (head_end + 4)) break;  // still coming (no overflow on a huge length)
      const bool http10 = head.find(" HTTP/1.0\r\n") != std::string_view::npos;
      keep_alive = http10 ? has_token(head, "connection", "keep-alive")
                          : !has_token(head, "connection", "close");
      append_response(out, keep_alive);
      used = head_end + 4 + body;
      if (!keep_alive) break;
    }
    in.erase(0, used);
    if (in.size() > max_head_bytes) {
      static constexpr std::string_view bad =
          "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      out += bad;
      keep_alive = false;
    }
    if (!out.empty()) {
      stream.write_all(out.data(), out.size());
      out.clear();
    }
    if (!keep_alive) return;
  }
}

}  // namespace example

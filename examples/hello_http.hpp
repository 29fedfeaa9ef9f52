#pragma once
// A minimal HTTP/1.1 server connection: answers every request with
// "Hello, world!", keeps the connection alive (HTTP/1.1 default, or an
// HTTP/1.0 "Connection: keep-alive"), and answers pipelined requests with one
// write. Enough for wrk and the demo's clients; not a general HTTP parser.

#include <strings.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include <weft/weft.hpp>

namespace example {

namespace http_detail {

constexpr std::size_t max_head_bytes = 8192;

bool same_letters(std::string_view a, std::string_view b) {  // ASCII, case-insensitive
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// The value of header `name` in the request head ("" if absent). Runs once
// or twice per request: no allocation.
std::string_view header_value(std::string_view head, std::string_view name) {
  for (std::size_t line = head.find("\r\n"); line != std::string_view::npos;) {
    const std::size_t start = line + 2;
    const std::size_t next = head.find("\r\n", start);
    const std::string_view text = head.substr(start, next - start);
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos && same_letters(text.substr(0, colon), name)) {
      return text.substr(colon + 1);
    }
    line = next;
  }
  return {};
}

bool has_token(std::string_view head, std::string_view header, std::string_view token) {
  const std::string_view value = header_value(head, header);
  for (std::size_t i = 0; i + token.size() <= value.size(); ++i)
    if (same_letters(value.substr(i, token.size()), token)) return true;
  return false;
}

std::size_t content_length(std::string_view head) {
  std::string_view value = header_value(head, "content-length");
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  std::size_t length = 0;
  std::from_chars(value.data(), value.data() + value.size(), length);
  return length;
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

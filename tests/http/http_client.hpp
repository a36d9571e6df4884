// A raw HTTP/1.1 client for the server tests: it writes exactly the bytes a test gives
// it (malformed ones included) and parses responses just enough to check them
// (status line, header block, Content-Length body). Context: goroutine.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "gort/net.hpp"
#include "gort/time.hpp"

namespace gort::test {

struct RawResponse {
  int status = 0;
  std::string head;  // status line and fields, up to the blank line
  std::string body;
  bool has(std::string_view field_line) const {
    return head.find(std::string(field_line) + "\r\n") != std::string::npos;
  }
};

class RawClient {
 public:
  explicit RawClient(const std::string& addr) : conn_(net::dial("tcp", addr)) {
    conn_.set_deadline(now() + std::chrono::seconds(10));  // a hung test fails, not hangs
  }
  void send(std::string_view bytes) { conn_.write(bytes); }
  // Reads one response; nullopt at end of stream (or reset) before a complete one.
  std::optional<RawResponse> read_response() {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return std::nullopt;
    RawResponse r;
    r.head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    if (r.head.size() < 12) return std::nullopt;
    r.status = std::stoi(r.head.substr(9, 3));
    std::size_t length = 0;
    const auto cl = r.head.find("Content-Length: ");
    if (cl != std::string::npos) length = std::stoul(r.head.substr(cl + 16));
    while (buf_.size() < length)
      if (!fill()) return std::nullopt;
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }
  std::optional<RawResponse> roundtrip(std::string_view request) {
    send(request);
    return read_response();
  }
  // True once the server has closed the connection (end of stream or reset).
  bool closed_by_server() {
    try {
      std::byte b[256];
      return conn_.read(b) == 0;
    } catch (const std::system_error& e) {
      return !net::is_timeout(e);
    }
  }
  net::Conn& conn() { return conn_; }

 private:
  bool fill() {
    std::byte b[4096];
    std::size_t n = 0;
    try {
      n = conn_.read(b);
    } catch (const std::system_error&) {
      return false;
    }
    buf_.append(reinterpret_cast<const char*>(b), n);
    return n > 0;
  }
  net::Conn conn_;
  std::string buf_;
};

inline std::string get_request(std::string_view target, std::string_view extra = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) + "\r\n";
}

}  // namespace gort::test

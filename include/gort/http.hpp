// A small HTTP/1.1 server on gort::net: the core of Go's net/http server.
//
// One goroutine per connection (as in Go): it reads a request, calls the handler, writes
// the response, and loops while the connection is kept alive. Requests are parsed by
// Boost.Beast's parser (src/http/), never by hand; bodies arrive whole (Content-Length or
// chunked) before the handler runs. What the server guarantees:
//   * keep-alive by default for HTTP/1.1, on request for HTTP/1.0 ("Connection:
//     keep-alive"); "Connection: close" from either side closes after the response;
//   * malformed input gets "400 Bad Request" and the connection is closed, a header
//     larger than max_header_bytes "431 Request Header Fields Too Large", a body larger
//     than max_body_bytes "413 Request Entity Too Large"; the server goes on serving
//     other connections;
//   * timeouts on every connection through its deadlines, so a client that trickles its
//     header (slowloris) or idles between requests is dropped without holding the server;
//   * "Expect: 100-continue" is answered before the body is read;
//   * a handler that throws gets its client a "500 Internal Server Error" and a closed
//     connection, not a dead server.
// The response carries Content-Length, Date and (if the handler set none and there is a
// body) "Content-Type: text/plain; charset=utf-8". No TLS, no HTTP/2, no client yet.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gort/net.hpp"

namespace gort::http {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;
  // The first value of name, if any.
  std::optional<std::string> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // Replaces every field called name with one.
  void set(std::string_view name, std::string_view value);
  void add(std::string_view name, std::string_view value);
  void remove(std::string_view name);
  std::size_t size() const { return fields_.size(); }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

struct Request {
  std::string method;     // "GET", ...
  std::string target;     // as sent: "/search?q=go%20lang"
  std::string path;       // percent-decoded, without the query: "/search"
  std::string raw_query;  // "q=go%20lang"
  int version = 11;       // 10 or 11 (HTTP/1.0, HTTP/1.1)
  Headers headers;
  std::string body;
  std::string remote_addr;  // "host:port" of the client
  // The first value of query parameter key, decoded (Go's URL.Query().Get), if present.
  std::optional<std::string> query(std::string_view key) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  Response& write(std::string_view s) {
    body.append(s);
    return *this;
  }
};

// Go's http.Error: status, a text/plain body of msg and a newline.
void error(Response& w, int status, std::string_view msg);
// The reason phrase of a status code ("Not Found"), or "" if unknown.
std::string_view status_text(int status);

using Handler = std::function<void(const Request&, Response&)>;

// Go's ServeMux, without host patterns: "/exact" matches that path only, "/tree/" every
// path under it; the longest pattern wins. A request for "/tree" when only "/tree/" is
// registered is redirected there (301). Unmatched paths get "404 page not found".
// Register before serving; lookups are then read-only and safe from any goroutine.
class ServeMux {
 public:
  void handle(std::string pattern, Handler h);
  void operator()(const Request& r, Response& w) const;

 private:
  std::vector<std::pair<std::string, Handler>> routes_;  // sorted, longest pattern first
};

// Zero durations mean no limit (as in Go). Unlike Go's zero-value Server, the defaults
// bound the header and idle times, so an exposed server cannot be held by idle clients.
struct ServerOptions {
  std::size_t max_header_bytes = 1 << 20;      // Go's DefaultMaxHeaderBytes (1 MiB)
  std::uint64_t max_body_bytes = 32ull << 20;  // 0: no limit
  std::chrono::nanoseconds read_header_timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds read_timeout{0};   // header and body, from the first byte
  std::chrono::nanoseconds write_timeout{0};  // from the end of the request to the last byte
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(120);  // between requests
};

class Server {
 public:
  explicit Server(Handler handler, ServerOptions opts = {});
  ~Server();  // must not be serving: shutdown() first
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Accepts connections on l until shutdown() (or l is closed), serving each in its own
  // goroutine, then returns. One listener at a time per Server. Running out of file
  // descriptors is survived by backing off (5 ms doubling to 1 s, as Go). Throws
  // std::system_error for other accept errors. Context: goroutine.
  void serve(net::Listener& l);
  // Stops accepting (closes the listener serve() uses), closes idle connections, lets
  // requests in progress finish and close, and waits until every connection is gone
  // (Go's Server.Shutdown without a context). Context: goroutine, not a handler of this
  // server (it would wait for its own request to finish).
  void shutdown();

  struct State;  // shared with the connection goroutines (src/http/server.cpp)

 private:
  std::shared_ptr<State> state_;
};

// http.ListenAndServe: listens on addr ("tcp") and serves until the process ends or the
// listener fails.
void listen_and_serve(std::string_view addr, Handler handler, ServerOptions opts = {});

}  // namespace gort::http

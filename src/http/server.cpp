// The HTTP/1.1 server: Go's net/http server loop (server.go: Server.Serve, conn.serve)
// with Boost.Beast's request parser doing the parsing.
//
// Why Beast's parser: HTTP/1.1 framing (chunked bodies, obsolete line folding, duplicate
// Content-Length, header and body limits) is where hand-written servers get request
// smuggling and crashes; Beast's parser is fuzzed and maintained. It reads through
// ConnStream (conn_stream.hpp), so a parse is plain blocking code in the connection's
// goroutine. Responses are formatted here (a status line, a few fields and the body in one
// write): Beast's serializer would cost an allocation and a copy more per response, and
// there is nothing to get wrong in writing a Content-Length response.
//
// A connection's life (one goroutine, serve_conn):
//   await: state kIdle, read deadline = read-header timeout (first request) or idle
//          timeout (later ones); wait for the first byte, then CAS kIdle -> kActive
//   read:  read deadline = start + read-header timeout (start: the accept for the first
//          request, the first byte for later ones); Beast reads the header; the body
//          is read under the read timeout (if any), after answering "Expect: 100-continue"
//   serve: write deadline = now + write timeout; the handler runs; the response is written
//   loop while both sides keep the connection alive and the server is not shutting down.
// Malformed requests get 400 (431, 413 for the limits) and Connection: close; network
// errors and timeouts close silently (Go's isCommonNetReadError).
//
// Shutdown protocol (Go's Shutdown/closeIdleConns): shutdown() sets shutting_down, closes
// the listener and, under mu, moves every kIdle connection to kClosing and sets its read
// deadline in the past, which wakes its goroutine out of the await read. A connection
// goroutine stores kIdle *before* loading shutting_down, and shutdown stores shutting_down
// before reading the states (both seq_cst): either the goroutine sees the flag and leaves,
// or shutdown sees kIdle and pokes it. An active request finishes, then sees the flag.
// The deadline of an idle connection is set before it is published as kIdle, so the
// poke is never overwritten. shutdown() then waits (Cond on mu) until serve() has returned
// and the connection set is empty.
//
// Invariants: a ConnEntry is in State::conns (under mu) exactly while its goroutine runs,
// so shutdown() never touches a destroyed Conn. No goroutine parks inside a catch block:
// errors are recorded there and acted on after it.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <ctime>
#include <exception>
#include <limits>
#include <unordered_set>

#include "gort/http.hpp"
#include "gort/runtime.hpp"
#include "gort/sync.hpp"
#include "gort/time.hpp"
#include "http/conn_stream.hpp"
#include "http/url.hpp"

namespace gort::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

enum ConnState : int { kActive, kIdle, kClosing };

struct ConnEntry {
  explicit ConnEntry(net::Conn c) : conn(std::move(c)) {}
  net::Conn conn;
  std::atomic<int> state{kActive};
};

}  // namespace

struct Server::State {
  State(Handler h, ServerOptions o) : handler(std::move(h)), opts(o) {}
  Handler handler;
  ServerOptions opts;
  std::atomic<bool> shutting_down{false};
  Mutex mu;
  Cond changed{mu};                      // serving or conns changed
  net::Listener* listener = nullptr;     // guarded by mu
  bool serving = false;                  // guarded by mu
  std::unordered_set<ConnEntry*> conns;  // guarded by mu
};

namespace {

using State = Server::State;
using Parser = bhttp::request_parser<bhttp::string_body>;

Time deadline_after(std::chrono::nanoseconds d) {
  return d > std::chrono::nanoseconds::zero() ? now() + d : Time{};
}

// ---- responses

// RFC 7231 IMF-fixdate, as Go's Date header; formatted once a second per thread. The
// thread_local is read and written only inside this function, which never parks, so the
// goroutine cannot move to another thread in between (runtime.hpp, "Thread-local state").
__attribute__((noinline)) std::string http_date() {
  struct Cache {
    std::time_t second = -1;
    char text[40];
    std::size_t size = 0;
  };
  thread_local Cache cache;
  const std::time_t t = std::time(nullptr);
  if (t != cache.second) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    cache.size = std::strftime(cache.text, sizeof cache.text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cache.second = t;
  }
  return std::string(cache.text, cache.size);
}

bool valid_field(std::string_view name, std::string_view value) {
  auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  if (name.empty() || name.find_first_of(" :\t") != std::string_view::npos) return false;
  return std::none_of(name.begin(), name.end(), bad) &&
         std::none_of(value.begin(), value.end(), bad);
}

bool status_has_body(int status) {
  return status >= 200 && status != 204 && status != 304;
}

// Formats and writes w. Throws std::system_error from the connection.
void write_response(net::Conn& c, int version, bool head, bool keep_alive, Response& w) {
  std::string out;
  out.reserve(192 + (w.body.size() < 16384 ? w.body.size() : 0));
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(w.status);
  out += ' ';
  out += status_text(w.status);
  out += "\r\n";
  w.headers.remove("Content-Length");
  w.headers.remove("Transfer-Encoding");
  w.headers.remove("Connection");
  for (const auto& [name, value] : w.headers) {
    if (!valid_field(name, value)) continue;  // never let a value split the response
    out.append(name).append(": ").append(value).append("\r\n");
  }
  const bool body = status_has_body(w.status);
  if (body && !w.body.empty() && !w.headers.has("Content-Type"))
    out += "Content-Type: text/plain; charset=utf-8\r\n";
  if (!w.headers.has("Date")) out.append("Date: ").append(http_date()).append("\r\n");
  if (body) out.append("Content-Length: ").append(std::to_string(w.body.size())).append("\r\n");
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  const bool send_body = body && !head && !w.body.empty();
  if (send_body && w.body.size() < 16384) {
    out += w.body;
    c.write(out);
  } else {
    c.write(out);
    if (send_body) c.write(w.body);
  }
}

// Go's reply to a request it cannot parse: a bare text response, then close.
void write_error_and_close(net::Conn& c, int status) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(status_text(status))
      .append("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n");
  out.append(std::to_string(status)).append(" ").append(status_text(status));
  try {
    c.set_write_deadline(now() + std::chrono::seconds(1));
    c.write(out);
  } catch (const std::system_error&) {
    return;  // the client is gone; the caller closes
  }
}

// Closes the write side and reads what the client still sends for a moment, so that its
// unread data does not make the kernel reset the connection before our last response
// arrives (Go's closeWriteAndWait).
void close_gracefully(net::Conn& c) {
  try {
    c.close_write();
    c.set_read_deadline(now() + std::chrono::milliseconds(500));
    std::byte sink[4096];
    for (std::size_t total = 0; total < (1u << 20);) {
      const std::size_t n = c.read(sink);
      if (n == 0) break;
      total += n;
    }
  } catch (const std::system_error&) {
    // timed out or reset: either way we are done with it
  }
  c.close();
}

// ---- requests

// The status to answer a failed read with, or 0 to close silently (the client went
// away, timed out, or sent nothing).
int status_for(const error_code& ec) {
  if (ec == bhttp::error::header_limit) return 431;
  if (ec == bhttp::error::body_limit) return 413;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return 0;
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) return 400;
  return 0;
}

// Splits the request target into path and query. nullopt for a target Go rejects.
bool parse_target(Request& r) {
  std::string_view t = r.target;
  if (t == "*") {
    r.path = "*";
    return true;
  }
  for (std::string_view scheme : {"http://", "https://"}) {  // absolute-form (proxies)
    if (t.substr(0, scheme.size()) == scheme) {
      t.remove_prefix(scheme.size());
      const std::size_t slash = t.find('/');
      t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
    }
  }
  if (t.empty() || t[0] != '/') return false;
  t = t.substr(0, t.find('#'));
  const std::size_t q = t.find('?');
  if (q != std::string_view::npos) r.raw_query = std::string(t.substr(q + 1));
  auto path = detail::unescape(t.substr(0, q), false);
  if (!path) return false;
  r.path = std::move(*path);
  return true;
}

bool to_request(bhttp::request<bhttp::string_body>&& m, const std::string& remote, Request& r) {
  r.method = std::string(m.method_string());
  r.target = std::string(m.target());
  r.version = static_cast<int>(m.version());
  for (const auto& f : m) r.headers.add(f.name_string(), f.value());
  r.body = std::move(m.body());
  r.remote_addr = remote;
  return parse_target(r);
}

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

class ConnServer {
 public:
  ConnServer(State& st, ConnEntry& e) : st_(st), e_(e), c_(e.conn), stream_(e.conn) {}

  void run() {
    try {
      remote_ = c_.remote_addr();
    } catch (const std::system_error&) {
      remote_.clear();
    }
    bool graceful = false;
    // The first request's header deadline counts from the accept, later ones' from their
    // first byte (Go's ReadHeaderTimeout).
    Time start = now();
    for (bool first = true; await_request(first); first = false) {
      if (!first) start = now();
      const Outcome o = serve_one(start);
      if (o != Outcome::kKeepAlive) {
        graceful = o == Outcome::kCloseGracefully;
        break;
      }
    }
    if (graceful) {
      close_gracefully(c_);
    } else {
      c_.close();
    }
  }

 private:
  enum class Outcome { kKeepAlive, kCloseGracefully, kCloseNow };

  // Waits, as an idle connection, for the first byte of the next request (which may be
  // buffered already). False: close (timeout, end of stream, shutdown).
  bool await_request(bool first) {
    const ServerOptions& o = st_.opts;
    bool ok = true;
    try {
      c_.set_read_deadline(deadline_after(first ? o.read_header_timeout : o.idle_timeout));
    } catch (const std::system_error&) {
      ok = false;
    }
    if (!ok) return false;
    e_.state.store(kIdle);  // seq_cst: see "Shutdown protocol" above
    if (st_.shutting_down.load()) return false;
    if (buf_.size() == 0) {
      error_code ec;
      const std::size_t n = stream_.read_some(buf_.prepare(4096), ec);
      if (ec) return false;
      buf_.commit(n);
    }
    int expect = kIdle;
    return e_.state.compare_exchange_strong(expect, kActive);
  }

  bool set_read_deadline(Time t) {
    try {
      c_.set_read_deadline(t);
      return true;
    } catch (const std::system_error&) {
      return false;
    }
  }

  // Reads one request into r. 0 on success, else the error status to answer (or -1 to
  // close silently).
  int read_request(Time start, Request& r, bool& keep_alive) {
    const ServerOptions& o = st_.opts;
    Parser p;
    p.header_limit(static_cast<std::uint32_t>(std::min<std::uint64_t>(
        o.max_header_bytes + 4096, std::numeric_limits<std::uint32_t>::max())));
    if (o.max_body_bytes == 0) {
      p.body_limit(boost::none);
    } else {
      p.body_limit(o.max_body_bytes);
    }
    Time header_deadline = o.read_header_timeout > std::chrono::nanoseconds::zero()
                               ? start + o.read_header_timeout
                               : Time{};
    const Time read_deadline =
        o.read_timeout > std::chrono::nanoseconds::zero() ? start + o.read_timeout : Time{};
    if (read_deadline != Time{} && (header_deadline == Time{} || read_deadline < header_deadline))
      header_deadline = read_deadline;
    if (!set_read_deadline(header_deadline)) return -1;
    error_code ec;
    bhttp::read_header(stream_, buf_, p, ec);
    if (ec) return status_for(ec) != 0 ? status_for(ec) : -1;
    if (!p.is_done()) {
      const auto expect = p.get()[bhttp::field::expect];
      if (p.get().version() == 11 && iequals(expect, "100-continue")) {
        bool sent = true;
        try {
          c_.write(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
        } catch (const std::system_error&) {
          sent = false;
        }
        if (!sent) return -1;
      }
      if (!set_read_deadline(read_deadline)) return -1;
      bhttp::read(stream_, buf_, p, ec);
      if (ec) return status_for(ec) != 0 ? status_for(ec) : -1;
    }
    keep_alive = p.get().keep_alive();
    return to_request(p.release(), remote_, r) ? 0 : 400;
  }

  Outcome serve_one(Time start) {
    Request r;
    bool keep_alive = false;
    const int failed = read_request(start, r, keep_alive);
    if (failed < 0) return Outcome::kCloseNow;
    if (failed > 0) {
      write_error_and_close(c_, failed);
      return Outcome::kCloseGracefully;
    }
    Response w;
    bool threw = false;
    try {
      st_.handler(r, w);
    } catch (...) {
      threw = true;  // acted on below, outside the handler: no parking in a catch block
    }
    if (threw) {
      w = Response{};
      error(w, 500, "Internal Server Error");
      keep_alive = false;
    }
    if (auto conn = w.headers.get("Connection"); conn && iequals(*conn, "close"))
      keep_alive = false;  // the handler asked to close, as Go honours
    if (st_.shutting_down.load()) keep_alive = false;
    bool written = true;
    try {
      c_.set_write_deadline(deadline_after(st_.opts.write_timeout));
      write_response(c_, r.version, r.method == "HEAD", keep_alive, w);
    } catch (const std::system_error&) {
      written = false;
    }
    if (!written) return Outcome::kCloseNow;
    return keep_alive ? Outcome::kKeepAlive : Outcome::kCloseGracefully;
  }

  State& st_;
  ConnEntry& e_;
  net::Conn& c_;
  detail::ConnStream stream_;
  beast::flat_buffer buf_;
  std::string remote_;
};

void serve_conn(const std::shared_ptr<State>& st, ConnEntry* e) {
  ConnServer(*st, *e).run();
  {
    std::scoped_lock l(st->mu);
    st->conns.erase(e);
    st->changed.broadcast();
  }
  delete e;
}

enum class AcceptError { kClosed, kTemporary, kFatal };

// What an accept() failure means for the loop: the listener is closed, the error is
// temporary (Go backs off: 5 ms, doubling, at most 1 s), or serve() must fail.
// Exempt from UBSan: its vptr check of the member call on e probes memory through a pipe,
// which fails exactly when accept() does, with EMFILE, and is then misreported as an
// invalid vptr. For the same reason this reads the code itself instead of calling
// net::is_closed.
__attribute__((no_sanitize("undefined"))) AcceptError classify(const std::system_error& e,
                                                               bool shutting_down) {
  const int ev = e.code().value();
  if (ev == EBADF || shutting_down) return AcceptError::kClosed;
  if (ev == EMFILE || ev == ENFILE || ev == ENOBUFS || ev == ENOMEM || ev == ECONNABORTED ||
      ev == EINTR)
    return AcceptError::kTemporary;
  return AcceptError::kFatal;
}

}  // namespace

std::string_view status_text(int status) {
  const std::string_view r =
      bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
  return r == "<unknown-status>" ? std::string_view{} : r;
}

Server::Server(Handler handler, ServerOptions opts)
    : state_(std::make_shared<State>(std::move(handler), opts)) {}

Server::~Server() = default;

void Server::serve(net::Listener& l) {
  const std::shared_ptr<State> st = state_;
  {
    std::scoped_lock lock(st->mu);
    if (st->shutting_down.load()) return;
    st->listener = &l;
    st->serving = true;
  }
  std::exception_ptr failure;
  std::chrono::milliseconds backoff{0};
  for (;;) {
    net::Conn c;
    bool temporary = false, stop = false;
    try {
      c = l.accept();
    } catch (const std::system_error& e) {
      switch (classify(e, st->shutting_down.load())) {
        case AcceptError::kClosed:
          stop = true;
          break;
        case AcceptError::kTemporary:
          temporary = true;
          break;
        case AcceptError::kFatal:
          failure = std::current_exception();
          stop = true;
          break;
      }
    }
    if (stop) break;
    if (temporary) {
      backoff = backoff.count() == 0 ? std::chrono::milliseconds(5)
                                     : std::min(backoff * 2, std::chrono::milliseconds(1000));
      sleep(backoff);
      continue;
    }
    backoff = std::chrono::milliseconds(0);
    auto* e = new ConnEntry(std::move(c));
    {
      std::scoped_lock lock(st->mu);
      st->conns.insert(e);
    }
    try {
      go(serve_conn, st, e);
    } catch (...) {  // no stack for the goroutine: drop the connection, keep accepting
      std::scoped_lock lock(st->mu);
      st->conns.erase(e);
      delete e;
    }
  }
  {
    std::scoped_lock lock(st->mu);
    st->listener = nullptr;
    st->serving = false;
    st->changed.broadcast();
  }
  if (failure) std::rethrow_exception(failure);
}

void Server::shutdown() {
  State& st = *state_;
  st.shutting_down.store(true);  // seq_cst: see "Shutdown protocol"
  std::scoped_lock lock(st.mu);
  if (st.listener != nullptr) st.listener->close();
  for (ConnEntry* e : st.conns) {
    int expect = kIdle;
    if (e->state.compare_exchange_strong(expect, kClosing)) {
      try {
        e->conn.set_read_deadline(now());
      } catch (const std::system_error&) {
        // already closed: its goroutine is on its way out
      }
    }
  }
  while (st.serving || !st.conns.empty()) st.changed.wait();
}

void listen_and_serve(std::string_view addr, Handler handler, ServerOptions opts) {
  net::Listener l = net::listen("tcp", addr);
  Server s(std::move(handler), opts);
  s.serve(l);
}

}  // namespace gort::http

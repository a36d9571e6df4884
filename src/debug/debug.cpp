// gort::debug: Go's net/http/pprof handlers (pprof.go: Index, Cmdline, Profile, handler.ServeHTTP)
// and a page of scheduler counters, on gort's HTTP server. The HTML and the status codes
// follow Go's so that tools and habits carry over; everything a page shows comes from
// public APIs (gort::pprof, gort::trace, gort::sched_stats), so this layer sits on top of
// the others. The one exception is /debug/pprof/symbol, which looks addresses up with
// src/symbolize (pprof's own symbolizer has no public API).
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "gort/debug.hpp"
#include "gort/gc.hpp"
#include "gort/pprof.hpp"
#include "gort/runtime.hpp"
#include "gort/sync.hpp"
#include "gort/time.hpp"
#include "gort/trace.hpp"
#include "symbolize/symbolizer.hpp"

namespace gort::debug {

namespace {

constexpr std::string_view kPrefix = "/debug/pprof/";

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Go's serveError: a plain-text error marked as coming from pprof.
void serve_error(http::Response& w, int status, std::string_view txt) {
  w.headers.set("X-Go-Pprof", "1");
  http::error(w, status, txt);
}

double seconds_param(const http::Request& r, double fallback);

// /debug/pprof/<name>?seconds=N: what the profile records in the next N seconds (Go's
// serveDeltaProfile), for the cumulative profiles that have a delta form.
void delta_profile_page(const std::string& name, int debug, const http::Request& r,
                        http::Response& w) {
  if (debug != 0) return serve_error(w, 400, "seconds and debug params are incompatible");
  pprof::ProfileSnapshot before;
  std::string unsupported;
  try {
    before = pprof::snapshot_profile(name);
  } catch (const std::invalid_argument& e) {
    unsupported = e.what();
  }
  if (!unsupported.empty()) return serve_error(w, 400, "profile type not supported for delta");
  sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(seconds_param(r, 30))));
  std::ostringstream out;
  pprof::write_profile_delta(before, out);
  w.headers.set("X-Content-Type-Options", "nosniff");
  w.headers.set("Content-Type", "application/octet-stream");
  w.headers.set("Content-Disposition", "attachment; filename=\"" + name + "-delta\"");
  w.body = std::move(out).str();
}

// /debug/pprof/<name>?debug=N (Go's handler.ServeHTTP).
void profile_page(const std::string& name, const http::Request& r, http::Response& w) {
  bool known = false;
  for (const auto& p : pprof::profiles()) known = known || p.name == name;
  if (!known) return serve_error(w, 404, "Unknown profile");
  int debug = 0;
  if (auto d = r.query("debug")) {
    try {
      debug = std::stoi(*d);
    } catch (const std::exception&) {
      debug = 0;  // Go: strconv.Atoi's error is ignored, 0 it is
    }
  }
  if (r.query("seconds")) return delta_profile_page(name, debug, r, w);
  if (auto gc = r.query("gc"); name == "heap" && gc && !gc->empty() && *gc != "0")
    gc::collect();  // net/http/pprof's heap?gc=1: collect first
  std::ostringstream out;
  std::string unsupported;
  try {
    pprof::write_profile(name, out, debug);
  } catch (const std::invalid_argument& e) {
    unsupported = e.what();
  }
  if (!unsupported.empty()) return serve_error(w, 501, unsupported);
  w.headers.set("X-Content-Type-Options", "nosniff");
  if (debug != 0) {
    w.headers.set("Content-Type", "text/plain; charset=utf-8");
  } else {  // the gzipped proto, as Go serves it
    w.headers.set("Content-Type", "application/octet-stream");
    w.headers.set("Content-Disposition", "attachment; filename=\"" + name + "\"");
  }
  w.body = std::move(out).str();
}

void index_page(const http::Request& r, http::Response& w) {
  const std::string name = r.path.substr(kPrefix.size());
  if (!name.empty()) return profile_page(name, r, w);
  const auto profiles = pprof::profiles();
  std::string b =
      "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n\tdisplay:"
      "inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n/debug/pprof/<br>\n<br>\n"
      "Types of profiles available:\n<table>\n<thead><td>Count</td><td>Profile</td></thead>\n";
  for (const auto& p : profiles) {
    b += "<tr><td>" + std::to_string(p.count) + "</td><td><a href='" + html_escape(p.name) +
         "?debug=1'>" + html_escape(p.name) + "</a></td></tr>\n";
  }
  b += "<tr><td></td><td><a href='cmdline'>cmdline</a></td></tr>\n";
  b += "<tr><td></td><td><a href='profile'>profile</a></td></tr>\n";
  b += "<tr><td></td><td><a href='symbol'>symbol</a></td></tr>\n";
  b += "<tr><td></td><td><a href='trace'>trace</a></td></tr>\n";
  b += "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n"
       "<a href=\"/debug/gort/sched\">scheduler counters</a>\n<br>\n<p>\nProfile "
       "Descriptions:\n<ul>\n";
  for (const auto& p : profiles) {
    b += "<li><div class=profile-name>" + html_escape(p.name) + ": </div> " +
         html_escape(p.description) + "</li>\n";
  }
  b += "</ul>\n</p>\n</body>\n</html>";
  w.headers.set("Content-Type", "text/html; charset=utf-8");
  w.body = std::move(b);
}

// Go's Profile: a CPU profile of the next ?seconds=N (default 30), as profile.proto.
void cpu_profile_page(const http::Request& r, http::Response& w) {
  long seconds = 30;
  if (auto q = r.query("seconds")) {
    try {
      seconds = std::stol(*q);
    } catch (const std::exception&) {
      seconds = 0;
    }
  }
  if (seconds <= 0) seconds = 30;  // Go: a missing or zero value means 30
  std::ostringstream out;
  std::string failure;
  try {
    pprof::start_cpu_profile(out);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) return serve_error(w, 500, "Could not enable CPU profiling: " + failure);
  sleep(std::chrono::seconds(seconds));
  pprof::stop_cpu_profile();
  w.headers.set("X-Content-Type-Options", "nosniff");
  w.headers.set("Content-Type", "application/octet-stream");
  w.headers.set("Content-Disposition", "attachment; filename=\"profile\"");
  w.body = std::move(out).str();
}

// ?seconds=N as Go's handlers read it: a number (fractions allowed for the trace), a
// missing or non-positive value giving the default.
double seconds_param(const http::Request& r, double fallback) {
  auto q = r.query("seconds");
  if (!q) return fallback;
  char* end = nullptr;
  const double v = std::strtod(q->c_str(), &end);
  return end != q->c_str() && v > 0 ? v : fallback;
}

// Go's Trace: an execution trace of the next ?seconds=N (default 1). gort's trace is
// Chrome Trace Event JSON (docs/design/trace.md): open it in https://ui.perfetto.dev.
void trace_page(const http::Request& r, http::Response& w) {
  const double seconds = seconds_param(r, 1);
  std::ostringstream out;
  std::string failure;
  try {
    trace::start(out);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) return serve_error(w, 500, "Could not enable tracing: " + failure);
  sleep(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds)));
  blocking([] { trace::stop(); });  // joins the trace's writer thread: not on a P
  w.headers.set("X-Content-Type-Options", "nosniff");
  w.headers.set("Content-Type", "application/json");
  w.headers.set("Content-Disposition", "attachment; filename=\"trace.json\"");
  w.body = std::move(out).str();
}

// Go's Symbol: GET answers "num_symbols: 1" (symbols are available); POST (or GET with a
// query) takes addresses separated by '+' and answers one "0x<addr> <function>" line per
// address it knows, as pprof's remote symbolizer expects.
void symbol_page(const http::Request& r, http::Response& w) {
  w.headers.set("X-Content-Type-Options", "nosniff");
  w.headers.set("Content-Type", "text/plain; charset=utf-8");
  std::string b = "num_symbols: 1\n";
  const std::string_view in = r.method == "POST" ? std::string_view(r.body) : r.raw_query;
  std::size_t pos = 0;
  while (pos < in.size()) {
    std::size_t end = in.find('+', pos);
    if (end == std::string_view::npos) end = in.size();
    const std::string word(in.substr(pos, end - pos));
    pos = end + 1;
    char* stop = nullptr;
    const unsigned long long pc = std::strtoull(word.c_str(), &stop, 0);
    if (stop == word.c_str() || *stop != '\0') continue;
    symbolize::Symbol sym;
    if (!symbolize::lookup(static_cast<std::uintptr_t>(pc), &sym) || sym.function.empty()) continue;
    char addr[24];
    std::snprintf(addr, sizeof addr, "%#llx ", pc);
    b += addr;
    b += sym.function;
    b += '\n';
  }
  w.body = std::move(b);
}

// Go's Cmdline: the arguments separated by NULs.
void cmdline_page(const http::Request&, http::Response& w) {
  std::string args;
  if (FILE* f = std::fopen("/proc/self/cmdline", "rb")) {
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) args.append(buf, n);
    std::fclose(f);
  }
  if (!args.empty() && args.back() == '\0') args.pop_back();
  w.headers.set("X-Content-Type-Options", "nosniff");
  w.headers.set("Content-Type", "text/plain; charset=utf-8");
  w.body = std::move(args);
}

void row(std::string& b, std::string_view name, std::uint64_t v) {
  char line[96];
  std::snprintf(line, sizeof line, "%-20.*s %llu\n", static_cast<int>(name.size()), name.data(),
                static_cast<unsigned long long>(v));
  b += line;
}

// The scheduler's counters: totals, then one line per P.
void sched_page(const http::Request&, http::Response& w) {
  const SchedStats st = sched_stats();
  std::string b = "gort scheduler counters (gort::sched_stats)\n\n";
  row(b, "procs", static_cast<std::uint64_t>(st.procs));
  row(b, "threads", static_cast<std::uint64_t>(st.threads));
  row(b, "goroutines", static_cast<std::uint64_t>(st.goroutines));
  row(b, "goroutines_created", st.goroutines_created);
  row(b, "switches", st.switches);
  row(b, "yields", st.yields);
  row(b, "parks", st.parks);
  row(b, "steals", st.steals);
  row(b, "stolen_goroutines", st.stolen_goroutines);
  row(b, "spins", st.spins);
  row(b, "global_queue_gets", st.global_queue_gets);
  row(b, "thread_wakeups", st.thread_wakeups);
  row(b, "sysmon_retakes", st.sysmon_retakes);
  b += "\nP    created     switches    yields      parks       steals      stolen      "
       "spins       global_gets\n";
  for (const ProcStats& p : st.per_proc) {
    char line[256];
    std::snprintf(
        line, sizeof line, "%-4d %-11llu %-11llu %-11llu %-11llu %-11llu %-11llu %-11llu %llu\n",
        p.id, static_cast<unsigned long long>(p.goroutines_created),
        static_cast<unsigned long long>(p.switches), static_cast<unsigned long long>(p.yields),
        static_cast<unsigned long long>(p.parks), static_cast<unsigned long long>(p.steals),
        static_cast<unsigned long long>(p.stolen_goroutines),
        static_cast<unsigned long long>(p.spins),
        static_cast<unsigned long long>(p.global_queue_gets));
    b += line;
  }
  w.headers.set("Content-Type", "text/plain; charset=utf-8");
  w.body = std::move(b);
}

}  // namespace

struct Server::Impl {
  Impl(net::Listener l, std::string a)
      : listener(std::move(l)), addr(std::move(a)), server(make_mux(), options()) {}
  static http::Handler make_mux() {
    http::ServeMux mux;
    register_handlers(mux);
    return mux;
  }
  static http::ServerOptions options() {
    http::ServerOptions o;
    o.read_header_timeout = std::chrono::seconds(10);
    o.write_timeout = std::chrono::seconds(30);
    return o;
  }
  net::Listener listener;
  std::string addr;
  http::Server server;
  WaitGroup done;  // the serving goroutine has returned
  std::atomic<bool> stopped{false};
};

const std::string& Server::addr() const {
  return impl_->addr;
}

void Server::shutdown() {
  if (impl_ == nullptr || impl_->stopped.exchange(true)) return;
  impl_->server.shutdown();
  impl_->done.wait();
}

Server serve(std::string_view addr) {
  net::Listener l = net::listen("tcp", addr);
  std::string bound = l.addr();
  auto impl = std::make_shared<Server::Impl>(std::move(l), std::move(bound));
  impl->done.add(1);
  go([impl] {
    std::string failure;
    try {
      impl->server.serve(impl->listener);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) std::fprintf(stderr, "gort/debug: serve: %s\n", failure.c_str());
    impl->done.done();
  });
  return Server(std::move(impl));
}

void register_handlers(http::ServeMux& mux) {
  mux.handle(std::string(kPrefix), index_page);
  mux.handle("/debug/pprof/cmdline", cmdline_page);
  mux.handle("/debug/pprof/profile", cpu_profile_page);
  mux.handle("/debug/pprof/trace", trace_page);
  mux.handle("/debug/pprof/symbol", symbol_page);
  mux.handle("/debug/gort/sched", sched_page);
}

}  // namespace gort::debug

// Debug endpoints: Go's net/http/pprof, served by gort's own HTTP server.
//
//   /debug/pprof/                      index of the profiles (HTML, as Go's)
//   /debug/pprof/goroutine?debug=1     goroutines grouped by stack, with counts
//   /debug/pprof/goroutine?debug=2     every goroutine: id, state, wait reason, frames
//   /debug/pprof/block, /mutex         contention profiles (proto; ?debug=1: text), once
//                                      enabled with set_block_profile_rate and
//                                      set_mutex_profile_fraction
//   /debug/pprof/cmdline               the command line, NUL-separated
//   /debug/pprof/profile?seconds=N     a CPU profile of the next N s (30), profile.proto
//   /debug/gort/sched                  the scheduler's counters (gort::sched_stats())
// An unknown profile is "404 Unknown profile"; a profile form gort cannot write yet (debug=0,
// the protobuf) is "501 Not Implemented" with the reason.
//
// Go's idiom `go http.ListenAndServe("localhost:6060", nil)` becomes
//   auto dbg = gort::debug::serve("127.0.0.1:6060");   // or ":0" for any free port
//   std::printf("debug server on http://%s/debug/pprof/\n", dbg.addr().c_str());
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "gort/http.hpp"

namespace gort::debug {

// A running debug server. Copies share it. It runs until shutdown() (or until gort::run
// returns, which abandons it with every other goroutine).
class Server {
 public:
  // The bound address, "host:port", with the real port when serve() was given port 0.
  const std::string& addr() const;
  // Stops accepting, finishes requests in progress, waits for the serving goroutine.
  // Idempotent. Context: goroutine.
  void shutdown();

  struct Impl;

 private:
  friend Server serve(std::string_view addr);
  explicit Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Listens on addr (a loopback address by default: the pages expose stacks and counters,
// which a public port should not) and serves the debug endpoints in a goroutine. Binding
// errors throw std::system_error here, not later. Context: goroutine.
Server serve(std::string_view addr = "127.0.0.1:0");

// Adds the endpoints above to a mux, to serve them from your own server.
void register_handlers(http::ServeMux& mux);

}  // namespace gort::debug

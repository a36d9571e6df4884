// A TCP echo server: one goroutine per connection, each a plain blocking loop that parks
// in the netpoller, as in Go.
//   echo_server [addr]          serve on addr (default 127.0.0.1:7007) until killed
//   echo_server --self-test     serve on a free port, check it with 16 clients, exit
#include <gort/gort.hpp>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

void echo(gort::net::Conn c) {
  std::byte buf[16384];
  try {
    for (std::size_t n; (n = c.read(buf)) > 0;) c.write(std::span(buf, n));
  } catch (const std::system_error&) {
    // reset by the peer: done with this client
  }
}

void serve(gort::net::Listener& l) {
  for (;;) {
    gort::net::Conn c;
    try {
      c = l.accept();
    } catch (const std::system_error& e) {
      if (gort::net::is_closed(e)) return;
      std::fprintf(stderr, "accept: %s\n", e.what());
      gort::sleep(std::chrono::milliseconds(10));  // EMFILE and friends: back off, go on
      continue;
    }
    gort::go(echo, std::move(c));
  }
}

// 16 clients, 100 round trips each; returns the number of mismatches.
int self_test(const std::string& addr) {
  std::atomic<int> bad{0};
  gort::WaitGroup wg;
  for (int i = 0; i < 16; ++i) {
    wg.add(1);
    gort::go([&, i] {
      gort::net::Conn c = gort::net::dial("tcp", addr);
      for (int k = 0; k < 100; ++k) {
        const std::string msg = "client " + std::to_string(i) + " message " + std::to_string(k);
        c.write(msg);
        std::string got(msg.size(), '\0');
        for (std::size_t off = 0; off < got.size();)
          off += c.read(std::as_writable_bytes(std::span(got.data() + off, got.size() - off)));
        if (got != msg) ++bad;
      }
      wg.done();
    });
  }
  wg.wait();
  return bad.load();
}

}  // namespace

int main(int argc, char** argv) {
  const bool test = argc > 1 && std::strcmp(argv[1], "--self-test") == 0;
  const std::string addr = test ? "127.0.0.1:0" : argc > 1 ? argv[1] : "127.0.0.1:7007";
  return gort::run([&] {
    gort::net::Listener l = gort::net::listen("tcp", addr);
    std::printf("echo server listening on %s\n", l.addr().c_str());
    std::fflush(stdout);
    if (!test) {
      serve(l);
      return 0;
    }
    gort::WaitGroup served;
    served.add(1);
    gort::go([&] {
      serve(l);
      served.done();
    });
    const int bad = self_test(l.addr());
    l.close();
    served.wait();
    // The echo goroutines end when their clients hang up; let them, so nothing is
    // abandoned (and leaked) when main returns.
    while (gort::num_goroutine() > 1) gort::sleep(std::chrono::milliseconds(1));
    std::printf("self-test: 1600 round trips, %d wrong\n", bad);
    return bad == 0 ? 0 : 1;
  });
}

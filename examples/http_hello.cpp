// An HTTP hello-world server on gort::http, with the debug endpoints mounted beside it.
//   http_hello [addr]           serve on addr (default 127.0.0.1:8080) until killed
//   http_hello --self-test      serve on a free port, GET / and /debug/gort/sched, exit
#include <gort/gort.hpp>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

gort::http::ServeMux make_mux() {
  gort::http::ServeMux mux;
  mux.handle("/", [](const gort::http::Request& r, gort::http::Response& w) {
    if (r.path != "/") return gort::http::error(w, 404, "404 page not found");
    w.write("Hello, World!\n");
  });
  gort::debug::register_handlers(mux);  // /debug/pprof/..., /debug/gort/sched
  return mux;
}

// One GET over a raw connection; returns the status line and the body's size.
std::string get(const std::string& addr, const std::string& path) {
  gort::net::Conn c = gort::net::dial("tcp", addr);
  c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string all;
  std::byte buf[4096];
  for (std::size_t n; (n = c.read(buf)) > 0;) all.append(reinterpret_cast<char*>(buf), n);
  const auto body = all.find("\r\n\r\n");
  return all.substr(0, all.find("\r\n")) + ", " +
         std::to_string(body == std::string::npos ? 0 : all.size() - body - 4) + " body bytes";
}

}  // namespace

int main(int argc, char** argv) {
  const bool test = argc > 1 && std::strcmp(argv[1], "--self-test") == 0;
  const std::string addr = test ? "127.0.0.1:0" : argc > 1 ? argv[1] : "127.0.0.1:8080";
  return gort::run([&] {
    gort::net::Listener l = gort::net::listen("tcp", addr);
    std::printf("http://%s/ (debug pages: http://%s/debug/pprof/)\n", l.addr().c_str(),
                l.addr().c_str());
    std::fflush(stdout);
    gort::http::Server server(make_mux());
    if (!test) {
      server.serve(l);
      return 0;
    }
    gort::WaitGroup served;
    served.add(1);
    gort::go([&] {
      server.serve(l);
      served.done();
    });
    const std::string hello = get(l.addr(), "/"), sched = get(l.addr(), "/debug/gort/sched");
    std::printf("GET /: %s\nGET /debug/gort/sched: %s\n", hello.c_str(), sched.c_str());
    server.shutdown();
    served.wait();
    return hello.rfind("HTTP/1.1 200 OK", 0) == 0 && sched.rfind("HTTP/1.1 200 OK", 0) == 0 ? 0 : 1;
  });
}

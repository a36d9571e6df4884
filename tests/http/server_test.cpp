// gort::http: the server over real loopback connections (keep-alive, pipelining, bodies,
// HTTP/1.0, malformed input, limits, timeouts, shutdown) and the router on its own.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gort/gort.hpp"
#include "http/http_client.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using gort::test::get_request;
using gort::test::RawClient;

namespace {

// Echoes what the handler saw: "<method> <path> q=<q> body=<body>".
void echo(const gort::http::Request& r, gort::http::Response& w) {
  w.write(r.method + " " + r.path + " q=" + r.query("q").value_or("-") + " body=" + r.body);
}

// Runs test(addr) against a server with handler h and options o, then shuts it down.
template <class F>
void with_server(gort::http::ServerOptions o, gort::http::Handler h, F test) {
  gort::run(
      [&] {
        auto l = gort::net::listen("tcp", "127.0.0.1:0");
        gort::http::Server s(std::move(h), o);
        gort::WaitGroup served;
        served.add(1);
        gort::go([&] {
          s.serve(l);
          served.done();
        });
        test(l.addr());
        s.shutdown();
        served.wait();
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

template <class F>
void with_server(F test) {
  with_server({}, echo, test);
}

}  // namespace

TEST(HttpServer, KeepAliveServesSeveralRequestsOnOneConnection) {
  with_server([](const std::string& addr) {
    RawClient c(addr);
    for (int i = 0; i < 3; ++i) {
      auto r = c.roundtrip(get_request("/a%20b?q=" + std::to_string(i)));
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, "GET /a b q=" + std::to_string(i) + " body=");
      EXPECT_FALSE(r->has("Connection: close")) << r->head;
      EXPECT_TRUE(r->has("Content-Type: text/plain; charset=utf-8")) << r->head;
      EXPECT_NE(r->head.find("\r\nDate: "), std::string::npos) << r->head;
    }
  });
}

TEST(HttpServer, PipelinedRequestsAnsweredInOrder) {
  with_server([](const std::string& addr) {
    RawClient c(addr);
    c.send(get_request("/1") + get_request("/2") + get_request("/3"));
    for (int i = 1; i <= 3; ++i) {
      auto r = c.read_response();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->body, "GET /" + std::to_string(i) + " q=- body=");
    }
  });
}

TEST(HttpServer, RequestBodyWithContentLengthAndChunked) {
  with_server([](const std::string& addr) {
    RawClient c(addr);
    auto r = c.roundtrip("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "POST /p q=- body=hello");
    r = c.roundtrip(
        "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "POST /c q=- body=hello world");
    // Expect: 100-continue gets the interim response before the body is sent.
    c.send("PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    auto cont = c.read_response();
    ASSERT_TRUE(cont);
    EXPECT_EQ(cont->status, 100);
    c.send("abc");
    r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "PUT /e q=- body=abc");
  });
}

TEST(HttpServer, MalformedRequestGets400AndServerKeepsServing) {
  with_server([](const std::string& addr) {
    for (const char* bad :
         {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
          "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
          "GET nopath HTTP/1.1\r\nHost: t\r\n\r\n"}) {
      RawClient c(addr);
      auto r = c.roundtrip(bad);
      ASSERT_TRUE(r) << bad;
      EXPECT_EQ(r->status, 400) << bad;
      EXPECT_TRUE(r->has("Connection: close")) << r->head;
      EXPECT_TRUE(c.closed_by_server()) << bad;
    }
    RawClient good(addr);
    auto r = good.roundtrip(get_request("/still"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  });
}

TEST(HttpServer, LimitsGive431And413) {
  gort::http::ServerOptions o;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 100;
  with_server(o, echo, [](const std::string& addr) {
    {
      RawClient c(addr);
      auto r = c.roundtrip(get_request("/", "X-Big: " + std::string(8192, 'a') + "\r\n"));
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 431);
    }
    {
      RawClient c(addr);
      auto r = c.roundtrip("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
                           std::string(1000, 'b'));
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 413);
    }
    RawClient c(addr);
    auto r = c.roundtrip(get_request("/", "X-Small: " + std::string(100, 'a') + "\r\n"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  });
}

TEST(HttpServer, Http10ClosesUnlessKeepAliveAsked) {
  with_server([](const std::string& addr) {
    {
      RawClient c(addr);
      auto r = c.roundtrip("GET /old HTTP/1.0\r\n\r\n");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->head.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << r->head;
      EXPECT_TRUE(c.closed_by_server());
    }
    RawClient c(addr);
    auto r = c.roundtrip("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->has("Connection: keep-alive")) << r->head;
    r = c.roundtrip("GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "GET /again q=- body=");
    // HTTP/1.1 with Connection: close: answered, then closed.
    RawClient d(addr);
    r = d.roundtrip(get_request("/bye", "Connection: close\r\n"));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->has("Connection: close")) << r->head;
    EXPECT_TRUE(d.closed_by_server());
  });
}

TEST(HttpServer, HandlerCanCloseTheConnection) {
  auto h = [](const gort::http::Request&, gort::http::Response& w) {
    w.headers.set("Connection", "close");
    w.write("last");
  };
  with_server({}, h, [](const std::string& addr) {
    RawClient c(addr);
    auto r = c.roundtrip(get_request("/"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "last");
    EXPECT_TRUE(r->has("Connection: close")) << r->head;
    EXPECT_TRUE(c.closed_by_server());
  });
}

TEST(HttpServer, HandlerExceptionGives500AndServerContinues) {
  auto h = [](const gort::http::Request& r, gort::http::Response& w) {
    if (r.path == "/throw") throw std::runtime_error("boom");
    w.write("fine");
  };
  with_server({}, h, [](const std::string& addr) {
    RawClient c(addr);
    auto r = c.roundtrip(get_request("/throw"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    RawClient d(addr);
    r = d.roundtrip(get_request("/ok"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "fine");
  });
}

// Slowloris: a client that trickles its header a byte at a time is dropped at the
// read-header timeout, while other clients are served meanwhile.
TEST(HttpServer, SlowClientIsDroppedWhileOthersAreServed) {
  gort::http::ServerOptions o;
  o.read_header_timeout = 300ms;
  with_server(o, echo, [](const std::string& addr) {
    std::atomic<bool> dropped{false};
    std::atomic<long> dropped_after_ms{-1};
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([&] {
      RawClient slow(addr);
      const auto start = gort::now();
      const std::string req = get_request("/slow", "X-Pad: " + std::string(40, 'p') + "\r\n");
      try {
        for (char ch : req) {  // ~6 s to send it all
          slow.send(std::string_view(&ch, 1));
          gort::sleep(100ms);
          if (gort::now() - start > 3s) break;
        }
      } catch (const std::system_error&) {
        // the server closed it: writes fail with a reset
      }
      dropped = slow.closed_by_server();
      dropped_after_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(gort::now() - start).count();
      wg.done();
    });
    int served = 0;
    for (int i = 0; i < 20; ++i) {
      RawClient c(addr);
      auto r = c.roundtrip(get_request("/fast"));
      if (r && r->status == 200) ++served;
      gort::sleep(10ms);
    }
    wg.wait();
    EXPECT_EQ(served, 20);
    EXPECT_TRUE(dropped);
    EXPECT_LT(dropped_after_ms.load(), 2000);
  });
}

TEST(HttpServer, IdleConnectionClosedAfterIdleTimeout) {
  gort::http::ServerOptions o;
  o.idle_timeout = 200ms;
  with_server(o, echo, [](const std::string& addr) {
    RawClient c(addr);
    ASSERT_TRUE(c.roundtrip(get_request("/")));
    const auto start = gort::now();
    EXPECT_TRUE(c.closed_by_server());
    const auto waited = gort::now() - start;
    EXPECT_GE(waited, 150ms);
    EXPECT_LT(waited, 2s);
  });
}

TEST(HttpServer, ShutdownClosesIdleConnectionsAndReturns) {
  gort::run(
      [] {
        auto l = gort::net::listen("tcp", "127.0.0.1:0");
        gort::http::Server s(echo);
        gort::WaitGroup served;
        served.add(1);
        gort::go([&] {
          s.serve(l);
          served.done();
        });
        RawClient idle(l.addr());
        ASSERT_TRUE(idle.roundtrip(get_request("/")));
        const auto start = gort::now();
        s.shutdown();  // the idle connection must not hold it for the 120 s idle timeout
        served.wait();
        EXPECT_LT(gort::now() - start, 2s);
        EXPECT_TRUE(idle.closed_by_server());
        EXPECT_THROW(RawClient(l.addr()), std::system_error);  // no longer listening
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

// Running out of file descriptors makes accept() fail with EMFILE: the server backs off
// and goes on accepting once descriptors are free again (Go's http.Server does the same).
TEST(HttpServer, AcceptSurvivesRunningOutOfFileDescriptors) {
#if defined(GORT_TEST_ASAN)
  // UBSan's vptr check probes memory through a pipe; with no descriptor left it reports a
  // false "invalid vptr" on Boost's error_code (seen in CI). Release and TSan run this test.
  GTEST_SKIP() << "UBSan's vptr check misreports while descriptors are exhausted";
#endif
  with_server([](const std::string& addr) {
    rlimit old{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    int open_fds = 0;
    for (int fd = 0; fd < 4096; ++fd)
      if (fcntl(fd, F_GETFD) != -1) ++open_fds;
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(open_fds + 8);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<std::unique_ptr<RawClient>> clients;
    bool exhausted = false;
    for (int i = 0; i < 16 && !exhausted; ++i) {
      try {
        clients.push_back(std::make_unique<RawClient>(addr));
      } catch (const std::system_error&) {
        exhausted = true;  // our own dial hit the limit too
      }
      gort::sleep(5ms);  // let the server try to accept
    }
    gort::sleep(50ms);  // the server's accept hits EMFILE and backs off meanwhile
    clients.clear();
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    EXPECT_TRUE(exhausted);
    RawClient c(addr);
    auto r = c.roundtrip(get_request("/after"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  });
}

TEST(HttpServeMux, ExactPrefixLongestMatchRedirectAndNotFound) {
  gort::http::ServeMux mux;
  auto say = [](std::string s) {
    return [s](const gort::http::Request&, gort::http::Response& w) { w.write(s); };
  };
  mux.handle("/", say("root"));
  mux.handle("/exact", say("exact"));
  mux.handle("/tree/", say("tree"));
  mux.handle("/tree/deeper/", say("deeper"));
  auto get = [&](std::string path) {
    gort::http::Request r;
    r.path = std::move(path);
    gort::http::Response w;
    mux(r, w);
    return std::to_string(w.status) + " " + w.body;
  };
  EXPECT_EQ(get("/exact"), "200 exact");
  EXPECT_EQ(get("/exact/more"), "200 root");
  EXPECT_EQ(get("/tree/x"), "200 tree");
  EXPECT_EQ(get("/tree/deeper/y"), "200 deeper");
  EXPECT_EQ(get("/other"), "200 root");

  gort::http::ServeMux narrow;
  narrow.handle("/debug/", say("d"));
  gort::http::Request r;
  r.path = "/debug";
  gort::http::Response w;
  narrow(r, w);
  EXPECT_EQ(w.status, 301);
  EXPECT_EQ(w.headers.get("location").value_or(""), "/debug/");
  r.path = "/nothing";
  w = {};
  narrow(r, w);
  EXPECT_EQ(w.status, 404);
  EXPECT_EQ(w.body, "404 page not found\n");
}

TEST(HttpRequest, QueryDecoding) {
  gort::http::Request r;
  r.raw_query = "a=1&b=x+y%21&empty&a=2&bad=%zz";
  EXPECT_EQ(r.query("a"), "1");
  EXPECT_EQ(r.query("b"), "x y!");
  EXPECT_EQ(r.query("empty"), "");
  EXPECT_EQ(r.query("bad"), std::nullopt);
  EXPECT_EQ(r.query("missing"), std::nullopt);
}

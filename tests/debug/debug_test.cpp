// gort::debug::serve: the net/http/pprof pages over HTTP, on a real loopback port.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "gort/gort.hpp"
#include "http/http_client.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using gort::test::get_request;
using gort::test::RawClient;

namespace {

gort::test::RawResponse fetch(const std::string& addr, const std::string& target) {
  RawClient c(addr);
  auto r = c.roundtrip(get_request(target, "Connection: close\r\n"));
  return r.value_or(gort::test::RawResponse{});
}

template <class F>
void with_debug_server(F test) {
  gort::run(
      [&] {
        gort::debug::Server dbg = gort::debug::serve("127.0.0.1:0");
        test(dbg.addr());
        dbg.shutdown();
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

}  // namespace

TEST(DebugServer, BindsAnEphemeralLoopbackPortAndServesTheIndex) {
  with_debug_server([](const std::string& addr) {
    EXPECT_EQ(addr.rfind("127.0.0.1:", 0), 0u) << addr;
    EXPECT_NE(addr, "127.0.0.1:0");
    auto r = fetch(addr, "/debug/pprof/");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.has("Content-Type: text/html; charset=utf-8")) << r.head;
    EXPECT_NE(r.body.find("<a href='goroutine?debug=1'>goroutine</a>"), std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("full goroutine stack dump"), std::string::npos);
    r = fetch(addr, "/debug/pprof");
    EXPECT_EQ(r.status, 301);
    EXPECT_TRUE(r.has("Location: /debug/pprof/")) << r.head;
  });
}

TEST(DebugServer, GoroutineDumpsShowParkedGoroutines) {
  with_debug_server([](const std::string& addr) {
    auto ch = gort::make_chan<int>();
    std::atomic<std::uint64_t> id{0};
    gort::WaitGroup done;
    done.add(1);
    gort::go([&] {
      id = gort::goid();
      (void)ch.recv();
      done.done();
    });
    while (id == 0) gort::yield();
    const std::string want = "goroutine " + std::to_string(id) + " [chan receive]:\n";
    gort::test::RawResponse r;
    for (int i = 0; i < 100; ++i) {
      r = fetch(addr, "/debug/pprof/goroutine?debug=2");
      if (r.body.find(want) != std::string::npos) break;
      gort::sleep(10ms);
    }
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find(want), std::string::npos) << r.body;
    r = fetch(addr, "/debug/pprof/goroutine?debug=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.rfind("goroutine profile: total ", 0), 0u) << r.body;
    ch.send(1);
    done.wait();
  });
}

TEST(DebugServer, UnknownAndUnsupportedProfiles) {
  with_debug_server([](const std::string& addr) {
    auto r = fetch(addr, "/debug/pprof/nosuch?debug=1");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, "Unknown profile\n");
    r = fetch(addr, "/debug/pprof/goroutine");  // debug=0: a gzipped profile.proto
    EXPECT_EQ(r.status, 200);
    ASSERT_GE(r.body.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);
    r = fetch(addr, "/debug/pprof/threadcreate?debug=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.rfind("threadcreate profile: total ", 0), 0u) << r.body;
    r = fetch(addr, "/debug/pprof/mutex");  // debug=0: a gzipped profile.proto
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.has("Content-Type: application/octet-stream")) << r.head;
    r = fetch(addr, "/debug/pprof/profile?seconds=1");  // a gzipped profile.proto
    EXPECT_EQ(r.status, 200);
    ASSERT_GE(r.body.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(r.body[1]), 0x8b);
    r = fetch(addr, "/debug/pprof/cmdline");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("debug_server_test"), std::string::npos) << r.body;
  });
}

TEST(DebugServer, HeapWithGcCollectsFirst) {
  with_debug_server([](const std::string& addr) {
    const std::uint64_t before = gort::gc::stats().num_gc;
    auto r = fetch(addr, "/debug/pprof/heap?gc=1&debug=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.rfind("heap profile: ", 0), 0u) << r.body;
    EXPECT_GE(gort::gc::stats().num_gc, before + 1);
    EXPECT_EQ(fetch(addr, "/debug/pprof/allocs").status, 200);
  });
}

TEST(DebugServer, SchedPageShowsTheCounters) {
  with_debug_server([](const std::string& addr) {
    for (int i = 0; i < 10; ++i) gort::go([] {});
    auto r = fetch(addr, "/debug/gort/sched");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\nprocs                2\n"), std::string::npos) << r.body;
    const auto at = r.body.find("\ngoroutines_created   ");
    ASSERT_NE(at, std::string::npos) << r.body;
    EXPECT_GE(std::stoul(r.body.substr(at + 22)), 10u) << r.body;
    EXPECT_NE(r.body.find("\nP    created"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\n1    "), std::string::npos) << r.body;  // the second P's row
  });
}

namespace {
__attribute__((noinline)) void a_function_to_symbolize() {
  asm volatile("" ::: "memory");
}
}  // namespace

TEST(DebugServer, TraceServesTheJsonTraceOfTheNextSeconds) {
  with_debug_server([](const std::string& addr) {
    std::atomic<bool> quit{false};
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([&] {  // something to trace meanwhile
      while (!quit.load()) gort::sleep(1ms);
      wg.done();
    });
    auto r = fetch(addr, "/debug/pprof/trace?seconds=0.05");
    quit = true;
    wg.wait();
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.has("Content-Type: application/json")) << r.head;
    EXPECT_EQ(r.body.rfind("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", 0), 0u) << r.body;
    EXPECT_NE(r.body.find("\"end\":\"block: sleep\""), std::string::npos);
    EXPECT_EQ(r.body.substr(r.body.size() - 4), "\n]}\n");
    EXPECT_FALSE(gort::trace::is_enabled());
  });
}

TEST(DebugServer, SymbolAnswersGetAndPost) {
  with_debug_server([](const std::string& addr) {
    auto r = fetch(addr, "/debug/pprof/symbol");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "num_symbols: 1\n");
    char pc[32];
    std::snprintf(pc, sizeof pc, "%#llx",
                  static_cast<unsigned long long>(
                      reinterpret_cast<std::uintptr_t>(&a_function_to_symbolize)));
    const std::string body = std::string(pc) + "+0x1+nonsense";
    RawClient c(addr);
    auto post = c.roundtrip("POST /debug/pprof/symbol HTTP/1.1\r\nHost: test\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    ASSERT_TRUE(post.has_value());
    EXPECT_EQ(post->status, 200);
    EXPECT_EQ(post->body.rfind("num_symbols: 1\n", 0), 0u) << post->body;
    EXPECT_NE(post->body.find(std::string(pc) + " "), std::string::npos) << post->body;
    EXPECT_NE(post->body.find("a_function_to_symbolize"), std::string::npos) << post->body;
    EXPECT_EQ(post->body.find("nonsense"), std::string::npos) << post->body;
    r = fetch(addr, "/debug/pprof/symbol?" + std::string(pc));  // GET with a query: the same
    EXPECT_NE(r.body.find("a_function_to_symbolize"), std::string::npos) << r.body;
  });
}

TEST(DebugServer, DeltaProfilesCoverOnlyTheWindow) {
  with_debug_server([](const std::string& addr) {
    gort::pprof::set_block_profile_rate(1);
    auto r = fetch(addr, "/debug/pprof/block?seconds=0.05");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.has("Content-Disposition: attachment; filename=\"block-delta\"")) << r.head;
    ASSERT_GE(r.body.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);  // gzip
    r = fetch(addr, "/debug/pprof/mutex?seconds=1&debug=1");
    EXPECT_EQ(r.status, 400);
    r = fetch(addr, "/debug/pprof/goroutine?seconds=1");
    EXPECT_EQ(r.status, 400);
    gort::pprof::set_block_profile_rate(0);
  });
}

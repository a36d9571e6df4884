// gort::net: sockets on the netpoller. Echo under many connections, deadlines, close
// while blocked, peer close, refused and cancelled dials, fd exhaustion, IPv6 and Unix
// sockets, plain threads, and the scheduler side (no false deadlock while goroutines wait
// for I/O; sysmon notices readiness while the only P is busy).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gort/gort.hpp"
#include "gort/net.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
namespace net = gort::net;

namespace {

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Reads exactly n bytes (or until end of stream).
std::string read_n(net::Conn& c, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const std::size_t r = c.read(std::as_writable_bytes(std::span(out.data() + got, n - got)));
    if (r == 0) break;
    got += r;
  }
  out.resize(got);
  return out;
}

// Accepts until the listener closes, echoing every connection in its own goroutine;
// returns once every connection has ended (so no goroutine outlives the test's runtime).
void serve_echo(net::Listener& l) {
  gort::WaitGroup handlers;
  for (;;) {
    net::Conn c;
    try {
      c = l.accept();
    } catch (const std::system_error& e) {
      if (net::is_closed(e)) break;
      throw;
    }
    handlers.add(1);
    gort::go([c = std::move(c), &handlers]() mutable {
      std::byte buf[4096];
      try {
        while (const std::size_t n = c.read(buf)) c.write(std::span(buf, n));
      } catch (const std::system_error&) {  // peer reset: this connection is done
      }
      c.close();
      handlers.done();
    });
  }
  handlers.wait();
}

// serve_echo in a goroutine; stop() closes the listener and waits for every connection
// to end (close the clients first).
class EchoServer {
 public:
  explicit EchoServer(net::Listener& l) : l_(l) {
    done_.add(1);
    gort::go([this] {
      serve_echo(l_);
      done_.done();
    });
  }
  void stop() {
    l_.close();
    done_.wait();
  }

 private:
  net::Listener& l_;
  gort::WaitGroup done_;
};

// Goroutines a test starts; the destructor waits for them, so none is abandoned (with its
// sockets) when the test's main returns.
class Goroutines {
 public:
  template <class F>
  void go(F f) {
    wg_.add(1);
    gort::go([this, f = std::move(f)]() mutable {
      f();
      wg_.done();
    });
  }
  ~Goroutines() { wg_.wait(); }

 private:
  gort::WaitGroup wg_;
};

// Starts a goroutine blocked reading c; its channel reports how the read ended: "data",
// "timeout" (is_timeout), "closed" (is_closed), or the error's text.
gort::Chan<std::string> read_in_goroutine(Goroutines& group, net::Conn& c) {
  auto result = gort::make_chan<std::string>(1);
  group.go([&c, result] {
    std::byte buf[8];
    try {
      c.read(buf);
      result.send("data");
    } catch (const std::system_error& e) {
      result.send(net::is_timeout(e) ? "timeout" : net::is_closed(e) ? "closed" : e.what());
    }
  });
  return result;
}

// A descriptor limit that leaves exactly `spare` numbers free: the limit counts descriptor
// numbers, and inherited descriptors may leave holes below the highest one.
rlim_t limit_leaving_free(int spare) {
  for (int fd = 0;; ++fd)
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF && --spare == 0)
      return static_cast<rlim_t>(fd + 1);
}

double ms_since(gort::Time t0) {
  return std::chrono::duration<double, std::milli>(gort::now() - t0).count();
}

TEST(Net, EchoWithManyConcurrentConnections) {
  gort::run(
      [] {
        net::Listener l = net::listen("tcp", "127.0.0.1:0");
        EchoServer server(l);
        const int clients = static_cast<int>(gort::test::scaled(200));
        constexpr int kRounds = 20;
        std::atomic<int> ok{0};
        gort::WaitGroup wg;
        wg.add(clients);
        for (int i = 0; i < clients; ++i) {
          gort::go([&, i] {
            net::Conn c = net::dial("tcp", l.addr());
            bool all_echoed = true;
            for (int r = 0; r < kRounds && all_echoed; ++r) {
              std::string msg = "client " + std::to_string(i) + " round " + std::to_string(r);
              msg.resize(64, '.');
              c.write(bytes(msg));
              all_echoed = read_n(c, msg.size()) == msg;
            }
            if (all_echoed) ok.fetch_add(1);
            c.close();
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(ok.load(), clients);
        server.stop();
      },
      {.procs = 2});
}

TEST(Net, ReadDeadlineTimesOutAndCanBeCleared) {
  gort::run([] {
    net::Listener l = net::listen("tcp", "127.0.0.1:0");
    net::Conn client = net::dial("tcp", l.addr());
    net::Conn server = l.accept();
    std::byte buf[16];
    client.set_read_deadline(gort::now() + 50ms);
    const gort::Time t0 = gort::now();
    try {
      client.read(buf);
      ADD_FAILURE() << "read returned without data";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(net::is_timeout(e)) << e.what();
      EXPECT_FALSE(net::is_closed(e));
    }
    EXPECT_GE(ms_since(t0), 49.0);
    // Still expired: later reads fail at once, even with data waiting.
    server.write(std::string_view("x"));
    EXPECT_THROW(client.read(buf), std::system_error);
    client.set_read_deadline(gort::Time{});  // no deadline
    EXPECT_EQ(client.read(buf), 1u);
  });
}

TEST(Net, DeadlineMovedIntoThePastWakesABlockedReader) {
  gort::run([] {
    Goroutines group;  // waited for before the runtime exits
    net::Listener l = net::listen("tcp", "127.0.0.1:0");
    net::Conn client = net::dial("tcp", l.addr());
    net::Conn server = l.accept();
    const auto result = read_in_goroutine(group, client);
    gort::sleep(20ms);  // let it block
    client.set_deadline(gort::now());
    EXPECT_EQ(result.recv(), "timeout");
  });
}

TEST(Net, CloseWakesBlockedReaderWithClosedError) {
  gort::run([] {
    Goroutines group;  // waited for before the runtime exits
    net::Listener l = net::listen("tcp", "127.0.0.1:0");
    net::Conn client = net::dial("tcp", l.addr());
    net::Conn server = l.accept();
    const auto result = read_in_goroutine(group, client);
    gort::sleep(20ms);
    client.close();
    EXPECT_EQ(result.recv(), "closed");
    EXPECT_EQ(client.fd(), -1);
    std::byte buf[8];
    try {
      client.read(buf);
      ADD_FAILURE() << "read after close succeeded";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(net::is_closed(e));
      EXPECT_NE(std::string(e.what()).find("use of closed network connection"), std::string::npos);
    }
    // The server sees end of stream.
    EXPECT_EQ(server.read(buf), 0u);
  });
}

TEST(Net, CloseWakesBlockedAccept) {
  gort::run([] {
    Goroutines group;  // waited for before the runtime exits
    net::Listener l = net::listen("tcp", "127.0.0.1:0");
    auto result = gort::make_chan<bool>(1);
    // The goroutine holds its own copy: the test's is destroyed (the test returns) while
    // the goroutine may still be finishing its send.
    group.go([&l, result] {
      try {
        l.accept();
        result.send(false);
      } catch (const std::system_error& e) {
        result.send(net::is_closed(e));
      }
    });
    gort::sleep(20ms);
    l.close();
    EXPECT_EQ(result.recv(), true);
  });
}

TEST(Net, PeerClosingMidReadGivesThePartialDataThenEndOfStream) {
  gort::run([] {
    Goroutines group;  // waited for before the runtime exits
    net::Listener l = net::listen("tcp", "127.0.0.1:0");
    group.go([&] {
      net::Conn c = l.accept();
      c.write(std::string_view("partial"));
      c.close();
    });
    net::Conn c = net::dial("tcp", l.addr());
    EXPECT_EQ(read_n(c, 100), "partial");
    std::byte buf[8];
    EXPECT_EQ(c.read(buf), 0u);
  });
}

TEST(Net, LargeWritesAreWrittenCompletely) {
  gort::run(
      [] {
        Goroutines group;  // waited for before the runtime exits
        net::Listener l = net::listen("tcp", "127.0.0.1:0");
        std::string big(8 << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 4096);
        group.go([&] {
          net::Conn c = l.accept();
          c.write(bytes(big));  // far beyond the socket buffers: parks in the netpoller
          c.close_write();
          std::byte b[1];
          c.read(b);  // wait for the client to finish
        });
        net::Conn c = net::dial("tcp", l.addr());
        gort::sleep(20ms);  // let the writer fill the buffers and park
        EXPECT_TRUE(read_n(c, big.size()) == big);
        std::byte b[1];
        EXPECT_EQ(c.read(b), 0u);  // close_write: end of stream
        c.close();
      },
      {.procs = 2});
}

TEST(Net, ConnectionRefusedIsASystemError) {
  gort::run([] {
    std::string addr;
    {
      net::Listener l = net::listen("tcp", "127.0.0.1:0");
      addr = l.addr();
    }
    try {
      net::dial("tcp", addr);
      ADD_FAILURE() << "dial succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::connection_refused) << e.what();
      EXPECT_NE(std::string(e.what()).find("dial tcp " + addr), std::string::npos) << e.what();
    }
  });
}

TEST(Net, BadAddressesAndNetworksAreInvalidArgument) {
  gort::run([] {
    for (const char* a : {"127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", "[::1:80",
                          "no.such.host:80", "1:2:3:80"}) {
      try {
        net::listen("tcp", a);
        ADD_FAILURE() << "listen accepted " << a;
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument) << a << ": " << e.what();
      }
    }
    EXPECT_THROW(net::listen("udp", "127.0.0.1:0"), std::system_error);
    EXPECT_THROW(net::listen("tcp4", "[::1]:0"), std::system_error);
  });
}

// A listener with a backlog of 0 that nobody accepts from: once its queue is full the
// kernel drops further SYNs, so a connect to it hangs until cancelled.
struct BlackholeListener {
  BlackholeListener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 0), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    addr = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~BlackholeListener() { ::close(fd); }
  BlackholeListener(const BlackholeListener&) = delete;
  BlackholeListener& operator=(const BlackholeListener&) = delete;

  // Fills the accept queue until a connect hangs (a 50 ms dial times out). Returns false
  // if this kernel never drops the SYN. The connections made are kept open.
  bool fill() {
    for (int i = 0; i < 64; ++i) {
      try {
        keep.push_back(net::dial_timeout("tcp", addr, 50ms));
      } catch (const std::system_error& e) {
        if (net::is_timeout(e)) return true;
        throw;
      }
    }
    return false;
  }
  int fd;
  std::string addr;
  std::vector<net::Conn> keep;
};

// Runs dial_fn (which must fail) against a full backlog and returns its error and how
// long it took. A connect that the kernel let through after all (the first connection's
// handshake can still be completing when the queue is probed) is kept and retried.
template <class F>
std::optional<std::pair<std::system_error, double>> dial_hanging(BlackholeListener& bh, F dial_fn) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (!bh.fill()) return std::nullopt;
    const gort::Time t0 = gort::now();
    try {
      bh.keep.push_back(dial_fn());
    } catch (const std::system_error& e) {
      return std::make_pair(e, ms_since(t0));
    }
  }
  return std::nullopt;
}

TEST(Net, DialTimeout) {
  gort::run([] {
    BlackholeListener bh;
    auto timed_out = dial_hanging(bh, [&] { return net::dial_timeout("tcp", bh.addr, 100ms); });
    if (!timed_out) GTEST_SKIP() << "this kernel does not drop SYNs on a full backlog";
    EXPECT_TRUE(net::is_timeout(timed_out->first)) << timed_out->first.what();
    EXPECT_GE(timed_out->second, 99.0);
    EXPECT_LT(timed_out->second, 5000.0);
  });
}

TEST(Net, DialCancelledByItsContext) {
  gort::run([] {
    BlackholeListener bh;
    auto cancelled = dial_hanging(bh, [&] {
      auto [ctx, cancel] = gort::with_cancel(gort::background());
      gort::go([cancel = cancel] {
        gort::sleep(50ms);
        cancel();
      });
      return net::dial(ctx, "tcp", bh.addr);
    });
    if (!cancelled) GTEST_SKIP() << "this kernel does not drop SYNs on a full backlog";
    EXPECT_EQ(cancelled->first.code(), std::errc::operation_canceled) << cancelled->first.what();
    EXPECT_GE(cancelled->second, 49.0);
    EXPECT_LT(cancelled->second, 5000.0);
  });
}

// errno of a std::system_error held in an exception_ptr, or 0. Inspected only after the
// descriptor limit is restored: UBSan probes memory through a pipe and misreports any
// member call while no descriptor is left.
int errno_of(const std::exception_ptr& e) {
  if (!e) return 0;
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& se) {
    return se.code().value();
  } catch (...) {
    return -1;
  }
}

// The limit leaves `spare` descriptors free. Each round trip takes two, so the parity decides
// whether the dial or the accept hits the limit first; the two spares cover both (CI found
// the second case).
class AcceptOutOfDescriptors : public ::testing::TestWithParam<int> {};

TEST_P(AcceptOutOfDescriptors, AcceptSurvivesAndTakesThePendingConnection) {
  const int spare = GetParam();
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  gort::run([&] {
    net::Listener l = net::listen("tcp", "127.0.0.1:0");
    rlimit low = old;
    low.rlim_cur = limit_leaving_free(spare);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<net::Conn> clients;
    std::vector<net::Conn> accepted;
    std::exception_ptr dial_failure;
    std::exception_ptr accept_failure;
    auto dial_and_accept = [&] {
      try {
        clients.push_back(net::dial("tcp", l.addr()));
      } catch (const std::system_error&) {
        dial_failure = std::current_exception();
        return false;
      }
      try {
        accepted.push_back(l.accept());
      } catch (const std::system_error&) {
        accept_failure = std::current_exception();
        return false;
      }
      return true;
    };
    for (int i = 0; i < 64 && dial_and_accept(); ++i) {
    }
    // Exactly one connection must be pending while no descriptor is free, so accept fails.
    // If the dial hit the limit first, free one descriptor and dial once more.
    if (!accept_failure && !clients.empty()) {
      clients.pop_back();
      dial_and_accept();
    }
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    if (dial_failure) {
      EXPECT_EQ(errno_of(dial_failure), EMFILE);
    }
    ASSERT_TRUE(accept_failure) << "no connection was left pending";
    EXPECT_EQ(errno_of(accept_failure), EMFILE);
    // With descriptors back, the same listener accepts the connection that was pending.
    net::Conn pending = l.accept();
    pending.write(std::string_view("late"));
    clients.back().set_read_deadline(gort::now() + 10s);  // fail, not hang, if it is not ours
    EXPECT_EQ(read_n(clients.back(), 4), "late");
    pending.close();
    accepted.clear();
    clients.clear();
    EchoServer server(l);
    net::Conn c = net::dial("tcp", l.addr());
    c.write(std::string_view("alive"));
    EXPECT_EQ(read_n(c, 5), "alive");
    c.close();
    server.stop();
  });
  setrlimit(RLIMIT_NOFILE, &old);
}

INSTANTIATE_TEST_SUITE_P(Net, AcceptOutOfDescriptors, ::testing::Values(7, 8),
                         [](const auto& param_info) {
                           return "Spare" + std::to_string(param_info.param);
                         });

TEST(Net, Ipv6Loopback) {
  gort::run([] {
    net::Listener l;
    try {
      l = net::listen("tcp6", "[::1]:0");
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    EXPECT_EQ(l.addr().rfind("[::1]:", 0), 0u) << l.addr();
    EchoServer server(l);
    net::Conn c = net::dial("tcp", l.addr());
    EXPECT_EQ(c.remote_addr(), l.addr());
    c.write(std::string_view("six"));
    EXPECT_EQ(read_n(c, 3), "six");
    c.close();
    server.stop();
  });
}

TEST(Net, DualStackListenerAcceptsIpv4) {
  gort::run([] {
    net::Listener l = net::listen("tcp", ":0");
    const std::string port = l.addr().substr(l.addr().rfind(':') + 1);
    EchoServer server(l);
    net::Conn c = net::dial("tcp", "127.0.0.1:" + port);
    c.write(std::string_view("four"));
    EXPECT_EQ(read_n(c, 4), "four");
    c.close();
    server.stop();
  });
}

TEST(Net, UnixSockets) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("gort-net-" + std::to_string(getpid()))).string();
  gort::run([&] {
    net::Listener l = net::listen("unix", path);
    EXPECT_EQ(l.addr(), path);
    EXPECT_TRUE(std::filesystem::exists(path));
    EXPECT_THROW(net::listen("unix", path), std::system_error);  // in use
    EchoServer server(l);
    net::Conn c = net::dial("unix", path);
    c.write(std::string_view("over unix"));
    EXPECT_EQ(read_n(c, 9), "over unix");
    c.close();
    server.stop();
  });
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Net, PlainThreadsUseBlockingCalls) {
  // No runtime at all.
  net::Listener l = net::listen("tcp", "127.0.0.1:0");
  std::thread server([&] {
    net::Conn c = l.accept();
    std::byte buf[64];
    while (const std::size_t n = c.read(buf)) c.write(std::span(buf, n));
  });
  {
    net::Conn c = net::dial("tcp", l.addr());
    c.write(std::string_view("thread"));
    EXPECT_EQ(read_n(c, 6), "thread");
    c.set_read_deadline(gort::now() + 30ms);
    std::byte buf[8];
    try {
      c.read(buf);
      ADD_FAILURE() << "read returned";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(net::is_timeout(e)) << e.what();
    }
  }
  server.join();
}

TEST(Net, GoroutinesWaitingForIoAreNotADeadlock) {
  // The only goroutines wait on a socket and a channel; a plain thread supplies the data
  // 100 ms later. Deadlock detection stays on: the M blocked in the netpoller counts.
  net::Listener l = net::listen("tcp", "127.0.0.1:0");
  std::thread writer;
  gort::run([&] {
    Goroutines group;  // waited for before the runtime exits
    auto got = gort::make_chan<std::string>(0);
    group.go([&l, got] {  // its own copy of the channel, which may outlive the test's
      net::Conn c = l.accept();
      got.send(read_n(c, 5));
    });
    writer = std::thread([addr = l.addr()] {
      std::this_thread::sleep_for(100ms);
      net::Conn c = net::dial("tcp", addr);
      c.write(std::string_view("hello"));
    });
    EXPECT_EQ(got.recv(), "hello");
  });
  writer.join();
}

TEST(Net, ReadinessIsNoticedWhileTheOnlyPIsBusy) {
  // One P kept busy by a goroutine that only yields: its run queue never drains, so only
  // sysmon's poll (every 10 ms of nobody polling) can notice the socket.
  gort::run(
      [] {
        Goroutines group;  // waited for before the runtime exits
        net::Listener l = net::listen("tcp", "127.0.0.1:0");
        std::atomic<bool> woke{false};
        group.go([&] {
          net::Conn c = l.accept();
          read_n(c, 1);
          woke.store(true);
        });
        std::thread writer([addr = l.addr()] {
          std::this_thread::sleep_for(20ms);
          net::Conn c = net::dial("tcp", addr);
          c.write(std::string_view("!"));
          std::this_thread::sleep_for(50ms);
        });
        const gort::Time t0 = gort::now();
        while (!woke.load() && ms_since(t0) < 3000) gort::yield();
        EXPECT_TRUE(woke.load());
        EXPECT_LT(ms_since(t0), 1000.0);
        writer.join();
      },
      {.procs = 1});
}

}  // namespace

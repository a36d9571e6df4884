// gort side of the channel and mutex comparison (bench/compare/run.sh); the same workloads
// as go/chan/main.go and boost_fiber/chan.cpp, using only gort's public API.
// Usage: compare_gort_chan <workload> (chan_pingpong_1p|_2p, chan_buffered_1x1|_4x4,
//                                     select_2chan, mutex_contended)
// Prints exactly "RESULT <workload> <value> ns/op" on stdout; diagnostics go to stderr.
// mutex_contended needs gort::Mutex; CMake defines GORT_COMPARE_HAVE_MUTEX=1 when
// include/gort/sync.hpp declares it (without it that workload fails and prints no result).
#include <gort/gort.hpp>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace {

using Clock = std::chrono::steady_clock;

constexpr long kPingN = 1'000'000;     // round trips per ping-pong round
constexpr long kBufN = 4'000'000;      // items per buffered round, split over the producers
constexpr std::size_t kBufCap = 1024;  // capacity of the buffered channel
constexpr long kSelectN = 1'000'000;   // items sent by each of the two select producers
constexpr long kMutexN = 2'000'000;    // lock/unlock pairs per mutex round, all goroutines
constexpr int kMutexG = 100;           // goroutines sharing the mutex
constexpr int kRounds = 5;             // measured rounds after one warm-up; report the min

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "CHECK FAILED: %s\n", what);
    std::_Exit(1);  // not exit(): the runtime's threads are still running
  }
}

// Warm-up once (stack and channel-waiter caches, first-touch page faults), then return the
// fastest of kRounds, in ns per op: the minimum is the least noisy estimate on a shared
// machine.
template <class F>
double best_ns_per_op(const char* name, double ops, F round) {
  auto time = [&] {
    auto t0 = Clock::now();
    round();
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  };
  std::fprintf(stderr, "%s warm-up: %.0f ms\n", name, time() / 1e6);
  double best = 1e300;
  for (int i = 0; i < kRounds; ++i) {
    double ns = time();
    std::fprintf(stderr, "%s round %d: %.0f ms\n", name, i, ns / 1e6);
    if (ns < best) best = ns;
  }
  return best / ops;
}

// pingpong: main sends on a, the echo goroutine receives and sends it back on b. Both
// channels are unbuffered, so every round trip is two rendezvous, each parking one
// goroutine and readying the other: the blocking/wake-up path of the channel. The round
// includes spawning the echo goroutine and closing a (~1 us of a few hundred ms).
double pingpong() {
  return best_ns_per_op("pingpong", kPingN, [] {
    auto a = gort::make_chan<long>(), b = gort::make_chan<long>();
    gort::go([a, b] {
      for (long v : a) b.send(v + 1);
    });
    for (long i = 0; i < kPingN; ++i) {
      a.send(i);
      check(b.recv() == i + 1, "ping-pong value");
    }
    a.close();  // ends the echo goroutine
  });
}

// buffered: `prod` producers share kBufN sends into one channel of capacity kBufCap, `cons`
// consumers range over it. Producers rarely block, so this mostly measures the buffer fast
// path under contention on the channel lock, plus parks when the buffer runs full or
// empty. Closing the channel after the producers finish ends the consumers' loops.
double buffered(int prod, int cons) {
  const long per = kBufN / prod;
  return best_ns_per_op("buffered", kBufN, [=] {
    auto ch = gort::make_chan<long>(kBufCap);
    gort::WaitGroup sent, received;
    std::atomic<long> total{0};
    sent.add(prod);
    received.add(cons);
    for (int c = 0; c < cons; ++c) {
      gort::go([&, ch] {
        long sum = 0;
        for (long v : ch) sum += v;
        total.fetch_add(sum);
        received.done();
      });
    }
    for (int p = 0; p < prod; ++p) {
      gort::go([&, ch] {
        for (long i = 0; i < per; ++i) ch.send(i);
        sent.done();
      });
    }
    sent.wait();
    ch.close();
    received.wait();
    check(total.load() == prod * per * (per - 1) / 2, "buffered sum");
  });
}

// select_2chan: two producers each send kSelectN ints on their own unbuffered channel and
// close it; main selects over both until both are closed and drained, disabling a closed
// channel by setting it to the nil channel, which a select never picks (Go's idiom).
double select_2chan() {
  return best_ns_per_op("select_2chan", 2.0 * kSelectN, [] {
    auto producer = [](gort::Chan<long> ch) {
      for (long i = 0; i < kSelectN; ++i) ch.send(i);
      ch.close();
    };
    gort::Chan<long> a = gort::make_chan<long>(), b = gort::make_chan<long>();
    gort::go(producer, a);
    gort::go(producer, b);
    long n = 0, sum = 0;
    auto take = [&](gort::Chan<long>& ch) {
      return [&](std::optional<long> v) {
        if (!v) {
          ch = gort::Chan<long>();  // closed and drained: nil it
          return;
        }
        ++n;
        sum += *v;
      };
    };
    while (a || b) gort::select(gort::on_recv(a, take(a)), gort::on_recv(b, take(b)));
    check(n == 2 * kSelectN && sum == kSelectN * (kSelectN - 1), "select count/sum");
  });
}

// mutex_contended: kMutexG goroutines on 2 Ps each do kMutexN / kMutexG lock; ++counter;
// unlock on one mutex. Far more goroutines than Ps, so waiters queue and park: this
// measures the mutex's spin-then-park path and its hand-off, not just an uncontended CAS.
double mutex_contended() {
#if GORT_COMPARE_HAVE_MUTEX
  return best_ns_per_op("mutex_contended", kMutexN, [] {
    gort::Mutex mu;
    gort::WaitGroup wg;
    long counter = 0;
    wg.add(kMutexG);
    for (int g = 0; g < kMutexG; ++g) {
      gort::go([&] {
        for (long i = 0; i < kMutexN / kMutexG; ++i) {
          mu.lock();
          ++counter;
          mu.unlock();
        }
        wg.done();
      });
    }
    wg.wait();
    check(counter == kMutexN, "mutex counter");
  });
#else
  std::fprintf(stderr, "mutex_contended: this build has no gort::Mutex (sync.hpp)\n");
  return -1;  // no RESULT line: run.sh shows n/a and reports the failure
#endif
}

}  // namespace

int main(int argc, char** argv) {
  struct Workload {
    const char* name;
    int procs;  // mirrors GOMAXPROCS in the Go version
    double (*run)();
  };
  static constexpr Workload kWorkloads[] = {
      {"chan_pingpong_1p", 1, pingpong},
      {"chan_pingpong_2p", 2, pingpong},
      {"chan_buffered_1x1", 2, [] { return buffered(1, 1); }},
      {"chan_buffered_4x4", 2, [] { return buffered(4, 4); }},
      {"select_2chan", 2, select_2chan},
      {"mutex_contended", 2, mutex_contended},
  };
  for (const Workload& w : kWorkloads) {
    if (argc != 2 || std::strcmp(argv[1], w.name) != 0) continue;
    return gort::run(
        [&] {
          const double ns = w.run();
          if (ns < 0) return 3;
          std::printf("RESULT %s %.1f ns/op\n", w.name, ns);
          // Where the work ran (all rounds): how often goroutines parked, spread over Ps.
          for (const gort::ProcStats& p : gort::sched_stats().per_proc) {
            std::fprintf(stderr,
                         "P%d: %" PRIu64 " switches, %" PRIu64 " parks, %" PRIu64 " steals\n", p.id,
                         p.switches, p.parks, p.steals);
          }
          return 0;
        },
        gort::Options{.procs = w.procs});
  }
  std::fprintf(stderr, "usage: %s <workload>, one of:", argv[0]);
  for (const Workload& w : kWorkloads) std::fprintf(stderr, " %s", w.name);
  std::fprintf(stderr, "\n");
  return 2;
}

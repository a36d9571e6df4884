// Boost.Fiber side of gort's channel and mutex comparison (bench/compare/run.sh): the
// workloads of go/chan/main.go with unbuffered_channel, buffered_channel and fibers::mutex.
// Usage: compare_fiber_chan chan_pingpong_1p|chan_pingpong_2p|chan_buffered_1x1|
//                           chan_buffered_4x4|mutex_contended
// Prints exactly "RESULT <workload> <value> ns/op" on stdout; diagnostics go to stderr.
// select_2chan has no equivalent: Boost.Fiber has no select over channels (run.sh shows
// n/a without running it).
#include <boost/fiber/all.hpp>

#include <malloc.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace fibers = boost::fibers;
using Clock = std::chrono::steady_clock;
using fibers::channel_op_status;

constexpr long kPingN = 1'000'000;     // round trips per ping-pong round
constexpr long kBufN = 4'000'000;      // items per buffered round, split over the producers
constexpr std::size_t kBufCap = 1024;  // a power of 2, as Boost requires; holds 1023 items
constexpr long kMutexN = 2'000'000;    // lock/unlock pairs per mutex round, all fibers
constexpr int kMutexG = 100;           // fibers sharing the mutex
constexpr int kRounds = 5;             // measured rounds after one warm-up; we report the minimum

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "CHECK FAILED: %s\n", what);
    std::_Exit(1);  // not exit(): the scheduler threads are still running
  }
}

// One warm-up round (stacks, allocator caches), then the fastest of kRounds, in ns per op: the
// minimum is the least noisy estimate on a shared machine.
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

// Runs body() on this thread's main fiber with `threads` scheduler threads: the default
// round_robin for 1 (GOMAXPROCS=1), work_stealing on 2 threads otherwise, set up as in
// sched.cpp. work_stealing's constructor waits on a static barrier until both threads have
// installed it and can be installed once per process, so all rounds share one pool; the
// helper thread's main fiber parks on a fiber condvar and its dispatcher runs (and steals)
// fibers until body() is done. Idle threads poll for work (suspend = false, the default).
template <class F>
double on_threads(int threads, F body) {
  if (threads == 1) return body();
  fibers::mutex mu;
  fibers::condition_variable cv;
  bool finished = false;
  std::thread helper([&] {
    fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return finished; });
  });
  fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
  double ns = body();
  {
    std::unique_lock lk(mu);
    finished = true;
  }
  cv.notify_all();
  helper.join();
  return ns;
}

// pingpong: main pushes on a, the echo fiber pops and pushes it back on b. Both are
// unbuffered_channel: push() returns only once a receiver has taken the value, so every
// round trip is two rendezvous, each suspending one fiber and readying the other. On 2
// threads the helper steals the echo fiber and keeps it, so every hand-off crosses threads
// and the result swings by 10x between rounds (README.md, "Notes on fairness").
double pingpong() {
  return best_ns_per_op("pingpong", kPingN, [] {
    fibers::unbuffered_channel<long> a, b;
    fibers::fiber echo([&] {
      long v;
      while (a.pop(v) == channel_op_status::success) b.push(v + 1);
    });
    for (long i = 0; i < kPingN; ++i) {
      a.push(i);
      long v = -1;
      b.pop(v);
      check(v == i + 1, "ping-pong value");
    }
    a.close();  // ends the echo fiber
    echo.join();
  });
}

// buffered: `prod` producers share kBufN pushes into one buffered_channel, `cons` consumers
// pop until it is closed and empty; closed after all producers have been joined. Boost's
// ring keeps one slot free, so capacity 1024 buffers 1023 items (Go and gort: 1024).
double buffered(int prod, int cons) {
  const long per = kBufN / prod;
  return best_ns_per_op("buffered", kBufN, [=] {
    fibers::buffered_channel<long> ch(kBufCap);
    std::atomic<long> total{0};
    std::vector<fibers::fiber> consumers, producers;
    for (int c = 0; c < cons; ++c) {
      consumers.emplace_back([&] {
        long v, sum = 0;
        while (ch.pop(v) == channel_op_status::success) sum += v;
        total.fetch_add(sum);
      });
    }
    for (int p = 0; p < prod; ++p) {
      producers.emplace_back([&] {
        for (long i = 0; i < per; ++i) ch.push(i);
      });
    }
    for (auto& f : producers) f.join();
    ch.close();
    for (auto& f : consumers) f.join();
    check(total.load() == prod * per * (per - 1) / 2, "buffered sum");
  });
}

// mutex_contended: kMutexG fibers on 2 threads each do kMutexN / kMutexG lock; ++counter;
// unlock on one fibers::mutex (a spinlock-protected wait queue; waiters suspend).
double mutex_contended() {
  return best_ns_per_op("mutex_contended", kMutexN, [] {
    fibers::mutex mu;
    long counter = 0;
    std::vector<fibers::fiber> fs;
    for (int g = 0; g < kMutexG; ++g) {
      fs.emplace_back([&] {
        for (long i = 0; i < kMutexN / kMutexG; ++i) {
          mu.lock();
          ++counter;
          mu.unlock();
        }
      });
    }
    for (auto& f : fs) f.join();
    check(counter == kMutexN, "mutex counter");
  });
}

int main(int argc, char** argv) {
  // As in sched.cpp: keep freed 128 KiB fiber stacks on the heap for the next round rather
  // than unmapping them and faulting them in again (Go and gort recycle their stacks).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  const char* w = argc == 2 ? argv[1] : "";
  double ns;
  if (!std::strcmp(w, "chan_pingpong_1p")) {
    ns = on_threads(1, pingpong);
  } else if (!std::strcmp(w, "chan_pingpong_2p")) {
    ns = on_threads(2, pingpong);
  } else if (!std::strcmp(w, "chan_buffered_1x1")) {
    ns = on_threads(2, [] { return buffered(1, 1); });
  } else if (!std::strcmp(w, "chan_buffered_4x4")) {
    ns = on_threads(2, [] { return buffered(4, 4); });
  } else if (!std::strcmp(w, "mutex_contended")) {
    ns = on_threads(2, mutex_contended);
  } else if (!std::strcmp(w, "select_2chan")) {
    std::fprintf(stderr, "select_2chan: n/a, Boost.Fiber has no select over channels\n");
    return 2;
  } else {
    std::fprintf(stderr,
                 "usage: %s chan_pingpong_1p|chan_pingpong_2p|chan_buffered_1x1|"
                 "chan_buffered_4x4|mutex_contended\n",
                 argv[0]);
    return 2;
  }
  std::printf("RESULT %s %.1f ns/op\n", w, ns);
}

// Boost.Fiber side of gort's timer comparison (bench/compare/run.sh): the experiment of
// go/timer/main.go with this_fiber::sleep_for, on work_stealing with 2 threads.
// Usage: compare_fiber_timer sleep_oversleep_p50|sleep_oversleep_p99|sleep_oversleep_max|
//                            sleep_round_ms
// Prints exactly "RESULT <workload> <value> <unit>" on stdout; diagnostics go to stderr.
//
// Every workload is the same experiment: 100,000 fibers on 2 threads each sleep 1 ms ten
// times and record how much longer than 1 ms each sleep took (the oversleep). The workload
// name only chooses which statistic is reported: the p50, p99 or maximum oversleep of the
// 1,000,000 samples (us), or the wall time of the experiment / 10 (ms per sleep round).
// Fibers run on fixedsize_stack(16 KiB), so 100,000 of them fit (the default 128 KiB stack
// would reserve 12.8 GB).
#include <boost/fiber/all.hpp>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace fibers = boost::fibers;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kGoroutines = 100'000;
constexpr int kSleeps = 10;  // sleeps per fiber
constexpr std::chrono::nanoseconds kSleepFor = 1ms;
constexpr std::size_t kStackSize = 16 * 1024;
constexpr int kRounds = 3;  // measured runs of the experiment after one warm-up; the median

struct Stats {
  double p50, p99, max;  // oversleep, us
  double round_ms;       // wall time / kSleeps, ms
  // Diagnostics (stderr only): when goroutines began their first sleep, ms after the gate
  // opened, p50 and max over the goroutines.
  double start_p50, start_max;
};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "CHECK FAILED: %s\n", what);
    std::_Exit(1);  // not exit(): the scheduler threads are still running
  }
}

// Boost.Fiber has no WaitGroup; this one is built like Go's, as in sched.cpp: an atomic
// counter on the fast path, a fiber mutex/condvar only for waiters. done() takes the mutex
// after the count hits zero, so it cannot slip between a waiter's check and its sleep.
class WaitGroup {
 public:
  void add(long n) { n_.fetch_add(n, std::memory_order_relaxed); }
  void done() {
    if (n_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    std::unique_lock lk(mu_);
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return n_.load(std::memory_order_acquire) == 0; });
  }

 private:
  std::atomic<long> n_{0};
  fibers::mutex mu_;
  fibers::condition_variable cv_;
};

// Percentile of sorted s by nearest rank: the smallest sample with at least p% of all
// samples at or below it (the same formula in all three implementations).
std::int64_t percentile(const std::vector<std::int64_t>& s, int p) {
  return s[(s.size() * p + 99) / 100 - 1];
}

// samples[g * kSleeps + i] is fiber g's i-th oversleep in ns. Allocated once; each fiber
// writes only its own slots, so no locking. A run starts by filling it with -1 so a slot
// that was never written shows up in the check.
//
// experiment: spawn all fibers, let each block on the release gate (started tells main they
// are all there), then open the gate and time from there until the last has finished. Each
// fiber then loops: t0 = now; sleep 1 ms; sample = now - t0 - 1 ms.
// starts[g] is when fiber g began its first sleep, ns after the gate opened.
Stats experiment(std::vector<std::int64_t>& samples, std::vector<std::int64_t>& starts) {
  std::fill(samples.begin(), samples.end(), -1);
  WaitGroup started, release, finished;
  Clock::time_point start;  // set before the gate opens, read after
  started.add(kGoroutines);
  release.add(1);
  finished.add(kGoroutines);
  for (int g = 0; g < kGoroutines; ++g) {
    fibers::fiber(std::allocator_arg, fibers::fixedsize_stack(kStackSize),
                  [&, g, slots = samples.data() + std::size_t(g) * kSleeps] {
                    started.done();
                    release.wait();
                    for (int i = 0; i < kSleeps; ++i) {
                      const auto t0 = Clock::now();
                      if (i == 0) starts[g] = std::chrono::nanoseconds(t0 - start).count();
                      boost::this_fiber::sleep_for(kSleepFor);
                      slots[i] = std::chrono::nanoseconds(Clock::now() - t0 - kSleepFor).count();
                    }
                    finished.done();
                  })
        .detach();
  }
  started.wait();
  start = Clock::now();
  release.done();
  finished.wait();
  const auto wall = Clock::now() - start;

  std::vector<std::int64_t> sorted(samples);
  std::sort(sorted.begin(), sorted.end());
  std::sort(starts.begin(), starts.end());
  // Sleep must never return early: a negative sample would be a timer bug (and -1 an
  // unwritten slot).
  if (sorted.front() < 0) {
    std::fprintf(stderr, "oversleep %lld ns\n", static_cast<long long>(sorted.front()));
    check(false, "oversleep < 0 (sleep returned early, or a slot was not written)");
  }
  return Stats{
      .p50 = percentile(sorted, 50) / 1e3,
      .p99 = percentile(sorted, 99) / 1e3,
      .max = sorted.back() / 1e3,
      .round_ms = std::chrono::duration<double, std::milli>(wall).count() / kSleeps,
      .start_p50 = percentile(starts, 50) / 1e6,
      .start_max = starts.back() / 1e6,
  };
}

void print(const char* name, const char* what, const Stats& s) {
  std::fprintf(stderr,
               "%s %s: oversleep p50 %.1f us, p99 %.1f us, max %.1f us; %.3f ms per round; "
               "first sleep p50 %.1f ms, max %.1f ms after the gate\n",
               name, what, s.p50, s.p99, s.max, s.round_ms, s.start_p50, s.start_max);
}

// Warm-up, then kRounds measured runs; returns the median of stat. On work_stealing with 2
// threads, set up as in chan.cpp: its constructor waits on a static barrier until both
// threads have installed it and can be installed once per process, so all runs share one
// pool; the helper thread's main fiber parks on a fiber condvar and its dispatcher runs (and
// steals) fibers until we are done. Idle threads poll for work (suspend = false, the
// default), which also means they notice due timers without being woken.
double measure(const char* name, double Stats::*stat) {
  fibers::mutex mu;
  fibers::condition_variable cv;
  bool finished = false;
  std::thread helper([&] {
    fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return finished; });
  });
  fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
  std::vector<std::int64_t> samples(std::size_t(kGoroutines) * kSleeps);
  std::vector<std::int64_t> starts(kGoroutines);
  print(name, "warm-up", experiment(samples, starts));
  double v[kRounds] = {};
  for (int i = 0; i < kRounds; ++i) {
    const Stats s = experiment(samples, starts);
    char what[32];
    std::snprintf(what, sizeof what, "round %d", i);
    print(name, what, s);
    v[i] = s.*stat;
  }
  {
    std::unique_lock lk(mu);
    finished = true;
  }
  cv.notify_all();
  helper.join();
  std::sort(v, v + kRounds);
  return v[kRounds / 2];
}

int main(int argc, char** argv) {
  // As in sched.cpp: keep freed fiber stacks on the heap for the next run rather than
  // giving them back to the kernel and faulting them in again (Go and gort recycle theirs).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  struct Workload {
    const char* name;
    const char* unit;
    double Stats::*stat;
  };
  static constexpr Workload kWorkloads[] = {
      {"sleep_oversleep_p50", "us", &Stats::p50},
      {"sleep_oversleep_p99", "us", &Stats::p99},
      {"sleep_oversleep_max", "us", &Stats::max},
      {"sleep_round_ms", "ms", &Stats::round_ms},
  };
  for (const Workload& w : kWorkloads) {
    if (argc != 2 || std::strcmp(argv[1], w.name) != 0) continue;
    const double v = measure(w.name, w.stat);
    std::printf("RESULT %s %.2f %s\n", w.name, v, w.unit);
    return 0;
  }
  std::fprintf(stderr, "usage: %s <workload>, one of:", argv[0]);
  for (const Workload& w : kWorkloads) std::fprintf(stderr, " %s", w.name);
  std::fprintf(stderr, "\n");
  return 2;
}

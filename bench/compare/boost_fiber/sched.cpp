// Boost.Fiber side of gort's scheduler comparison suite (bench/compare/run.sh).
// Usage: compare_fiber_sched spawn_join|yield_pingpong|parked_memory|parked_memory_16k
// Prints exactly "RESULT <workload> <value> <unit>" on stdout; diagnostics go to stderr.
#include <boost/fiber/all.hpp>

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

namespace fibers = boost::fibers;
using Clock = std::chrono::steady_clock;

constexpr long kSpawnN = 1'000'000, kYieldN = 2'000'000, kParkedN = 1'000'000;
constexpr int kRounds = 5;

// Boost.Fiber has no WaitGroup; this is the same design as Go's: an atomic counter
// on the fast path, and a fiber mutex/condvar only for the waiter. done() takes the
// mutex after the count hits zero, so it cannot slip between the waiter's check and
// its sleep. fibers::mutex/condition_variable are safe across scheduler threads.
class WaitGroup {
 public:
  void add(long n) { n_.fetch_add(n, std::memory_order_relaxed); }
  void done() {
    if (n_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::unique_lock lk(mu_);
      cv_.notify_all();
    }
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

// Warm-up once (stack memory, allocator caches), then report the fastest of kRounds.
template <class F>
double best_ns(const char* name, F round) {
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
  return best;
}

// spawn_join on 2 threads with work_stealing. Pitfalls: the work_stealing constructor
// blocks on a static barrier until all thread_count threads have installed it, and its
// thread counter is static, so the pool can be built only once per process: all rounds
// run inside one pool. Worse, steal() gives up when the head of the victim's queue is a
// pinned context, and the spawning thread's dispatcher fiber sits at that head while the
// main fiber runs; so while main spawns without yielding nothing can be stolen and all
// 1e6 fibers pile up (measured: ~12 GB RSS, >1 min per round here). The loop therefore
// yields once every 256 spawns (the size of Go's per-P run queue), which lets both
// threads drain the queue; that is the only difference from the Go/gort loop.
double spawn_join() {
  fibers::mutex mu;
  fibers::condition_variable cv;
  bool finished = false;
  std::thread helper([&] {
    fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
    std::unique_lock lk(mu);  // park this thread's main fiber; its dispatcher runs work
    cv.wait(lk, [&] { return finished; });
  });
  fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
  double ns = best_ns("spawn_join", [] {
    WaitGroup wg;
    for (long i = 0; i < kSpawnN; ++i) {
      wg.add(1);
      fibers::fiber([&wg] { wg.done(); }).detach();
      if ((i & 255) == 255) boost::this_fiber::yield();
    }
    wg.wait();
  });
  {
    std::unique_lock lk(mu);
    finished = true;
  }
  cv.notify_all();
  helper.join();
  return ns / kSpawnN;
}

// yield_pingpong: default round_robin on this thread; each yield() is one switch.
double yield_pingpong() {
  double ns = best_ns("yield_pingpong", [] {
    auto body = [] {
      for (long i = 0; i < kYieldN; ++i) boost::this_fiber::yield();
    };
    fibers::fiber a(body), b(body);
    a.join();
    b.join();
  });
  return ns / (2.0 * kYieldN);
}

long rss_bytes() {
  long size = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f || std::fscanf(f, "%ld %ld", &size, &resident) != 2) std::perror("statm");
  if (f) std::fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

// parked_memory: resident bytes per fiber blocked on a shared WaitGroup, one thread.
// Stack memory is malloc'ed and only touched pages count in RSS, so this is what a
// parked fiber really costs, not its virtual stack size.
template <class StackAlloc>
double parked_memory(StackAlloc salloc) {
  WaitGroup started, release, finished;
  release.add(1);
  started.add(kParkedN);
  finished.add(kParkedN);
  long before = rss_bytes();
  for (long i = 0; i < kParkedN; ++i) {
    fibers::fiber(std::allocator_arg, salloc, [&] {
      started.done();  // reached the blocking point...
      release.wait();  // ...and parks until main releases everyone
      finished.done();
    }).detach();
  }
  started.wait();
  long after = rss_bytes();
  std::fprintf(stderr, "parked_memory: rss before %ld, after %ld bytes\n", before, after);
  release.done();
  finished.wait();
  return double(after - before) / kParkedN;
}

int main(int argc, char** argv) {
  // Boost's stacks are plain malloc(128 KiB) by default. With glibc's defaults every
  // stack is its own mmap (past 65530 of them mmap fails and malloc falls back to brk)
  // and freed heap is trimmed back to the kernel, so each round re-faults its stacks.
  // Keep stacks on the heap and recycle them, as Go and gort recycle theirs.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  const char* w = argc == 2 ? argv[1] : "";
  if (!std::strcmp(w, "spawn_join")) {
    std::printf("RESULT spawn_join %.1f ns/op\n", spawn_join());
  } else if (!std::strcmp(w, "yield_pingpong")) {
    std::printf("RESULT yield_pingpong %.1f ns/op\n", yield_pingpong());
  } else if (!std::strcmp(w, "parked_memory")) {  // default stack: fixedsize_stack, 128 KiB
    std::printf("RESULT parked_memory %.0f bytes/goroutine\n",
                parked_memory(fibers::default_stack()));
  } else if (!std::strcmp(w, "parked_memory_16k")) {  // separate process: clean RSS baseline
    std::printf("RESULT parked_memory_16k %.0f bytes/goroutine\n",
                parked_memory(fibers::fixedsize_stack(16 * 1024)));
  } else {
    std::fprintf(stderr,
                 "usage: %s spawn_join|yield_pingpong|parked_memory|parked_memory_16k\n", argv[0]);
    return 2;
  }
}

// Boost.Fiber side of gort's scheduler comparison suite (bench/compare/run.sh).
// Usage: compare_fiber_sched spawn_join|yield_pingpong|parked_memory|parked_memory_16k
// Prints exactly "RESULT <workload> <value> <unit>" on stdout; diagnostics go to stderr.
#include <boost/fiber/all.hpp>

#include <malloc.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fibers = boost::fibers;
using Clock = std::chrono::steady_clock;

constexpr long kSpawnN = 1'000'000, kYieldN = 2'000'000;
constexpr long kParkedN = 1'000'000;  // parked_memory fibers ($COMPARE_PARKED_N overrides)
constexpr int kRounds = 5;            // measured rounds after one warm-up; we report the minimum

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Boost.Fiber has no WaitGroup; this one is built like Go's: an atomic counter on the
// fast path, a fiber mutex/condvar only for waiters. done() takes the mutex after the
// count hits zero, so it cannot slip between a waiter's check and its sleep.
// fibers::mutex and condition_variable work across scheduler threads.
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

// One warm-up round (page faults, allocator caches), then the fastest of kRounds: the
// minimum is the least noisy estimate on a shared machine.
template <class F>
double best_ns(const char* name, F round) {
  auto time = [&] {
    auto t0 = Clock::now();
    round();
    return ms(Clock::now() - t0) * 1e6;
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

// spawn_join on 2 threads with work_stealing. Pitfalls: its constructor blocks on a
// static barrier until all thread_count threads have installed it, and its thread
// counter is static, so the pool can be built only once per process (all rounds share
// it). Worse, steal() gives up when the head of the victim's queue is a pinned context,
// and the spawning thread's dispatcher fiber sits at that head while main runs: as long
// as main spawns without yielding nothing is stolen and all 1e6 fibers pile up (~12 GB
// RSS; the warm-up alone took >1 min here). So main yields every 256 spawns (Go's per-P
// run queue size) to let both threads drain the queue: the one difference from Go/gort.
// Even so the helper thread ends up running only ~1% of the fibers.
double spawn_join() {
  fibers::mutex mu;
  fibers::condition_variable cv;
  bool finished = false;
  std::thread helper([&] {
    fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
    std::unique_lock lk(mu);  // parks this thread's main fiber; its dispatcher runs fibers
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
  long size = 0, resident = 0;  // statm counts pages; the 2nd field is the RSS
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f || std::fscanf(f, "%ld %ld", &size, &resident) != 2) std::perror("statm");
  if (f) std::fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

// parked_memory: resident bytes per fiber blocked on a shared WaitGroup, one thread.
// Only touched stack pages count in RSS: this is what a parked fiber really costs, not
// its reserved stack size.
template <class StackAlloc>
double parked_memory(StackAlloc salloc) {
  const char* env = std::getenv("COMPARE_PARKED_N");  // smaller: quicker on slow page faults
  const long n = env && std::atol(env) > 0 ? std::atol(env) : kParkedN;
  WaitGroup started, release, finished;
  release.add(1);
  started.add(n);
  finished.add(n);
  long before = rss_bytes();
  auto t0 = Clock::now();
  for (long i = 0; i < n; ++i) {
    fibers::fiber(std::allocator_arg, salloc, [&] {
      started.done();  // reached the blocking point...
      release.wait();  // ...and parks until main releases everyone
      finished.done();
    }).detach();
  }
  started.wait();
  long after = rss_bytes();
  auto t1 = Clock::now();
  release.done();
  finished.wait();
  std::fprintf(stderr, "parked_memory: rss before %ld, after %ld; park %.0f ms, finish %.0f ms\n",
               before, after, ms(t1 - t0), ms(Clock::now() - t1));
  return double(after - before) / n;
}

int main(int argc, char** argv) {
  // Boost's default stack is a plain malloc(128 KiB). With glibc's defaults each one is
  // its own mmap and freed heap goes back to the kernel, so every round re-faults its
  // stacks (~15 us a page fault on a VM). Keep stacks on the heap and recycle them, as
  // Go and gort recycle theirs. pooled_fixedsize_stack would do it but is not thread-safe.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  const char* w = argc == 2 ? argv[1] : "";
  double v;
  if (!std::strcmp(w, "spawn_join"))
    v = spawn_join();
  else if (!std::strcmp(w, "yield_pingpong"))
    v = yield_pingpong();
  else if (!std::strcmp(w, "parked_memory"))
    v = parked_memory(fibers::default_stack());  // 128K
  else if (!std::strcmp(w, "parked_memory_16k"))
    v = parked_memory(fibers::fixedsize_stack(16384));
  else {
    std::fprintf(stderr, "usage: %s spawn_join|yield_pingpong|parked_memory|parked_memory_16k\n",
                 argv[0]);
    return 2;
  }
  const bool bytes = !std::strncmp(w, "parked", 6);
  std::printf("RESULT %s %.*f %s\n", w, bytes ? 0 : 1, v, bytes ? "bytes/goroutine" : "ns/op");
}

// gort's flagship demo: 100,000 goroutines spread over the Ps by the work-stealing
// scheduler; a pipeline over channels with a select timeout, stopped by a context
// deadline; a GC-heavy phase on the collected heap with GODEBUG=gctrace=1 lines on stderr;
// then the scheduler's own counters. A debug server (Go's net/http/pprof pages) runs
// throughout; the demo reads its own goroutine profile over HTTP at the end. A CPU
// profile of the whole run goes to cpu.pb.gz and an execution trace of the pipeline to
// trace.json (in the current directory); the demo prints the commands that open them.
//   tools/demo.sh            (or build/release/examples/gort_demo [goroutines])
#include <gort/gc.hpp>
#include <gort/gort.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Each goroutine does a little work, yields once, and reports the thread it finished on.
void spawn_phase(int n) {
  std::mutex mu;
  std::map<std::thread::id, int> per_thread;
  const auto t0 = Clock::now();
  gort::WaitGroup wg;
  for (int i = 0; i < n; ++i) {
    wg.add(1);
    gort::go([&, i] {
      volatile unsigned x = static_cast<unsigned>(i);
      for (int k = 0; k < 200; ++k) x = x * 1664525u + 1013904223u;
      gort::yield();
      {
        std::lock_guard<std::mutex> l(mu);
        ++per_thread[std::this_thread::get_id()];
      }
      wg.done();
    });
  }
  const double spawned_ms = ms_since(t0);
  wg.wait();
  const double total_ms = ms_since(t0);
  std::printf("spawned %d goroutines in %.1f ms; all finished after %.1f ms (%.0f ns each)\n", n,
              spawned_ms, total_ms, total_ms * 1e6 / n);
  std::printf("goroutines finished per OS thread:\n");
  int t = 0;
  for (auto& [id, count] : per_thread)
    std::printf("  thread %d  %7d  %s\n", t++, count,
                std::string(static_cast<std::size_t>(40.0 * count / n + 0.5), '#').c_str());
}

// A pipeline: generate -> 4 squaring workers -> main, in the shape Go programs use.
// The generator pauses between bursts, so main's receive `select` with a
// gort::after(10ms) case times out now and then; a 300 ms context deadline stops every
// stage, and the errgroup reports why.
struct Squared {
  long n;
  long square;
};

void pipeline_phase() {
  using namespace std::chrono_literals;
  constexpr int kWorkers = 4;
  constexpr long kBurst = 20'000;
  std::printf(
      "\npipeline: generate -> %d x square -> main; %d ms receive timeout, %d ms deadline\n",
      kWorkers, 10, 300);
  auto [group, ctx] = gort::ErrGroup::with_context(gort::background());
  auto [deadline_ctx, cancel] = gort::with_timeout(ctx, 300ms);
  gort::Chan<long> nums = gort::make_chan<long>(256);
  gort::Chan<Squared> results = gort::make_chan<Squared>(256);

  std::atomic<int> pauses{0};
  group.go([nums, c = deadline_ctx, &pauses]() -> std::error_code {
    for (long n = 1;; ++n) {
      if (n % kBurst == 0) {  // a slow upstream
        pauses.fetch_add(1);
        gort::sleep(25ms);
      }
      bool stopped = false;
      gort::select(gort::on_send(nums, n, [] {}),
                   gort::on_recv(c.done(), [&](auto) { stopped = true; }));
      if (stopped) return c.err();
    }
  });
  for (int w = 0; w < kWorkers; ++w) {
    group.go([nums, results, c = deadline_ctx]() -> std::error_code {
      for (;;) {
        std::optional<long> n;
        bool stopped = false;
        gort::select(gort::on_recv(nums, [&](std::optional<long> v) { n = v; }),
                     gort::on_recv(c.done(), [&](auto) { stopped = true; }));
        if (stopped || !n) return c.err();
        gort::select(gort::on_send(results, Squared{*n, *n * *n}, [] {}),
                     gort::on_recv(c.done(), [&](auto) { stopped = true; }));
        if (stopped) return c.err();
      }
    });
  }

  const auto t0 = Clock::now();
  long received = 0, wrong = 0, timeouts = 0;
  for (bool running = true; running;) {
    gort::select(gort::on_recv(results,
                               [&](std::optional<Squared> r) {
                                 ++received;
                                 if (r->square != r->n * r->n) ++wrong;
                               }),
                 gort::on_recv(gort::after(10ms), [&](auto) { ++timeouts; }),
                 gort::on_recv(deadline_ctx.done(), [&](auto) { running = false; }));
  }
  const double ms = ms_since(t0);
  const std::error_code why = group.wait();
  cancel();
  std::printf("  received %ld results in %.0f ms (%.2f M/s), %ld wrong\n", received, ms,
              received / ms / 1e3, wrong);
  std::printf(
      "  receive timeouts (select with gort::after): %ld, during %d upstream pauses of 25 ms\n",
      timeouts, pauses.load());
  std::printf("  every stage stopped: \"%s\"; goroutines left: %d (main, debug server)\n",
              why.message().c_str(), gort::num_goroutine());
}

void print_counters() {
  const gort::SchedStats st = gort::sched_stats();
  std::printf("\nscheduler counters (%d Ps, %d threads, %d goroutines alive)\n", st.procs,
              st.threads, st.goroutines);
  std::printf("  %-4s %10s %10s %8s %8s %8s %10s %8s\n", "P", "created", "switches", "yields",
              "parks", "steals", "stolen Gs", "spins");
  for (const auto& p : st.per_proc)
    std::printf("  P%-3d %10lu %10lu %8lu %8lu %8lu %10lu %8lu\n", p.id,
                static_cast<unsigned long>(p.goroutines_created),
                static_cast<unsigned long>(p.switches), static_cast<unsigned long>(p.yields),
                static_cast<unsigned long>(p.parks), static_cast<unsigned long>(p.steals),
                static_cast<unsigned long>(p.stolen_goroutines),
                static_cast<unsigned long>(p.spins));
  std::printf("  global run queue gets: %lu, idle thread wake-ups: %lu\n",
              static_cast<unsigned long>(st.global_queue_gets),
              static_cast<unsigned long>(st.thread_wakeups));
}

// The collected heap: 8 goroutines build and drop binary trees (gort::gc::make, Members
// traced by the collector) while a long-lived tree stays reachable; the concurrent
// collector runs cycles as the pacer decides, and gctrace prints one line per cycle.
struct TreeNode {
  gort::gc::Member<TreeNode> left, right;
  void trace(gort::gc::Visitor& v) const {
    v.visit(left);
    v.visit(right);
  }
};

gort::gc::Ptr<TreeNode> build_tree(int depth) {
  auto n = gort::gc::make<TreeNode>();
  if (depth > 0) {
    n->left = build_tree(depth - 1);
    n->right = build_tree(depth - 1);
  }
  return n;
}

long count_tree(const TreeNode* n) {
  return n == nullptr ? 0 : 1 + count_tree(n->left.get()) + count_tree(n->right.get());
}

void gc_phase() {
  std::printf("\ncollected heap: 8 goroutines build binary trees; gctrace on stderr\n");
  std::fflush(stdout);
  const auto t0 = Clock::now();
  const gort::gc::Ptr<TreeNode> long_lived = build_tree(16);
  std::atomic<long> wrong{0};
  gort::WaitGroup wg;
  for (int g = 0; g < 8; ++g) {
    wg.add(1);
    gort::go([&] {
      for (int i = 0; i < 24; ++i)
        if (count_tree(build_tree(12).get()) != (1L << 13) - 1) wrong.fetch_add(1);
      wg.done();
    });
  }
  wg.wait();
  const gort::gc::Stats st = gort::gc::stats();
  std::printf("  %.0f ms, %lu objects allocated, %lu cycles, heap now %.1f MiB (goal %.1f MiB)\n",
              ms_since(t0), static_cast<unsigned long>(st.mallocs),
              static_cast<unsigned long>(st.num_gc), static_cast<double>(st.heap_alloc) / (1 << 20),
              static_cast<double>(st.next_gc) / (1 << 20));
  std::printf(
      "  longest pause %.3f ms, longest stop of one goroutine %.3f ms, longest handshake wait "
      "of the collector %.3f ms\n",
      static_cast<double>(st.pause_max_ns) / 1e6, static_cast<double>(st.stack_stop_max_ns) / 1e6,
      static_cast<double>(st.handshake_wait_max_ns) / 1e6);
  std::printf("  marking on the Ps: %.1f ms on idle Ps, %.1f ms between goroutines\n",
              static_cast<double>(st.mark_idle_ns) / 1e6,
              static_cast<double>(st.mark_fractional_ns) / 1e6);
  std::printf("  long-lived tree: %ld nodes (want %ld); wrong short-lived trees: %ld\n",
              count_tree(long_lived.get()), (1L << 17) - 1, wrong.load());
}

// GET path from our own debug server; returns the body's first line.
std::string first_line_of(const std::string& addr, const std::string& path) {
  gort::net::Conn c = gort::net::dial("tcp", addr);
  c.write("GET " + path + " HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n");
  std::string all;
  std::byte buf[4096];
  for (std::size_t n; (n = c.read(buf)) > 0;) all.append(reinterpret_cast<char*>(buf), n);
  const auto body = all.find("\r\n\r\n");
  if (body == std::string::npos) return "(no response)";
  return all.substr(body + 4, all.find('\n', body + 4) - body - 4);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100'000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: %s [goroutines > 0]\n", argv[0]);
    return 2;
  }
  setenv("GODEBUG", "gctrace=1", 0);  // gc_phase shows the collector's cycles (unless set)
  return gort::run([n, argv] {
    std::ofstream cpu_out("cpu.pb.gz", std::ios::binary), trace_out("trace.json");
    gort::pprof::start_cpu_profile(cpu_out);
    gort::debug::Server dbg = gort::debug::serve("127.0.0.1:0");
    std::printf("gort demo: %d goroutines on %d Ps (GOMAXPROCS)\n", n, gort::gomaxprocs());
    std::printf("debug server: http://%s/debug/pprof/ (goroutine?debug=2, /debug/gort/sched)\n\n",
                dbg.addr().c_str());
    spawn_phase(n);
    gort::trace::start(trace_out);
    pipeline_phase();
    gort::trace::stop();
    gc_phase();
    print_counters();
    std::printf("\nGET /debug/pprof/goroutine?debug=1 -> \"%s\"\n",
                first_line_of(dbg.addr(), "/debug/pprof/goroutine?debug=1").c_str());
    dbg.shutdown();
    gort::pprof::stop_cpu_profile();
    std::printf("\nCPU profile: go tool pprof -top %s cpu.pb.gz\n", argv[0]);
    std::printf("  by line:   go tool pprof -top -lines %s cpu.pb.gz\n", argv[0]);
    std::printf("trace:       open trace.json in https://ui.perfetto.dev (or chrome://tracing)\n");
  });
}

// The CPU profiler, checked with Go's own tool: `go tool pprof -top` must read the profile,
// show the two hot functions by name with their 2:1 cost ratio, and filter by goroutine
// label (-tagfocus).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gort/gc.hpp"
#include "gort/gort.hpp"
#include "gort/pprof.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

using gort::test::have_go;
using gort::test::run_command;

std::atomic<std::uint64_t> g_sink{0};
// The same loop, twice as long in hot_double (~25 ms against ~12 ms: far longer than the
// sampling period, so the alternation cannot alias with it); noinline so the samples land
// in each.
__attribute__((noinline)) void hot_double() {
  std::uint64_t x = 1;
  for (int i = 0; i < 20'000'000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    asm volatile("" : "+r"(x));
  }
  g_sink.fetch_add(x, std::memory_order_relaxed);
}

__attribute__((noinline)) void hot_single() {
  std::uint64_t x = 1;
  for (int i = 0; i < 10'000'000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    asm volatile("" : "+r"(x));
  }
  g_sink.fetch_add(x, std::memory_order_relaxed);
}

std::string pprof_top(const std::string& file, const std::string& extra = "") {
  return run_command("HOME=${HOME:-/tmp} GOCACHE=/tmp/gort-gocache GOFLAGS= go tool pprof -top " +
                     extra + " " + file + " 2>&1");
}

// Seconds in a `go tool pprof -top` row whose name contains fn, or -1: the flat column,
// or with cum, the cumulative one.
// Rows look like "     416ms 75.91% 75.91%      416ms 75.91%  ::hot_double".
double top_seconds(const std::string& top, const std::string& fn, bool cum) {
  std::istringstream in(top);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(fn) == std::string::npos) continue;
    std::istringstream row(line);
    std::string flat, flat_pct, sum_pct, cumulative;
    if (!(row >> flat >> flat_pct >> sum_pct >> cumulative) || flat_pct.empty() ||
        flat_pct.back() != '%')
      continue;
    const std::string& field = cum ? cumulative : flat;
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(field, &used);
    } catch (const std::exception&) {
      continue;
    }
    const std::string unit = field.substr(used);
    if (unit == "ms") return v / 1000;
    if (unit == "s") return v;
    if (unit == "us" || unit == "\u00b5s") return v / 1e6;
  }
  return -1;
}

double flat_seconds(const std::string& top, const std::string& fn) {
  return top_seconds(top, fn, false);
}

std::string temp_file(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string(name) + "-" + std::to_string(::getpid()) + ".pb.gz"))
      .string();
}

TEST(CpuProfile, GoToolPprofShowsHotFunctionsInProportion) {
  if (!have_go()) GTEST_SKIP() << "golang-go (go tool pprof) is not installed";
  const std::string path = temp_file("gort-cpu");
  gort::run(
      [&] {
        std::ofstream out(path, std::ios::binary);
        gort::pprof::start_cpu_profile(out, 250);
        const auto t0 = std::chrono::steady_clock::now();
        const auto budget = gort::test::kTsan ? 4s : 2s;
        while (std::chrono::steady_clock::now() - t0 < budget) {
          hot_double();
          hot_single();
        }
        gort::pprof::stop_cpu_profile();
      },
      {.procs = 1});
  ASSERT_GT(std::filesystem::file_size(path), 0u);
  const std::string top = pprof_top(path);
  const double d = flat_seconds(top, "hot_double");
  const double s = flat_seconds(top, "hot_single");
  ASSERT_GT(d, 0) << top;
  ASSERT_GT(s, 0) << top;
  // TSan defers asynchronous signals to its next interceptor (here the atomic at the end of
  // each function), so under TSan every call gets one sample whatever its length: only the
  // names can be checked there.
  if (!gort::test::kTsan) {
    EXPECT_GT(d / s, 1.3) << top;
    EXPECT_LT(d / s, 3.0) << top;
  }
  std::filesystem::remove(path);
}

namespace {
struct Node {
  gort::gc::Member<Node> left, right;
  void trace(gort::gc::Visitor& v) const {
    v.visit(left);
    v.visit(right);
  }
};

gort::gc::Ptr<Node> tree(int depth) {
  auto n = gort::gc::make<Node>();
  if (depth > 0) {
    n->left = tree(depth - 1);
    n->right = tree(depth - 1);
  }
  return n;
}
}  // namespace

// The collector's CPU is in the profile: its own thread's (not an M) under _GC, as Go
// names samples of its system threads, and the Ps' marking under the mark worker's frames
// (gc_hooks::mark_slice), as Go's is under gcBgMarkWorker.
TEST(CpuProfile, CollectorTimeIsInTheProfile) {
  if (!have_go()) GTEST_SKIP() << "golang-go (go tool pprof) is not installed";
  const std::string path = temp_file("gort-cpu-gc");
  gort::run(
      [&] {
        const gort::gc::Ptr<Node> live = tree(16);  // 65k nodes to mark in every cycle
        // Counted roots, which the collector's own thread walks in every cycle: its CPU
        // is otherwise only coordination, a few samples a second (none, once, under ASan).
        std::vector<gort::gc::Ptr<Node>> roots;
        for (int i = 0; i < 100000; ++i) roots.push_back(gort::gc::make<Node>());
        std::ofstream out(path, std::ios::binary);
        gort::pprof::start_cpu_profile(out, 250);
        const auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < 1s) gort::gc::collect();
        gort::pprof::stop_cpu_profile();
      },
      {.procs = 1});
  const std::string top = pprof_top(path);
  const double collector_thread = flat_seconds(top, "_GC");
  const double on_the_ps = top_seconds(top, "mark_slice", true);
  EXPECT_GT(collector_thread, 0) << top;
  EXPECT_GT(on_the_ps, 0) << top;
  EXPECT_GT(collector_thread + on_the_ps, 0.1) << top;
  std::filesystem::remove(path);
}

TEST(CpuProfile, LabelsAreOnSamplesAndInherited) {
  if (!have_go()) GTEST_SKIP() << "golang-go (go tool pprof) is not installed";
  const std::string path = temp_file("gort-cpu-labels");
  gort::run(
      [&] {
        std::ofstream out(path, std::ios::binary);
        gort::pprof::start_cpu_profile(out, 250);
        gort::WaitGroup wg;
        wg.add(2);
        std::atomic<bool> stop{false};
        gort::pprof::do_with_labels({{"worker", "double"}}, [&] {
          EXPECT_EQ(gort::pprof::goroutine_labels().size(), 1u);
          gort::go([&] {  // inherits worker=double
            while (!stop.load()) {
              hot_double();
              gort::yield();  // a scheduling point, so main's timer can fire
            }
            wg.done();
          });
        });
        EXPECT_TRUE(gort::pprof::goroutine_labels().empty());  // restored
        gort::go([&] {
          gort::pprof::set_goroutine_labels({{"worker", "single"}});
          while (!stop.load()) {
            hot_single();
            gort::yield();
          }
          wg.done();
        });
        gort::sleep(gort::test::kTsan ? 2s : 800ms);
        stop.store(true);
        wg.wait();
        gort::pprof::stop_cpu_profile();
      },
      {.procs = 2});
  const std::string focused = pprof_top(path, "-tagfocus=worker=double");
  EXPECT_GT(flat_seconds(focused, "hot_double"), 0) << focused;
  EXPECT_LT(flat_seconds(focused, "hot_single"), 0) << focused;
  const std::string tags = run_command(
      "HOME=${HOME:-/tmp} GOCACHE=/tmp/gort-gocache go tool pprof -tags " + path + " 2>&1");
  EXPECT_NE(tags.find("worker"), std::string::npos) << tags;
  EXPECT_NE(tags.find("single"), std::string::npos) << tags;
  std::filesystem::remove(path);
}

TEST(CpuProfile, MisuseIsAnError) {
  std::ostringstream out;
  EXPECT_THROW(gort::pprof::start_cpu_profile(out), std::runtime_error);  // not a goroutine
  gort::run([] {
    std::ostringstream a, b;
    gort::pprof::start_cpu_profile(a);
    EXPECT_THROW(gort::pprof::start_cpu_profile(b), std::logic_error);
    gort::pprof::stop_cpu_profile();
    gort::pprof::stop_cpu_profile();  // no-op
    EXPECT_GT(a.str().size(), 10u);
    EXPECT_EQ(static_cast<unsigned char>(a.str()[0]), 0x1f);  // gzip magic
    EXPECT_EQ(static_cast<unsigned char>(a.str()[1]), 0x8b);
  });
}

}  // namespace

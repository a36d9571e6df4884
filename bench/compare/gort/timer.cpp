// gort side of the timer comparison (bench/compare/run.sh); the same experiment as
// go/timer/main.go and boost_fiber/timer.cpp, using only gort's public API.
// Usage: compare_gort_timer <workload> (sleep_oversleep_p50|_p99|_max, sleep_round_ms)
// Prints exactly "RESULT <workload> <value> <unit>" on stdout; diagnostics go to stderr.
//
// Every workload is the same experiment: 100,000 goroutines on 2 Ps each sleep 1 ms ten
// times and record how much longer than 1 ms each sleep took (the oversleep). The workload
// name only chooses which statistic is reported: the p50, p99 or maximum oversleep of the
// 1,000,000 samples (us), or the wall time of the experiment / 10 (ms per sleep round).
#include <gort/gort.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr int kGoroutines = 100'000;
constexpr int kSleeps = 10;  // sleeps per goroutine
constexpr std::chrono::nanoseconds kSleepFor = 1ms;
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
    std::_Exit(1);  // not exit(): the runtime's threads are still running
  }
}

// Percentile of sorted s by nearest rank: the smallest sample with at least p% of all
// samples at or below it (the same formula in all three implementations).
std::int64_t percentile(const std::vector<std::int64_t>& s, int p) {
  return s[(s.size() * p + 99) / 100 - 1];
}

// samples[g * kSleeps + i] is goroutine g's i-th oversleep in ns. Allocated once by main;
// each goroutine writes only its own slots, so no locking. A run starts by filling it with
// -1 so a slot that was never written shows up in the check.
//
// experiment: spawn all goroutines, let each block on the release gate (started tells main
// they are all there), then open the gate and time from there until the last has finished.
// Each goroutine then loops: t0 = now; sleep 1 ms; sample = now - t0 - 1 ms.
// starts[g] is when goroutine g began its first sleep, ns after the gate opened.
Stats experiment(std::vector<std::int64_t>& samples, std::vector<std::int64_t>& starts) {
  std::fill(samples.begin(), samples.end(), -1);
  gort::WaitGroup started, release, finished;
  gort::Time start;  // set before the gate opens, read after
  started.add(kGoroutines);
  release.add(1);
  finished.add(kGoroutines);
  for (int g = 0; g < kGoroutines; ++g) {
    gort::go([&, g, slots = samples.data() + std::size_t(g) * kSleeps] {
      started.done();
      release.wait();
      for (int i = 0; i < kSleeps; ++i) {
        const gort::Time t0 = gort::now();
        if (i == 0) starts[g] = std::chrono::nanoseconds(t0 - start).count();
        gort::sleep(kSleepFor);
        slots[i] = std::chrono::nanoseconds(gort::now() - t0 - kSleepFor).count();
      }
      finished.done();
    });
  }
  started.wait();
  start = gort::now();
  release.done();
  finished.wait();
  const auto wall = gort::now() - start;

  std::vector<std::int64_t> sorted(samples);
  std::sort(sorted.begin(), sorted.end());
  std::sort(starts.begin(), starts.end());
  // Sleep must never return early: a negative sample would be a timer bug (and -1 an
  // unwritten slot).
  if (sorted.front() < 0) {
    std::fprintf(stderr, "oversleep %" PRId64 " ns\n", sorted.front());
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

}  // namespace

int main(int argc, char** argv) {
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
    return gort::run(
        [&] {
          std::vector<std::int64_t> samples(std::size_t(kGoroutines) * kSleeps);
          std::vector<std::int64_t> starts(kGoroutines);
          print(w.name, "warm-up", experiment(samples, starts));
          double v[kRounds] = {};
          for (int i = 0; i < kRounds; ++i) {
            const Stats s = experiment(samples, starts);
            char what[32];
            std::snprintf(what, sizeof what, "round %d", i);
            print(w.name, what, s);
            v[i] = s.*w.stat;
          }
          std::sort(v, v + kRounds);
          std::printf("RESULT %s %.2f %s\n", w.name, v[kRounds / 2], w.unit);
          // Where the work ran (all runs): how often goroutines parked, spread over Ps.
          for (const gort::ProcStats& p : gort::sched_stats().per_proc) {
            std::fprintf(stderr,
                         "P%d: %" PRIu64 " switches, %" PRIu64 " parks, %" PRIu64 " steals\n", p.id,
                         p.switches, p.parks, p.steals);
          }
          return 0;
        },
        gort::Options{.procs = 2});
  }
  std::fprintf(stderr, "usage: %s <workload>, one of:", argv[0]);
  for (const Workload& w : kWorkloads) std::fprintf(stderr, " %s", w.name);
  std::fprintf(stderr, "\n");
  return 2;
}

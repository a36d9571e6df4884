// liveheap, gort version (bench/compare/gc.sh; the Go side is go/gc/liveheap/main.go): the
// collector's stop-the-world pauses and the mutator's slowdown with a large live heap, a
// steady allocation rate and many parked goroutines.
//
//  1. Builds LIVE_MB MiB (default 1024) of live objects: slots of CHAIN (16) linked 64-byte
//     objects each (1 KiB per slot), reached from collected tables of 1024 Members, which
//     a std::vector<gc::Ptr<Table>> holds (Ptrs in a container are roots; Go holds a
//     []*Table).
//  2. Parks PARKED (default 100,000) goroutines, each blocked receiving from one channel,
//     so every cycle has that many stacks to scan.
//  3. Collects once (gc::collect), then, until ALLOC_MB MiB (default 8 x LIVE_MB: about 8
//     cycles at GOGC=100) have been allocated or DURATION seconds (default 300) have
//     passed, one goroutine replaces random slots with freshly built chains, flat out (the
//     old chain becomes garbage, the live heap stays the same size).
//
// Reports, on stdout, "RESULT <name> <value> <unit>" lines: pause_p50, pause_p99,
// pause_max (µs, per cycle of the steady phase), cycles (completed during the steady
// phase), allocs_per_s (objects allocated per second of the steady phase) and heap_mb
// (heap_alloc at the end); and a line "PAUSES <us> <us> ..." with every pause of the
// steady phase (gc.sh pools them over its rounds). Run once with GOGC=100 and once with GOGC=off:
// the ratio of allocs_per_s is the mutator slowdown.
//
// What goroutines see, the same probes as the Go version (compare each with GOGC=off):
// tick_p50/p99/p999/max (µs late, a goroutine sleeping until each next 1 ms tick through
// the steady phase), gap_max (µs) and gaps_over_1ms (the longest time between two passes
// of the allocating loop, ~1,000 objects each, and how many exceeded 1 ms: assists, the
// goroutine's own stack-scan stop and waits on the collector show up there), and
// cpu_ns_per_alloc (process CPU time, user+sys, over the steady phase per object: the
// collector thread's cost, which wall time does not show on an idle core). gort stops no
// goroutine for a phase change, so these, not `pause`, are the counterpart of Go's
// stop-the-world pauses as a goroutine experiences them.
//
// Per-cycle pauses: when gc::Stats has a pause_ns ring like Go's PauseNs (detected at
// compile time), the pauses of the steady phase's cycles are read from it at the end, as
// in Go. Otherwise (gc.hpp as first published has only num_gc, pause_total_ns and
// pause_max_ns) a monitor goroutine polls gc::stats() every POLL_MS ms (default 2) and
// records, whenever num_gc moved by one, the growth of pause_total_ns since the previous
// change as that cycle's pause (the cycle's total pause time, as in Go's PauseNs); if
// num_gc moved by k > 1 between two polls, the growth is split evenly over the k cycles
// and counted on stderr as "ambiguous". The monitor runs in both cases, and stderr shows
// both lists, pause_max_ns and, if Stats has it, stack_stop_max_ns.
//
// GOGC=off: nothing is ever freed, so every allocation of the steady phase would touch
// fresh memory and pay a page fault per 4 KiB, which a collected heap (reusing swept
// memory) does not. Unless PREFAULT=0, the program therefore first allocates the steady
// phase's budget once as garbage and collects it explicitly (outside the measurement),
// so the steady phase reuses memory in both modes and the GOGC=off allocations/s is the
// mutator's speed without a collector.
//
// Fairness: the same object graph as the Go version (64-byte objects: one Member and 56
// bytes of payload, as Go's one pointer and [7]uint64; chain length, table fan-out and the
// xorshift random sequence are the same) and the same loop, allocated by one goroutine.
// gort's object header, if any, is the collector's own cost, as Go's heap bitmap is Go's.
#include <gort/gc.hpp>
#include <gort/gort.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <type_traits>
#include <vector>

#include <sys/resource.h>

namespace {

namespace gc = gort::gc;
using Clock = std::chrono::steady_clock;

constexpr long kFanOut = 1024;  // slots per table
constexpr long kObjSize = 64;   // bytes per object (payload)

struct Obj {
  gc::Member<Obj> next;
  std::uint64_t pad[7] = {};  // 64 bytes in all, as Go's Obj

  Obj() = default;
  explicit Obj(const gc::Ptr<Obj>& n) : next(n) {}
  void trace(gc::Visitor& v) const { v.visit(next); }
};
static_assert(sizeof(Obj) == kObjSize);

struct Table {
  gc::Member<Obj> slot[kFanOut];
  void trace(gc::Visitor& v) const {
    for (const auto& m : slot) v.visit(m);
  }
};

long env_long(const char* name, long def) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return def;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (*end != '\0' || v < 0) {
    std::fprintf(stderr, "bad %s=\"%s\"\n", name, s);
    std::exit(2);
  }
  return v;
}

// Builds a chain of n objects; the first carries the slot number (checked at the end).
gc::Ptr<Obj> new_chain(long n, std::uint64_t slot) {
  gc::Ptr<Obj> head;
  for (long i = 0; i < n; ++i) head = gc::make<Obj>(head);
  head->pad[0] = slot;
  return head;
}

// xorshift64: the same sequence as the Go version.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  long i = static_cast<long>(std::ceil(static_cast<double>(sorted.size()) * p / 100)) - 1;
  return sorted[static_cast<std::size_t>(std::max(i, 0L))];
}

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// User+sys CPU time of the process so far, ns.
std::int64_t cpu_ns() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto ns = [](const timeval& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_usec * 1000;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

// Sleeps until each next 1 ms tick until `stop`, and fills `late` with how late (ns) it
// woke each time, sorted. Absolute deadlines, so a late tick is not coalesced; far behind
// (over 1 ms), it restarts from now rather than burst.
void ticker(const std::atomic<bool>& stop, std::vector<std::uint64_t>& late) {
  late.reserve(400'000);
  auto next = Clock::now();
  while (!stop.load()) {
    next += std::chrono::milliseconds(1);
    gort::sleep(next - Clock::now());
    const auto now = Clock::now();
    late.push_back(now > next ? static_cast<std::uint64_t>((now - next).count()) : 0);
    if (now - next > std::chrono::milliseconds(1)) next = now;
  }
  std::sort(late.begin(), late.end());
}

// Later versions of gc::Stats add Go's PauseNs ring and the longest stack-scan stop; use
// them when they are there (templates, so that the code compiles without them too).
template <class S>
concept HasPauseRing = requires(const S& s) {
  s.pause_ns[0];
};
template <class S>
concept HasStackStop = requires(const S& s) {
  s.stack_stop_max_ns;
};

// The pauses of cycles first+1 .. s.num_gc from the ring; false without one (or if the
// ring no longer holds them all).
template <class S>
bool ring_pauses(const S& s, std::uint64_t first, std::vector<std::uint64_t>* out) {
  if constexpr (HasPauseRing<S>) {
    constexpr std::uint64_t kRing = std::size(decltype(s.pause_ns){});
    if (s.num_gc - first > kRing) return false;
    for (std::uint64_t k = first + 1; k <= s.num_gc; ++k) {
      out->push_back(s.pause_ns[(k + kRing - 1) % kRing]);
    }
    return true;
  } else {
    (void)s, (void)first, (void)out;
    return false;
  }
}

template <class S>
long long stack_stop_max_ns(const S& s) {
  if constexpr (HasStackStop<S>) {
    return static_cast<long long>(s.stack_stop_max_ns);
  } else {
    (void)s;
    return -1;
  }
}

void run_benchmark() {
  const long live_mb = env_long("LIVE_MB", 1024);
  const long parked = env_long("PARKED", 100'000);
  const auto duration = std::chrono::seconds(env_long("DURATION", 300));
  const long alloc_mb = env_long("ALLOC_MB", 8 * live_mb);
  const long chain = std::max(1L, env_long("CHAIN", 16));
  const auto poll = std::chrono::milliseconds(std::max(1L, env_long("POLL_MS", 2)));
  const long slots = std::max(1L, (live_mb << 20) / (chain * kObjSize));
  const long n_tables = (slots + kFanOut - 1) / kFanOut;

  auto t0 = Clock::now();
  std::vector<gc::Ptr<Table>> tables(static_cast<std::size_t>(n_tables));
  for (auto& t : tables) t = gc::make<Table>();
  for (long s = 0; s < slots; ++s) {
    tables[static_cast<std::size_t>(s / kFanOut)]->slot[s % kFanOut] =
        new_chain(chain, static_cast<std::uint64_t>(s));
  }
  std::fprintf(stderr, "built %ld slots x %ld objects (%ld MiB) in %.3f s\n", slots, chain,
               (slots * chain * kObjSize) >> 20, secs(Clock::now() - t0));

  auto release = gort::make_chan<int>();
  gort::WaitGroup started, done;
  started.add(parked);
  done.add(parked);
  for (long i = 0; i < parked; ++i) {
    gort::go([release, &started, &done] {
      started.done();
      (void)release.recv();
      done.done();
    });
  }
  started.wait();
  const std::uint64_t budget = (static_cast<std::uint64_t>(alloc_mb) << 20) / kObjSize;
  if (const int prev = gc::set_percent(-1); prev >= 0) {
    gc::set_percent(prev);
  } else if (env_long("PREFAULT", 1) != 0) {
    const auto t = Clock::now();
    for (std::uint64_t n = 0; n < budget; n += static_cast<std::uint64_t>(chain)) {
      gc::Ptr<Obj> garbage = new_chain(chain, 0);
    }
    std::fprintf(stderr, "GOGC=off: pre-faulted %ld MiB in %.3f s\n", alloc_mb,
                 secs(Clock::now() - t));
  }
  gc::collect();

  // The monitor: per-cycle pauses from the growth of pause_total_ns (see the top).
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> pauses;
  std::uint64_t ambiguous = 0;
  gort::WaitGroup monitor;
  monitor.add(1);
  const gc::Stats before = gc::stats();
  gort::go([&] {
    gc::Stats last = before;
    for (;;) {
      const bool last_round = stop.load();
      const gc::Stats s = gc::stats();
      if (s.num_gc != last.num_gc) {
        const std::uint64_t k = s.num_gc - last.num_gc;
        const std::uint64_t d = s.pause_total_ns - last.pause_total_ns;
        if (k > 1) ambiguous += k;
        for (std::uint64_t i = 0; i < k; ++i) pauses.push_back(d / k);
        last = s;
      }
      if (last_round) break;
      gort::sleep(poll);
    }
    monitor.done();
  });

  std::atomic<bool> stop_ticker{false};
  std::vector<std::uint64_t> late;
  gort::WaitGroup ticker_done;
  ticker_done.add(1);
  gort::go([&] {
    ticker(stop_ticker, late);
    ticker_done.done();
  });

  static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>);
  Rng r{88172645463325252ULL};
  std::uint64_t allocs = 0;
  Clock::duration gap_max{};
  long gaps_over_1ms = 0;
  const std::int64_t cpu0 = cpu_ns();
  const auto start = Clock::now();
  const auto deadline = start + duration;
  auto last = start;
  while (allocs < budget) {
    for (int k = 0; k < 64; ++k) {
      const auto s = static_cast<long>(r.next() % static_cast<std::uint64_t>(slots));
      tables[static_cast<std::size_t>(s / kFanOut)]->slot[s % kFanOut] =
          new_chain(chain, static_cast<std::uint64_t>(s));
    }
    allocs += static_cast<std::uint64_t>(64 * chain);
    const auto now = Clock::now();
    gap_max = std::max(gap_max, now - last);
    if (now - last > std::chrono::milliseconds(1)) ++gaps_over_1ms;
    last = now;
    if (now > deadline) break;
  }
  const double elapsed = secs(Clock::now() - start);
  const double cpu_per_alloc = static_cast<double>(cpu_ns() - cpu0) / static_cast<double>(allocs);
  stop_ticker.store(true);
  ticker_done.wait();
  if (allocs < budget) {
    std::fprintf(stderr, "DURATION reached after %" PRIu64 " of %ld MiB\n",
                 (allocs * kObjSize) >> 20, alloc_mb);
  }
  stop.store(true);
  monitor.wait();
  const gc::Stats after = gc::stats();
  const std::uint64_t cycles = after.num_gc - before.num_gc;
  std::vector<std::uint64_t> ring;
  const bool from_ring = ring_pauses(after, before.num_gc, &ring);
  std::sort(pauses.begin(), pauses.end());
  std::sort(ring.begin(), ring.end());

  for (long s = 0; s < slots; s += 4099) {
    if (tables[static_cast<std::size_t>(s / kFanOut)]->slot[s % kFanOut]->pad[0] !=
        static_cast<std::uint64_t>(s)) {
      std::fprintf(stderr, "slot %ld corrupt\n", s);
      std::exit(1);
    }
  }
  release.close();
  done.wait();

  std::fprintf(stderr,
               "steady phase: %.3f s, %" PRIu64 " objects, %" PRIu64
               " cycles, stats pause_max_ns %" PRIu64
               ", stack_stop_max_ns %lld (-1: not in Stats)\n",
               elapsed, allocs, cycles, after.pause_max_ns, stack_stop_max_ns(after));
  std::fprintf(stderr, "polled pauses (%" PRIu64 " ambiguous), us:", ambiguous);
  for (std::uint64_t p : pauses) std::fprintf(stderr, " %.1f", static_cast<double>(p) / 1e3);
  std::fprintf(stderr, "\n");
  if (from_ring) {
    std::fprintf(stderr, "pause_ns ring, us:");
    for (std::uint64_t p : ring) std::fprintf(stderr, " %.1f", static_cast<double>(p) / 1e3);
    std::fprintf(stderr, "\n");
    pauses = ring;
  }
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  std::printf("PAUSES");
  for (std::uint64_t p : pauses) std::printf(" %.1f", us(p));
  std::printf("\n");
  std::printf("RESULT pause_p50 %.1f us\n", us(percentile(pauses, 50)));
  std::printf("RESULT pause_p99 %.1f us\n", us(percentile(pauses, 99)));
  std::printf("RESULT pause_max %.1f us\n", us(percentile(pauses, 100)));
  std::printf("RESULT cycles %" PRIu64 " cycles\n", cycles);
  std::printf("RESULT allocs_per_s %.0f objects/s\n", static_cast<double>(allocs) / elapsed);
  std::printf("RESULT heap_mb %" PRIu64 " MiB\n", after.heap_alloc >> 20);
  std::printf("RESULT tick_p50 %.1f us\n", us(percentile(late, 50)));
  std::printf("RESULT tick_p99 %.1f us\n", us(percentile(late, 99)));
  std::printf("RESULT tick_p999 %.1f us\n", us(percentile(late, 99.9)));
  std::printf("RESULT tick_max %.1f us\n", us(percentile(late, 100)));
  std::printf("RESULT ticks %zu ticks\n", late.size());
  std::printf("RESULT gap_max %.1f us\n", us(static_cast<std::uint64_t>(gap_max.count())));
  std::printf("RESULT gaps_over_1ms %ld gaps\n", gaps_over_1ms);
  std::printf("RESULT cpu_ns_per_alloc %.1f ns\n", cpu_per_alloc);
}

}  // namespace

int main() {
  return gort::run([] { run_benchmark(); });
}

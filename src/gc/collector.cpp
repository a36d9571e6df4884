// The collection cycle, the pacer, gctrace and the public API (Go's mgc.go and
// mgcpacer.go). docs/design/gc.md explains the whole design.
//
// One background thread (the collector) runs each cycle:
//   1. sweep termination: finish sweeping the previous cycle (every mark bit is clear);
//   2. mark start: phase = mark, then a handshake (mutator.cpp): from now on every
//      barrier shades and every allocation is black;
//   3. concurrent mark: grey the counted roots and finalizer referents, scan each
//      goroutine's stack once, drain grey objects (the Ps do, worker.cpp, with the
//      collector coordinating); allocating goroutines help (assists);
//   4. mark termination: when no grey object is left anywhere and every stack is scanned,
//      a handshake confirms that no barrier is still publishing work (if one was, back to
//      3); then the sweep generation and the cache epoch move, phase = off, and a last
//      handshake; caches are flushed;
//   5. sweep, in the background, concurrently with the program.
// Go stops the world for 2 and 4; here the handshakes take their place and no goroutine
// is stopped (only a running goroutine is stopped for the moment its own stack is
// scanned). A handshake has two parts (mutator.cpp): publishing the phase (a membarrier:
// every running thread takes an interrupt) and waiting for the busy sections that were
// running to end, which no thread waits for but the collector. After the last one the
// collector also flushes every allocation cache, a ragged barrier like Go's
// forEachP(prepareForSweep) after the world restarts. The pauses reported (stats().pause_*;
// gctrace's clock fields are the whole phase changes) are the phase publications, the
// only steps that interrupt running goroutines. The waits and the flush are reported apart
// (stats().handshake_wait_*): a thread descheduled by the OS inside a section, or the
// collector waiting for a cache its owner is refilling, can take milliseconds, which
// delays the collector, not the program.
//
// Pacer (Go 1.18's): heap goal = marked + (marked + scanned stack bytes) * GOGC / 100, at
// least 4 MiB * GOGC / 100, capped by the soft memory limit (GOMEMLIMIT), which leaves
// at least 1/16 of the live heap as runway so that a limit below the live heap does not
// make cycles run back to back. A cycle starts when the live heap passes 7/10 of the way
// from the marked heap to the goal (Go's trigger lies between 0.7 and 0.95 of the
// runway). Assists: each byte allocated while marking obliges its goroutine to scan
// (expected scan work) / (goal - live at mark start) bytes.
//
// Background marking keeps to Go's budget, 25% of GOMAXPROCS plus any idle P. With a
// runtime attached the Ps do it, between goroutines (worker.cpp), and the collector
// coordinates; without one (or with GODEBUG=gcworkers=0) the collector marks itself within
// the same budget (BackgroundBudget, below).
#include <time.h>

#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "base/fatal.hpp"
#include "gc/heapprof.hpp"
#include "gc/internal.hpp"
#include "gort/runtime.hpp"
#include "os/os.hpp"
#include "runtime/gc_hooks.hpp"
#include "runtime/mprof.hpp"
#include "runtime/sched.hpp"
#include "trace/hooks.hpp"

namespace gort::gc::detail {

std::atomic<std::int64_t> g_stack_bytes{0};
std::atomic<bool> g_assists_closed{false};

namespace {

constexpr std::int64_t kMinHeap = 4 << 20;
constexpr double kTriggerRatio = 0.7;

struct Pacer {
  std::atomic<int> percent{100};
  std::atomic<std::int64_t> limit{INT64_MAX};
  std::atomic<std::int64_t> trigger{kMinHeap * 7 / 10};
  std::atomic<std::int64_t> goal{kMinHeap};
  std::atomic<std::int64_t> marked{0};  // live heap found by the last cycle
  // The scan work this cycle is expected to need (the last cycle's marked bytes), for the
  // assists' rate.
  std::atomic<std::int64_t> expected_scan{1 << 20};
};
Pacer g_pacer;

// Cycle bookkeeping; guarded by g_mu() unless atomic.
// Never destroyed (threads wait on them until the process ends, and destroying a
// condition variable with waiters blocks exit).
std::mutex& g_mu() {
  static auto* v = new std::mutex();
  return *v;
}
std::condition_variable& g_wake() {  // the collector waits for work
  static auto* v = new std::condition_variable();
  return *v;
}
std::condition_variable& g_done() {  // collect() waits for cycles
  static auto* v = new std::condition_variable();
  return *v;
}
std::uint64_t g_forced_wanted = 0;  // collect() asked for a cycle that starts after it
bool g_triggered = false;
std::uint64_t g_started = 0, g_finished = 0;  // cycles (finished: marked and swept)
std::atomic<bool> g_running{false};           // a cycle is marking or sweeping
std::thread::id g_collector_id;

// Statistics; guarded by g_mu().
Stats g_stats;
std::int64_t g_gc_cpu_ns = 0;
std::atomic<std::int64_t> g_assist_ns{0};
std::atomic<std::uint64_t> g_stop_max_ns{0};
const std::int64_t g_start_ns = os::nanotime();
bool g_gctrace = false;

std::once_flag g_started_once;

}  // namespace

bool godebug_has(const char* setting) {
  const char* dbg = std::getenv("GODEBUG");
  if (dbg == nullptr) return false;
  const std::string d = std::string(",") + dbg + ",";
  return d.find(std::string(",") + setting + ",") != std::string::npos;
}

namespace {

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t parse_bytes(const char* s) {
  if (std::strcmp(s, "off") == 0) return INT64_MAX;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || v < 0) return -1;
  const std::string unit(end);
  double mult = 1;
  if (unit == "KiB")
    mult = 1024.0;
  else if (unit == "MiB")
    mult = 1024.0 * 1024;
  else if (unit == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "TiB")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit != "" && unit != "B")
    return -1;
  return static_cast<std::int64_t>(v * mult);
}

void read_environment() {
  if (const char* gogc = std::getenv("GOGC")) {
    if (std::strcmp(gogc, "off") == 0) {
      g_pacer.percent.store(-1);
    } else {
      char* end = nullptr;
      const long v = std::strtol(gogc, &end, 10);
      if (end != gogc && *end == '\0') g_pacer.percent.store(static_cast<int>(v < 0 ? -1 : v));
    }
  }
  if (const char* lim = std::getenv("GOMEMLIMIT")) {
    const std::int64_t v = parse_bytes(lim);
    if (v > 0) g_pacer.limit.store(v);
  }
  g_gctrace = godebug_has("gctrace=1") || godebug_has("gctrace=2");
}

// Sets goal and trigger from the marked heap and the scanned stack and root bytes (Go's
// gcControllerState.commit; Go 1.18's goal counts stacks and globals).
void compute_goal(std::int64_t marked, std::int64_t stack_bytes) {
  const int percent = g_pacer.percent.load();
  std::int64_t goal = INT64_MAX;
  if (percent >= 0) {
    goal = marked + (marked + stack_bytes) * percent / 100;
    goal = std::max<std::int64_t>(goal, kMinHeap * percent / 100);
  }
  const std::int64_t limit = g_pacer.limit.load();
  if (limit != INT64_MAX) {
    const std::int64_t floor = marked + marked / 16 + (1 << 20);
    goal = std::min(goal, std::max(limit - limit / 20, floor));
  }
  g_pacer.goal.store(goal);
  g_pacer.marked.store(marked);
  g_pacer.trigger.store(
      goal == INT64_MAX
          ? INT64_MAX
          : marked + static_cast<std::int64_t>(static_cast<double>(goal - marked) * kTriggerRatio));
}

// Go's fmtNSAsMS: whole milliseconds from 10 ms up, else two significant digits with at
// most three decimals.
std::string ms_text(std::int64_t ns) {
  char b[32];
  if (ns >= 10'000'000) {
    std::snprintf(b, sizeof b, "%" PRId64, ns / 1'000'000);
    return b;
  }
  std::int64_t x = ns / 1000;
  if (x <= 0) return "0";
  int dec = 3;
  while (x >= 100) {
    x /= 10;
    --dec;
  }
  std::int64_t scale = 1;
  for (int i = 0; i < dec; ++i) scale *= 10;
  if (dec == 0) {
    std::snprintf(b, sizeof b, "%" PRId64, x);
  } else {
    std::snprintf(b, sizeof b, "%" PRId64 ".%0*" PRId64, x / scale, dec, x % scale);
  }
  return b;
}

int current_procs() {
  return runtime::gc_hooks::attached_procs();  // not gort::gomaxprocs(): run() may be ending
}

struct CycleTimes {
  std::int64_t sweep_term = 0, mark = 0, mark_term = 0, end = 0;  // wall clock
  std::int64_t mark_cpu = 0, assist = 0;  // the collector's CPU in the mark phase; assists
  std::int64_t fractional = 0, idle = 0;  // workers on the Ps (worker.cpp)
  std::int64_t heap0 = 0, heap1 = 0, heap2 = 0, goal = 0, stacks = 0, globals = 0;
  bool forced = false;
};

void print_gctrace(std::uint64_t n, const CycleTimes& t, int util) {
  const std::int64_t since = t.sweep_term - g_start_ns;
  char line[512];
  std::snprintf(line, sizeof line,
                "gc %" PRIu64 " @%" PRId64
                ".%03d"
                "s %d%%: %s+%s+%s ms clock, %s+%s/%s/%s+%s ms cpu, "
                "%" PRId64 "->%" PRId64 "->%" PRId64 " MB, %" PRId64 " MB goal, %" PRId64
                " MB stacks, %" PRId64 " MB globals, %d P%s\n",
                n, since / 1'000'000'000, static_cast<int>((since / 1'000'000) % 1000), util,
                ms_text(t.mark - t.sweep_term).c_str(), ms_text(t.mark_term - t.mark).c_str(),
                ms_text(t.end - t.mark_term).c_str(), ms_text(t.mark - t.sweep_term).c_str(),
                ms_text(t.assist).c_str(), ms_text(t.mark_cpu + t.fractional).c_str(),
                ms_text(t.idle).c_str(), ms_text(t.end - t.mark_term).c_str(), t.heap0 >> 20,
                t.heap1 >> 20, t.heap2 >> 20, t.goal >> 20, t.stacks >> 20, t.globals >> 20,
                current_procs(), t.forced ? " (forced)" : "");
  std::fputs(line, stderr);
}

std::int64_t mutator_marked_bytes() {
  std::int64_t sum = exited_marked_bytes();
  for_each_mutator(
      [&sum](MutatorState& ms) { sum += ms.marked_bytes.exchange(0, std::memory_order_relaxed); });
  return sum;
}

// The termination look, once assists are closed and every busy section has ended: no
// grey anywhere, every stack scanned, and nothing its scan or a final drain turned up.
bool no_work_left(Marker& mk, std::int64_t* stack_bytes) {
  if (collect_mutator_greys() || have_full_bufs()) return false;
  if (!scan_goroutine_stacks(mk, stack_bytes)) return false;
  mk.drain(INT64_MAX);
  mk.flush();
  return !have_full_bufs();
}

// Go's background utilization (mgcpacer.go): while marking, 25% of GOMAXPROCS works in
// the background (dedicated and fractional workers), and so does every idle P (idle
// workers). When the collector marks itself (no workers on the Ps, mark_until_done), it
// keeps to the same budget as one thread: while a P of the
// attached runtime is idle it marks flat out (what Go's idle worker does on that P);
// while every P is busy it keeps its CPU time within a quarter of the Ps' time since it
// last saw one idle, sleeping between slices of work, and allocating goroutines do the
// rest through assists. Without a runtime (a heap used by plain threads) it marks flat out.
class BackgroundBudget {
 public:
  // After a slice of marking: sleeps if the collector is over its budget.
  void pace(Marker& mk) {
    if (runtime::gc_hooks::attached_idle_procs() != 0) {  // an idle P, or no runtime
      restart();
      return;
    }
    const double quota = kBackgroundUtilization * runtime::gc_hooks::attached_procs();
    const auto allowed = static_cast<std::int64_t>(quota * (os::nanotime() - wall0_));
    const std::int64_t over = thread_cpu_ns() - cpu0_ - allowed;
    if (over <= 0) return;
    mk.flush();  // the collector's greys, for assists to take meanwhile
    const auto sleep_ns = static_cast<std::int64_t>(static_cast<double>(over) / quota);
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(sleep_ns, kMaxSleepNs)));
  }

 private:
  static constexpr std::int64_t kMaxSleepNs = 2'000'000;
  void restart() {
    wall0_ = os::nanotime();
    cpu0_ = thread_cpu_ns();
  }
  std::int64_t wall0_ = os::nanotime();
  std::int64_t cpu0_ = thread_cpu_ns();
};

// Drains grey objects within the background budget, until none is left.
void drain_paced(Marker& mk, BackgroundBudget& budget) {
  constexpr std::int64_t kSlice = 256 << 10;  // bytes scanned between budget checks
  while (mk.drain(kSlice) >= kSlice) budget.pace(mk);
}

// One round of the coordinator while the Ps mark (worker.cpp): queues the collector's and
// the mutators' greys for the workers, wakes an M for an idle P, and waits until a worker
// runs out of work or kWorkerWaitNs passes. It marks a slice itself only when the Ps do
// not: no slice started on any P for kFallbackNs while work waits (every P runs a
// goroutine that never reaches the scheduler, or the woken M did not get a CPU); and then
// within the background budget that fractional workers share, or flat out while a P is
// idle. (Marking small amounts itself instead of waking an M, tried to save context
// switches, made it mark most of a tree: each of its slices publishes half of its work,
// which it then took back as the next small amount.)
constexpr std::int64_t kWorkerWaitNs = 1'000'000;
constexpr std::int64_t kWorkerFallbackNs = 2'000'000;

void help_workers(Marker& mk, std::uint32_t kicks) {
  constexpr std::int64_t kSelfSlice = 64 << 10;
  mk.flush();
  collect_mutator_greys();
  if (!have_full_bufs() && !stack_jobs_left()) return;
  wake_idle_mark_worker();
  // An idle P that nobody marks on (or a runtime gone): flat out, as BackgroundBudget.
  const bool may_mark =
      runtime::gc_hooks::attached_idle_procs() != 0 || background_over_budget_ns(1000) < 0;
  if (may_mark && ns_since_last_worker_slice() >= kWorkerFallbackNs) {
    const std::int64_t cpu0 = thread_cpu_ns();
    mk.drain(kSelfSlice);
    mk.flush();
    note_collector_marking(thread_cpu_ns() - cpu0);
    return;
  }
  wait_for_worker_kick(kicks, kWorkerWaitNs);
}

// Step 3: marks until no work is left; returns the collector's marker totals, and the
// stack and root bytes it scanned. With workers, the Ps drain and the collector
// coordinates (help_workers); without (no runtime, or GODEBUG=gcworkers=0), it drains
// itself within BackgroundBudget.
void mark_until_done(Marker& mk, bool workers, std::int64_t* stack_bytes,
                     std::int64_t* root_bytes) {
  BackgroundBudget budget;
  *root_bytes = mark_counted_roots(mk);
  mark_finalizer_referents(mk);
  // Once every stack is scanned, later rounds skip the walk over all goroutines (with
  // 100,000 of them, half a millisecond per round, and the coordinator's rounds are ~1 ms
  // apart); goroutines created meanwhile scan themselves when they first run, and the
  // termination check walks them all again.
  bool stacks_done = false;
  for (;;) {
    // Also between rounds: stack scans and retries cost CPU too.
    if (!workers) budget.pace(mk);
    const std::uint32_t kicks = worker_kicks();
    if (workers && stack_jobs_left() && ns_since_last_worker_slice() >= kWorkerFallbackNs)
      take_remaining_stack_jobs();  // no P marks: scan them here
    // With workers, the Ps scan the stopped goroutines first (stack-scan jobs); this pass
    // then stops the running ones and retries what changed under a worker's scan.
    if (!stacks_done && !(workers && stack_jobs_left()))
      stacks_done = scan_goroutine_stacks(mk, stack_bytes);
    if (workers) {
      help_workers(mk, kicks);
    } else {
      drain_paced(mk, budget);
    }
    mk.flush();
    if (collect_mutator_greys() || have_full_bufs()) continue;
    if (workers && active_mark_slices() != 0) {
      // Slices in flight hold greys of their own: wait for the last one out rather than
      // close assists on them (the check below would then drain it all here).
      wait_for_worker_kick(kicks, kWorkerWaitNs);
      continue;
    }
    if (!stacks_done) {
      // A goroutine could not be stopped (it was switching, or inside a busy section: it
      // scans itself when that ends). Give it a moment.
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      continue;
    }
    // Nothing visible is left. A barrier may still be between greying an object and
    // publishing it, and an assist may hold work it took: close assists to new work, wait
    // for every busy section (after it, no assist holds work and none can take any), then
    // look again. If work turns up, reopen them and go on marking.
    g_assists_closed.store(true);
    handshake();
    if (no_work_left(mk, stack_bytes)) return;
    g_assists_closed.store(false);
    stacks_done = false;
  }
}

void run_cycle(bool forced) {
  CycleTimes t;
  t.forced = forced;
  t.sweep_term = os::nanotime();
  const std::int64_t cpu0 = thread_cpu_ns();
  trace::detail::gc_phase_begin("sweep termination");
  finish_sweep();
  trace::detail::gc_phase_end("sweep termination");
  t.heap0 = heap().live_bytes.load();
  const std::uint32_t cycle = g_cycle.load() + 1;
  g_cycle.store(cycle);
  g_stack_bytes.store(0);
  mutator_marked_bytes();  // discard stale counts
  const std::int64_t goal = g_pacer.goal.load();
  t.goal = goal;
  g_pacer.expected_scan.store(std::max<std::int64_t>(g_pacer.marked.load(), 1 << 20));
  g_scan_work.store(0);
  g_background_credit.store(0);
  const std::int64_t assist_ns0 = g_assist_ns.load();

  g_mark_sweepgen.store(heap().pages.sweepgen());
  g_assists_closed.store(false);
  // The pause: from the phase store to the membarrier's return (see the top of the file).
  trace::detail::stw_begin("mark start");
  const std::int64_t h0 = os::nanotime();
  g_phase.store(kMark);
  runtime::gc_hooks::g_scan_cycle.store(cycle);
  publish_phase();
  const std::int64_t h1 = os::nanotime();
  trace::detail::stw_end("mark start");
  trace::detail::gc_phase_begin("mark start: wait for busy sections");
  wait_for_sections();
  trace::detail::gc_phase_end("mark start: wait for busy sections");
  t.mark = os::nanotime();
  const std::int64_t pause1 = h1 - h0;
  const std::int64_t wait1 = t.mark - h1;

  const std::int64_t mark_cpu0 = thread_cpu_ns();
  Marker mk;
  std::int64_t stack_bytes = 0;
  trace::detail::gc_phase_begin("mark");
  std::int64_t root_bytes = 0;
  const bool workers = mark_workers_enabled();
  if (workers) {
    prepare_stack_jobs();
    start_mark_workers(current_procs());
  }
  mark_until_done(mk, workers, &stack_bytes, &root_bytes);
  const MarkWorkerTotals on_ps = workers ? stop_mark_workers() : MarkWorkerTotals{};
  t.fractional = on_ps.fractional_ns;
  t.idle = on_ps.idle_ns;
  trace::detail::gc_phase_end("mark");
  prune_roots();
  t.mark_term = os::nanotime();
  t.mark_cpu = thread_cpu_ns() - mark_cpu0;
  t.heap1 = heap().live_bytes.load();

  heap_profile_next_cycle();  // before any sweep of this cycle records a free
  heap().pages.next_sweepgen();
  g_cache_epoch.fetch_add(1);
  runtime::gc_hooks::g_scan_cycle.store(0);
  trace::detail::stw_begin("mark termination");
  const std::int64_t h_off = os::nanotime();
  g_phase.store(kOff);
  publish_phase();
  const std::int64_t h2 = os::nanotime();
  trace::detail::stw_end("mark termination");
  trace::detail::gc_phase_begin("mark termination: wait for busy sections");
  wait_for_sections();
  trace::detail::gc_phase_end("mark termination: wait for busy sections");
  // Every cache still holds spans of the finished generation: their owners flush them at
  // their next refill (the epoch moved), and this collects the idle ones and the black
  // bytes. It takes each cache's lock in turn, waiting for an owner that is refilling;
  // an owner that wants its lock meanwhile waits for one cache's flush at most. Not part
  // of the pause, as Go's forEachP(prepareForSweep) after the world restarts.
  trace::detail::gc_phase_begin("mark termination: flush caches");
  const std::int64_t black = flush_all_caches();
  trace::detail::gc_phase_end("mark termination: flush caches");
  t.end = os::nanotime();
  const std::int64_t pause2 = h2 - h_off;
  const std::int64_t wait2 = t.end - h2;

  const std::int64_t marked = mk.marked_bytes + mutator_marked_bytes() + black;
  stack_bytes += g_stack_bytes.load();
  heap().live_bytes.store(marked);
  t.heap2 = marked;
  t.stacks = stack_bytes;
  t.globals = root_bytes;
  // Assists add their time when they end, some after the phase: those count in the next
  // cycle (resetting the total here would lose them).
  t.assist = g_assist_ns.load() - assist_ns0;
  compute_goal(marked, stack_bytes + root_bytes);

  // Go's GC CPU: the collector, assists and fractional marking; idle marking is not.
  const std::int64_t cpu = thread_cpu_ns() - cpu0 + t.assist + t.fractional;
  int util = 0;
  {
    std::lock_guard l(g_mu());
    g_gc_cpu_ns += cpu;
    const std::uint64_t n = ++g_stats.num_gc;
    if (forced) ++g_stats.num_forced_gc;
    const auto pause = static_cast<std::uint64_t>(pause1 + pause2);
    g_stats.pause_total_ns += pause;
    g_stats.pause_max_ns = std::max(g_stats.pause_max_ns, pause);
    g_stats.pause_ns[(n + 255) % 256] = pause;
    const auto wait = static_cast<std::uint64_t>(wait1 + wait2);
    g_stats.handshake_wait_total_ns += wait;
    g_stats.handshake_wait_max_ns = std::max(g_stats.handshake_wait_max_ns, wait);
    g_stats.mark_ns += static_cast<std::uint64_t>(t.mark_term - t.mark);
    g_stats.mark_background_cpu_ns += static_cast<std::uint64_t>(t.mark_cpu + t.fractional);
    g_stats.mark_fractional_ns += static_cast<std::uint64_t>(t.fractional);
    g_stats.mark_idle_ns += static_cast<std::uint64_t>(t.idle);
    g_stats.mark_assist_ns += static_cast<std::uint64_t>(t.assist);
    timespec rt{};
    clock_gettime(CLOCK_REALTIME, &rt);
    g_stats.last_gc_ns = static_cast<std::uint64_t>(rt.tv_sec) * 1'000'000'000 +
                         static_cast<std::uint64_t>(rt.tv_nsec);
    const double elapsed = static_cast<double>(os::nanotime() - g_start_ns) * current_procs();
    g_stats.gc_cpu_fraction = elapsed > 0 ? static_cast<double>(g_gc_cpu_ns) / elapsed : 0;
    util = static_cast<int>(g_stats.gc_cpu_fraction * 100);
  }
  if (g_gctrace) print_gctrace(g_stats.num_gc, t, util);
}

// Go's background scavenger: free pages beyond 10% over the heap goal (the heap will grow
// back to the goal before the next cycle; releasing below it only makes the program fault
// them in again) go back to the OS once they have been free for a while.
void scavenge_beyond_goal() {
  const PageHeap& pages = heap().pages;
  const std::int64_t goal = std::min<std::int64_t>(g_pacer.goal.load(), INT64_MAX / 2);
  const auto free_bytes =
      static_cast<std::int64_t>(pages.sys_bytes() - pages.released_bytes() - pages.inuse_bytes());
  const std::int64_t retain =
      std::max<std::int64_t>(goal + goal / 10 - static_cast<std::int64_t>(pages.inuse_bytes()), 0);
  if (free_bytes > retain) heap().pages.scavenge(static_cast<std::size_t>(free_bytes - retain));
}

bool cycle_wanted() {
  return g_triggered || g_forced_wanted > g_started;
}

[[noreturn]] void collector_main() {
  runtime::cpu_profile_gc_thread_start();
  for (;;) {
    bool forced;
    {
      std::unique_lock l(g_mu());
      while (!cycle_wanted()) {
        if (g_wake().wait_for(l, std::chrono::seconds(1)) == std::cv_status::timeout) {
          l.unlock();
          scavenge_beyond_goal();
          l.lock();
        }
      }
      forced = g_forced_wanted > g_started;
      g_triggered = false;
      ++g_started;
      g_running.store(true);
    }
    run_cycle(forced);
    trace::detail::gc_phase_begin("sweep");
    while (sweep_one()) {
    }
    heap_profile_swept();
    trace::detail::gc_phase_end("sweep");
    {
      std::lock_guard l(g_mu());
      ++g_finished;
      g_running.store(false);
    }
    g_done().notify_all();
  }
}

void ensure_started() {
  std::call_once(g_started_once, [] {
    read_environment();
    compute_goal(0, 0);
    std::thread t(collector_main);
    g_collector_id = t.get_id();
    t.detach();
  });
}

}  // namespace

void maybe_trigger(std::int64_t live_bytes) {
  ensure_started();
  if (live_bytes < g_pacer.trigger.load(std::memory_order_relaxed)) return;
  if (g_running.load(std::memory_order_relaxed)) return;
  {
    std::lock_guard l(g_mu());
    if (g_running.load() || g_triggered) return;
    g_triggered = true;
  }
  g_wake().notify_one();
}

namespace {

bool past_goal_unmarked() {
  return heap().live_bytes.load(std::memory_order_relaxed) >
             g_pacer.goal.load(std::memory_order_relaxed) &&
         current_phase() != kMark;
}

}  // namespace

void wait_for_marking_past_goal() {
  if (!past_goal_unmarked()) return;
  if (std::this_thread::get_id() == g_collector_id)
    return;  // a destructor: it would wait for itself
  const std::int64_t t0 = os::nanotime();
  for (int waits = 0; waits < 5000 && past_goal_unmarked(); ++waits) {
    maybe_trigger(heap().live_bytes.load(std::memory_order_relaxed));
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  g_assist_ns.fetch_add(os::nanotime() - t0, std::memory_order_relaxed);
}

void note_stack_stop(std::int64_t ns) {
  std::uint64_t prev = g_stop_max_ns.load(std::memory_order_relaxed);
  const auto v = static_cast<std::uint64_t>(ns);
  while (v > prev && !g_stop_max_ns.compare_exchange_weak(prev, v, std::memory_order_relaxed)) {
  }
}

double assist_work_per_byte(std::int64_t expected, std::int64_t done, std::int64_t goal,
                            std::int64_t live) {
  goal = std::min<std::int64_t>(goal, INT64_MAX / 2);
  if (done >= expected) {
    expected = std::max(live, done + (64 << 10));
    goal += goal / 10;
  }
  const std::int64_t work_left = expected - done;
  const std::int64_t heap_left = std::max<std::int64_t>(goal - live, 64 << 10);
  return static_cast<double>(work_left) / static_cast<double>(heap_left);
}

std::int64_t spend_background_credit(std::int64_t want) {
  std::int64_t credit = g_background_credit.load(std::memory_order_relaxed);
  while (credit > 0 && want > 0) {
    const std::int64_t take = std::min(credit, want);
    if (g_background_credit.compare_exchange_weak(credit, credit - take, std::memory_order_relaxed))
      return take;
  }
  return 0;
}

void assist(MutatorState* ms) {
  const std::int64_t debt = ms->assist_debt;
  ms->assist_debt = 0;
  const std::int64_t t0 = os::nanotime();
  // The collector may be waiting for this goroutine's stack: scan it now.
  runtime::M* m = runtime::current_m();
  if (m != nullptr && m->curg != nullptr) runtime::gc_hooks::resumed(m->curg);
  // Marks in slices of 64 KiB of scanning, each in its own busy section: the phase cannot
  // end while this goroutine marks (mutator.cpp), and a handshake waits one slice at most.
  auto help = [ms](std::int64_t budget) {
    for (;;) {
      Busy busy(ms);
      if (current_phase() != kMark) return false;
      if (g_assists_closed.load()) return true;  // the collector is finishing: no new work
      Marker mk;
      mk.earns_credit = false;
      const std::int64_t done = mk.drain(std::min<std::int64_t>(budget, 64 << 10));
      ms->marked_bytes.fetch_add(mk.marked_bytes, std::memory_order_relaxed);
      budget -= done;
      if (budget <= 0 || done == 0) return true;
    }
  };
  // What the debt costs at the current rate, less the background's unspent credit (Go's
  // gcAssistAlloc steals bgScanCredit first).
  const double rate = assist_work_per_byte(g_pacer.expected_scan.load(std::memory_order_relaxed),
                                           g_scan_work.load(std::memory_order_relaxed),
                                           g_pacer.goal.load(std::memory_order_relaxed),
                                           heap().live_bytes.load(std::memory_order_relaxed));
  std::int64_t owed = static_cast<std::int64_t>(static_cast<double>(debt) * rate);
  owed -= spend_background_credit(owed);
  bool marking = owed <= 0 || help(owed);
  // Past the goal (a soft memory limit, or a collector that fell behind): wait for the
  // cycle, helping with whatever work appears, as Go parks over-allocating goroutines on
  // its assist queue. Bounded (100 ms), so that a stalled collector cannot stall the
  // program.
  for (int waits = 0; marking && waits < 5000 &&
                      heap().live_bytes.load(std::memory_order_relaxed) >
                          g_pacer.goal.load(std::memory_order_relaxed);
       ++waits) {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    marking = help(1 << 20);
  }
  g_assist_ns.fetch_add(os::nanotime() - t0, std::memory_order_relaxed);
}

}  // namespace gort::gc::detail

namespace gort::gc {

using namespace detail;

void collect() {
  ensure_started();
  if (std::this_thread::get_id() == g_collector_id)
    base::fatal("gc::collect called from a destructor (on the collector's thread)");
  gort::blocking([] {
    std::unique_lock l(g_mu());
    // A cycle that starts after this call, marked and swept.
    const std::uint64_t target = g_started + 1;
    g_forced_wanted = std::max(g_forced_wanted, target);
    g_wake().notify_one();
    g_done().wait(l, [target] { return g_finished >= target; });
  });
}

int set_percent(int percent) {
  ensure_started();
  const int old = g_pacer.percent.exchange(percent < 0 ? -1 : percent);
  compute_goal(g_pacer.marked.load(), 0);
  maybe_trigger(heap().live_bytes.load());
  return old;
}

std::int64_t set_memory_limit(std::int64_t bytes) {
  ensure_started();
  if (bytes < 0) return g_pacer.limit.load();  // as Go: a negative value only reads it
  const std::int64_t old = g_pacer.limit.exchange(bytes);
  compute_goal(g_pacer.marked.load(), 0);
  maybe_trigger(heap().live_bytes.load());
  return old;
}

Stats stats() {
  ensure_started();
  Stats s;
  {
    std::lock_guard l(g_mu());
    s = g_stats;
  }
  std::uint64_t mallocs = 0, bytes = 0;
  cache_totals(&mallocs, &bytes);
  const std::uint64_t frees = heap().frees.load();
  const std::uint64_t freed = heap().freed_bytes.load();
  s.mallocs = mallocs;
  s.frees = frees;
  s.total_alloc = bytes;
  s.heap_alloc = bytes > freed ? bytes - freed : 0;
  s.heap_objects = mallocs > frees ? mallocs - frees : 0;
  s.heap_sys = heap().pages.sys_bytes();
  s.heap_released = heap().pages.released_bytes();
  s.heap_inuse = heap().pages.inuse_bytes();
  const std::int64_t goal = g_pacer.goal.load();
  s.next_gc = goal == INT64_MAX ? 0 : static_cast<std::uint64_t>(goal);
  s.stack_stop_max_ns = g_stop_max_ns.load();
  return s;
}

}  // namespace gort::gc

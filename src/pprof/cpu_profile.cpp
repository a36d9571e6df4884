// The CPU profiler (Go's runtime/cpuprof.go and signal-based sampling, for C++).
//
// Sampling. Each M gets a POSIX timer on its own thread CPU-time clock (timer_create with
// SIGEV_THREAD_ID), so a thread is sampled in proportion to the CPU it burns and idle
// threads cost nothing (Go 1.18+ does the same; setitimer's process-wide SIGPROF would
// land on arbitrary threads). Ms started after the profile began arm their own timer as
// they start, and every M deletes its timer as it exits (runtime/mprof.hpp).
//
// The handler runs on the M's alternate signal stack and is async-signal-safe: no locks,
// no allocation, no library unwinder (libunwind and libgcc take locks and can deadlock if
// the signal interrupted them). It reads the interrupted pc, frame pointer and stack
// pointer from the ucontext and walks the frame-pointer chain, checking every step against
// the bounds of the stack the thread was on: the current goroutine's [lo, hi), or g0's
// thread stack. A sample whose sp lies outside that stack (the thread is in the middle of
// a goroutine switch, where curg and sp disagree) is attributed to the synthetic frame
// "_System" instead of being walked, as Go does. New goroutine stacks start with a zero
// frame pointer (context.cpp), so every walk ends cleanly.
//
// Buffer. Samples go into a bounded lock-free MPSC ring (Vyukov's sequence-numbered slots;
// producers are signal handlers on any M, the consumer is a drain thread that wakes every
// 100 ms). A full ring
// drops the sample and counts it; dropped samples appear as "_LostSamples" (Go's
// runtime._LostExternalCode analogue) so the totals stay honest. The ring is allocated
// once and never freed, so a handler still running while a profile stops cannot touch
// freed memory.
//
// Writing. stop_cpu_profile() deletes the timers, stops the drain thread,
// drains what is left, and builds profile.proto (profile_builder.cpp): symbolized then,
// never in the handler.
#include <signal.h>
#include <time.h>
#include <ucontext.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "base/keep_errno.hpp"
#include "gort/pprof.hpp"
#include "gort/runtime.hpp"
#include "os/os.hpp"
#include "pprof/profile_builder.hpp"
#include "runtime/mprof.hpp"
#include "runtime/sched.hpp"
#include "runtime/traceback.hpp"

namespace gort::pprof {

namespace {

constexpr int kMaxFrames = 64;
constexpr std::size_t kRingSlots = 4096;  // ~2 MiB: 40 s of 100 Hz samples on one M
// As Go's profileWriter. The ring holds 100 ms of samples from ~400 Ms at 100 Hz.
constexpr auto kDrainPeriod = std::chrono::milliseconds(100);

// Samples that are not walked: a thread in the middle of a goroutine switch (_System), the
// collector's thread (_GC), as Go names them.
enum class Synthetic : std::uint8_t { kNone, kSystem, kGC };

// Set on the collector's thread (cpu_profile_gc_thread_start): read by the handler, so
// initial-exec (no lazy allocation on first access).
__attribute__((tls_model("initial-exec"))) thread_local bool t_gc_thread = false;

struct Record {
  std::atomic<std::uint64_t> seq{0};
  std::uint32_t n = 0;
  Synthetic synthetic = Synthetic::kNone;
  const void* labels = nullptr;
  std::uintptr_t pcs[kMaxFrames];
};

// Bounded MPSC queue (Vyukov): slot i is free for the producer at position pos when
// seq == pos, and holds a sample for the consumer when seq == pos + 1.
class SampleRing {
 public:
  SampleRing() {
    for (std::size_t i = 0; i < kRingSlots; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }
  Record* begin_push() noexcept {
    std::uint64_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Record& r = slots_[pos & (kRingSlots - 1)];
      const std::uint64_t seq = r.seq.load(std::memory_order_acquire);
      if (seq == pos) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) return &r;
      } else if (seq < pos) {
        return nullptr;  // full
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }
  void end_push(Record* r, std::uint64_t pos) noexcept {
    r->seq.store(pos + 1, std::memory_order_release);
  }
  std::uint64_t position_of(const Record* r) const noexcept {
    return r->seq.load(std::memory_order_relaxed);
  }
  // Consumer side (one thread at a time).
  const Record* front() noexcept {
    Record& r = slots_[tail_ & (kRingSlots - 1)];
    return r.seq.load(std::memory_order_acquire) == tail_ + 1 ? &r : nullptr;
  }
  void pop() noexcept {
    Record& r = slots_[tail_ & (kRingSlots - 1)];
    r.seq.store(tail_ + kRingSlots, std::memory_order_release);
    ++tail_;
  }

 private:
  Record slots_[kRingSlots];
  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::uint64_t tail_ = 0;
};

SampleRing* ring() {
  static SampleRing* r = new SampleRing();  // never freed: see "Buffer"
  return r;
}

std::atomic<bool> g_sampling{false};
std::atomic<std::uint64_t> g_lost{0};

struct Regs {
  std::uintptr_t pc, fp, sp;
};

Regs regs_of(const void* ucv) {
  const auto* uc = static_cast<const ucontext_t*>(ucv);
#if defined(__x86_64__)
  return {static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]),
          static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]),
          static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP])};
#elif defined(__aarch64__)
  return {static_cast<std::uintptr_t>(uc->uc_mcontext.pc),
          static_cast<std::uintptr_t>(uc->uc_mcontext.regs[29]),
          static_cast<std::uintptr_t>(uc->uc_mcontext.sp)};
#endif
}

void on_sigprof(int, siginfo_t*, void* ucv) {
  if (!g_sampling.load(std::memory_order_relaxed)) return;
  base::KeepErrno keep;
  runtime::M* m = runtime::current_m();
  // Neither an M nor the collector: a timer that outlived its profile.
  if (m == nullptr && !t_gc_thread) return;
  SampleRing* q = ring();
  Record* rec = q->begin_push();
  if (rec == nullptr) {
    g_lost.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t pos = q->position_of(rec);
  if (m == nullptr) {
    rec->labels = nullptr;
    rec->synthetic = Synthetic::kGC;
    rec->n = 0;
    q->end_push(rec, pos);
    return;
  }
  const Regs regs = regs_of(ucv);
  const runtime::StackRange stack = runtime::stack_of(m);
  rec->labels = m->curg != nullptr ? m->curg->labels : nullptr;
  const bool switching = regs.sp < stack.lo || regs.sp >= stack.hi;
  rec->synthetic = switching ? Synthetic::kSystem : Synthetic::kNone;
  rec->n = 0;
  if (!switching) {
    rec->pcs[rec->n++] = regs.pc;
    // Only the live part of the stack, [sp, hi): the thread's own stack may not be mapped
    // further down.
    rec->n += static_cast<std::uint32_t>(
        runtime::walk_frame_pointers(regs.fp, {regs.sp, stack.hi}, rec->pcs + 1, kMaxFrames - 1));
  }
  q->end_push(rec, pos);
}

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigprof;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, nullptr);
  });
}

// Linux's clock id for a thread's CPU time (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
clockid_t thread_cpu_clock(int tid) {
  return static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6);
}

struct Key {
  std::vector<std::uintptr_t> pcs;
  const void* labels;
  Synthetic synthetic;
  bool operator<(const Key& o) const {
    return std::tie(synthetic, labels, pcs) < std::tie(o.synthetic, o.labels, o.pcs);
  }
};

// Ms of the calling goroutine's runtime.
std::vector<int> current_threads() {
  std::vector<int> tids;
  runtime::Sched* s = runtime::current_sched();
  if (s == nullptr) return tids;
  runtime::LockGuard l(s->lock);
  for (runtime::M* m : s->allm) tids.push_back(m->tid.load(std::memory_order_relaxed));
  return tids;
}

// The armed threads: one timer per M on its own CPU clock while a profile runs. Armed by
// start() for the Ms that exist, by each new M itself when it starts (Go's
// setThreadCPUProfiler), and deleted by stop() or by the M as it exits (a timer outlives
// its thread otherwise). The lock is never destroyed: Ms exit during run()'s teardown.
class ThreadTimers {
 public:
  // The rate is set before the Ms are listed: an M that starts meanwhile either arms
  // itself (it saw the rate) or is listed with its tid (it set the tid before looking).
  void start(int hz) {
    {
      std::lock_guard<std::mutex> l(mu_);
      hz_ = hz;
    }
    const std::vector<int> tids = current_threads();
    std::lock_guard<std::mutex> l(mu_);
    for (int tid : tids) arm(tid);
    for (int tid : others_) arm(tid);
  }
  void stop() {
    std::lock_guard<std::mutex> l(mu_);
    hz_ = 0;
    for (const auto& [tid, t] : timers_) timer_delete(t);
    timers_.clear();
  }
  void thread_started(int tid) {
    std::lock_guard<std::mutex> l(mu_);
    arm(tid);
  }
  // A thread that is not an M but is sampled in every profile (it never exits).
  void add_other(int tid) {
    std::lock_guard<std::mutex> l(mu_);
    others_.push_back(tid);
    arm(tid);
  }
  void thread_exiting(int tid) {
    std::lock_guard<std::mutex> l(mu_);
    if (const auto it = timers_.find(tid); it != timers_.end()) {
      timer_delete(it->second);
      timers_.erase(it);
    }
  }

 private:
  // Caller holds mu_. Nothing while no profile runs, or if tid is armed already.
  void arm(int tid) {
    if (hz_ == 0 || tid == 0 || timers_.count(tid) != 0) return;
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev._sigev_un._tid = tid;
    timer_t t{};
    if (timer_create(thread_cpu_clock(tid), &sev, &t) != 0) return;  // thread gone
    const long period_ns = 1'000'000'000L / hz_;
    itimerspec its{};
    its.it_interval.tv_sec = period_ns / 1'000'000'000L;
    its.it_interval.tv_nsec = period_ns % 1'000'000'000L;
    its.it_value = its.it_interval;
    timer_settime(t, 0, &its, nullptr);
    timers_.emplace(tid, t);
  }

  std::mutex mu_;
  int hz_ = 0;                     // guarded by mu_; 0: no profile
  std::map<int, timer_t> timers_;  // guarded by mu_
  std::vector<int> others_;        // guarded by mu_
};

ThreadTimers& thread_timers() {
  static ThreadTimers* t = new ThreadTimers();  // never destroyed: see above
  return *t;
}

class CpuProfile {
 public:
  CpuProfile(std::ostream& out, int hz) : out_(out), hz_(hz), start_(os::nanotime()) {}

  void start() {
    g_lost.store(0, std::memory_order_relaxed);
    drain();  // samples of an earlier profile still in flight
    install_handler();
    g_sampling.store(true, std::memory_order_release);
    thread_timers().start(hz_);
    drainer_ = std::thread([this] { drain_loop(); });
  }

  void stop() {
    g_sampling.store(false, std::memory_order_release);
    thread_timers().stop();
    {
      std::lock_guard<std::mutex> l(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_one();
    drainer_.join();
    drain();
    write();
  }

 private:
  // A plain thread, not a goroutine: a goroutine would wait on a runtime timer, and a
  // pending timer makes every scheduling round read the clock (it slowed spawn-heavy code
  // by 10%). Go's profileWriter also reads every 100 ms.
  void drain_loop() {
    std::unique_lock<std::mutex> l(stop_mu_);
    while (!stopping_) {
      stop_cv_.wait_for(l, kDrainPeriod);
      drain();
    }
  }

  void drain() {
    std::lock_guard<std::mutex> l(drain_mu_);
    SampleRing* q = ring();
    while (const Record* r = q->front()) {
      Key k{std::vector<std::uintptr_t>(r->pcs, r->pcs + r->n), r->labels, r->synthetic};
      ++counts_[std::move(k)];
      q->pop();
    }
  }

  void write() {
    const std::int64_t period = 1'000'000'000LL / hz_;
    detail::ProfileBuilder b({{"samples", "count"}, {"cpu", "nanoseconds"}}, {"cpu", "nanoseconds"},
                             period);
    for (const auto& [k, n] : counts_) {
      const std::int64_t values[2] = {n, n * period};
      const auto* labels = static_cast<const detail::LabelList*>(k.labels);
      if (k.synthetic == Synthetic::kSystem) {
        b.add_synthetic("_System", values, labels);
      } else if (k.synthetic == Synthetic::kGC) {
        b.add_synthetic("_GC", values, labels);
      } else {
        b.add(k.pcs, values, labels);
      }
    }
    if (const std::uint64_t lost = g_lost.load(std::memory_order_relaxed)) {
      const std::int64_t values[2] = {static_cast<std::int64_t>(lost),
                                      static_cast<std::int64_t>(lost) * period};
      b.add_synthetic("_LostSamples", values, nullptr);
    }
    const std::int64_t now = os::nanotime();
    const std::int64_t wall_now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
    const std::string gz = detail::gzip(b.encode(wall_now - (now - start_), now - start_));
    out_.write(gz.data(), static_cast<std::streamsize>(gz.size()));
    out_.flush();
  }

  std::ostream& out_;
  const int hz_;
  const std::int64_t start_;
  std::mutex drain_mu_;
  std::map<Key, std::int64_t> counts_;  // guarded by drain_mu_
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  std::thread drainer_;
};

std::mutex g_profile_mu;
CpuProfile* g_profile = nullptr;  // guarded by g_profile_mu

}  // namespace

void start_cpu_profile(std::ostream& out, int hz) {
  if (runtime::current_g() == nullptr)
    throw std::runtime_error("gort::pprof::start_cpu_profile: call it from a goroutine");
  if (hz <= 0 || hz > 10'000) throw std::invalid_argument("gort::pprof: hz must be in (0, 10000]");
  std::lock_guard<std::mutex> l(g_profile_mu);
  if (g_profile != nullptr) throw std::logic_error("cpu profiling already in use");
  g_profile = new CpuProfile(out, hz);
  g_profile->start();
}

void stop_cpu_profile() {
  CpuProfile* p = nullptr;
  {
    std::lock_guard<std::mutex> l(g_profile_mu);
    p = std::exchange(g_profile, nullptr);
  }
  if (p == nullptr) return;
  p->stop();
  delete p;
}

}  // namespace gort::pprof

namespace gort::runtime {

void cpu_profile_thread_start(int tid) {
  pprof::thread_timers().thread_started(tid);
}

void cpu_profile_thread_exit(int tid) {
  pprof::thread_timers().thread_exiting(tid);
}

void cpu_profile_gc_thread_start() {
  pprof::t_gc_thread = true;
  pprof::thread_timers().add_other(os::thread_id());
}

}  // namespace gort::runtime

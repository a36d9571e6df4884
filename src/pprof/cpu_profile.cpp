// The CPU profiler (Go's runtime/cpuprof.go and signal-based sampling, for C++).
//
// Sampling. Each M gets a POSIX timer on its own thread CPU-time clock (timer_create with
// SIGEV_THREAD_ID), so a thread is sampled in proportion to the CPU it burns and idle
// threads cost nothing (Go 1.18+ does the same; setitimer's process-wide SIGPROF would
// land on arbitrary threads). Ms started after the profile began get their timer from the
// drain goroutine within one drain period.
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
// producers are signal handlers on any M, the consumer is the drain goroutine). A full ring
// drops the sample and counts it; dropped samples appear as "_LostSamples" (Go's
// runtime._LostExternalCode analogue) so the totals stay honest. The ring is allocated
// once and never freed, so a handler still running while a profile stops cannot touch
// freed memory.
//
// Writing. stop_cpu_profile() deletes the timers, lets the drain goroutine finish,
// drains what is left, and builds profile.proto (profile_builder.cpp): symbolized then,
// never in the handler.
#include <signal.h>
#include <time.h>
#include <ucontext.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <stdexcept>
#include <tuple>
#include <variant>
#include <vector>

#include "base/keep_errno.hpp"
#include "gort/chan.hpp"
#include "gort/pprof.hpp"
#include "gort/runtime.hpp"
#include "gort/select.hpp"
#include "gort/time.hpp"
#include "os/os.hpp"
#include "pprof/profile_builder.hpp"
#include "runtime/sched.hpp"
#include "runtime/traceback.hpp"

namespace gort::pprof {

namespace {

constexpr int kMaxFrames = 64;
constexpr std::size_t kRingSlots = 4096;  // ~2 MiB: 40 s of 100 Hz samples on one M
constexpr auto kDrainPeriod = std::chrono::milliseconds(20);

struct Record {
  std::atomic<std::uint64_t> seq{0};
  std::uint32_t n = 0;
  bool system = false;
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
  if (m == nullptr) return;  // not an M (a timer that outlived its profile)
  SampleRing* q = ring();
  Record* rec = q->begin_push();
  if (rec == nullptr) {
    g_lost.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t pos = q->position_of(rec);
  const Regs regs = regs_of(ucv);
  const runtime::StackRange stack = runtime::stack_of(m);
  rec->labels = m->curg != nullptr ? m->curg->labels : nullptr;
  rec->system = regs.sp < stack.lo || regs.sp >= stack.hi;
  rec->n = 0;
  if (!rec->system) {
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
  bool system;
  bool operator<(const Key& o) const {
    return std::tie(system, labels, pcs) < std::tie(o.system, o.labels, o.pcs);
  }
};

class CpuProfile {
 public:
  CpuProfile(std::ostream& out, int hz) : out_(out), hz_(hz), start_(os::nanotime()) {}

  void start() {
    g_lost.store(0, std::memory_order_relaxed);
    drain();  // samples of an earlier profile still in flight
    install_handler();
    g_sampling.store(true, std::memory_order_release);
    arm_new_threads();
    stop_ = make_chan<std::monostate>(0);
    done_ = make_chan<std::monostate>(0);
    gort::go([this] { drain_loop(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> l(drain_mu_);
      g_sampling.store(false, std::memory_order_release);
      for (timer_t t : timers_) timer_delete(t);
      timers_.clear();
    }
    stop_.close();
    done_.recv();
    drain();
    write();
  }

 private:
  void drain_loop() {
    for (;;) {
      drain();
      arm_new_threads();
      bool stopping = false;
      gort::select(on_recv(stop_, [&](auto) { stopping = true; }),
                   on_recv(gort::after(kDrainPeriod), [](auto) {}));
      if (stopping) break;
    }
    done_.close();
  }

  void drain() {
    std::lock_guard<std::mutex> l(drain_mu_);
    SampleRing* q = ring();
    while (const Record* r = q->front()) {
      Key k{std::vector<std::uintptr_t>(r->pcs, r->pcs + r->n), r->labels, r->system};
      ++counts_[std::move(k)];
      q->pop();
    }
  }

  // Gives every M that has no timer yet one on its CPU clock.
  void arm_new_threads() {
    runtime::Sched* s = runtime::current_sched();
    if (s == nullptr) return;
    std::vector<int> tids;
    {
      runtime::LockGuard l(s->lock);
      for (runtime::M* m : s->allm) tids.push_back(m->tid.load(std::memory_order_relaxed));
    }
    std::lock_guard<std::mutex> l(drain_mu_);
    if (!g_sampling.load(std::memory_order_acquire)) return;
    const long period_ns = 1'000'000'000L / hz_;
    for (int tid : tids) {
      if (tid == 0 || armed_.count(tid) != 0) continue;
      sigevent sev{};
      sev.sigev_notify = SIGEV_THREAD_ID;
      sev.sigev_signo = SIGPROF;
      sev._sigev_un._tid = tid;
      timer_t t{};
      if (timer_create(thread_cpu_clock(tid), &sev, &t) != 0) continue;  // thread gone
      itimerspec its{};
      its.it_interval.tv_sec = period_ns / 1'000'000'000L;
      its.it_interval.tv_nsec = period_ns % 1'000'000'000L;
      its.it_value = its.it_interval;
      timer_settime(t, 0, &its, nullptr);
      timers_.push_back(t);
      armed_.insert(tid);
    }
  }

  void write() {
    const std::int64_t period = 1'000'000'000LL / hz_;
    detail::ProfileBuilder b({{"samples", "count"}, {"cpu", "nanoseconds"}}, {"cpu", "nanoseconds"},
                             period);
    for (const auto& [k, n] : counts_) {
      const std::int64_t values[2] = {n, n * period};
      const auto* labels = static_cast<const detail::LabelList*>(k.labels);
      if (k.system) {
        b.add_synthetic("_System", values, labels);
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
  std::map<Key, std::int64_t> counts_;
  std::vector<timer_t> timers_;
  std::set<int> armed_;
  Chan<std::monostate> stop_, done_;
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

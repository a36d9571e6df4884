// Mutator state and the handshake: how the collector changes phase without stopping the
// world.
//
// Go enables its write barrier in a stop-the-world pause: no goroutine can be halfway
// through a pointer write that read "barrier off" when marking starts. gort replaces the
// pause with a handshake. Every gc operation whose correctness depends on the phase (a
// Member store, a Ptr count change, an allocation, a grey push) runs in a busy section of
// its thread:
//
//   mutator:   busy += 1 (odd); compiler fence; phase = load(g_phase); ...;
//              busy += 1 (even, release)
//   collector: store(g_phase, new); process_barrier();
//              for each thread: b = busy; if b is odd, wait until busy != b
//
// process_barrier() (membarrier) makes every running thread execute a full fence, so for
// each mutator either its entry into the section is visible to the collector's read, or
// its load of the phase comes after the barrier and sees the new phase: when the
// handshake returns, every section still running (or started later) uses the new phase.
// Mutators pay a plain store and a compiler fence per section.
//
// busy counts entries and exits rather than being a flag, so the collector waits for the
// one section it saw to end, not for a moment when the thread is outside every section:
// an allocating loop is inside sections most of the time. With a flag, binary-trees
// handshakes took 1.5-16 ms while another process competed for the CPUs (after 100
// failed looks the collector yields its CPU, and got it back late). The count is 64-bit,
// so it never wraps.
//
// Sections never block and never nest: a section that waited for the collector could
// deadlock the handshake. The collector stops goroutines only outside sections
// (mark.cpp's stop signal defers when it lands in one).
//
// The registry is an intrusive list under one lock; a thread's state is created at its
// first gc operation and unlinked at thread exit, after its grey buffer, root log and
// cache were handed to the collector.
#include <sched.h>

#include <chrono>
#include <thread>

#include "base/cpu.hpp"
#include "base/fatal.hpp"
#include "gc/heapprof.hpp"
#include "gc/internal.hpp"
#include "os/os.hpp"
#include "runtime/fiber_sanitizer.hpp"

#if defined(__clang__)
#define GORT_GC_OPAQUE_TLS __attribute__((noinline))
#else
#define GORT_GC_OPAQUE_TLS __attribute__((noinline, noclone))
#endif

namespace gort::gc::detail {

std::atomic<std::uint32_t> g_phase{kOff};
std::atomic<std::uint32_t> g_cycle{0};
std::atomic<std::uint32_t> g_mark_sweepgen{0};
std::atomic<int> g_fenced_mutators{-1};
constinit thread_local MutatorState* t_mutator_state = nullptr;

namespace {

runtime::Lock g_registry_lock;
MutatorState* g_registry GORT_GUARDED_BY(g_registry_lock) = nullptr;
// States of exited threads, reused by new ones instead of freed: wait_for_sections looks
// at a snapshot of the registry without holding its lock, so every state it may look at
// must stay valid. A recycled state's busy count goes on growing from where it was, so a
// wait on a state that changed hands still ends.
// Linked through next (a plain global: never destroyed, and reachable for LeakSanitizer).
MutatorState* g_spare_states GORT_GUARDED_BY(g_registry_lock) = nullptr;
// Bytes marked by the barriers of threads that exited since the collector last looked.
std::atomic<std::int64_t> g_exited_marked_bytes{0};

bool fenced_mutators() {
#if GORT_TSAN
  return false;
#else
  int f = g_fenced_mutators.load(std::memory_order_relaxed);
  if (f < 0) {
    f = os::process_barrier_init() ? 1 : 0;
    g_fenced_mutators.store(f, std::memory_order_relaxed);
  }
  return f == 1;
#endif
}

// A spare state (its cache kept, flushed) or a new one with a new cache; unregistered.
MutatorState* take_state() {
  MutatorState* ms = nullptr;
  {
    runtime::LockGuard l(g_registry_lock);
    ms = g_spare_states;
    if (ms != nullptr) {
      g_spare_states = ms->next;
      ms->next = nullptr;
    }
  }
  if (ms != nullptr) {
    renew_cache(ms->cache);
    return ms;
  }
  ms = new MutatorState();
  ms->cache = new_cache();
  return ms;
}

void register_state(MutatorState* ms) {
  runtime::LockGuard l(g_registry_lock);
  ms->next = g_registry;
  if (g_registry != nullptr) g_registry->prev = ms;
  g_registry = ms;
}

// Hands what the thread still holds to the collector and unlinks it.
void unregister_state(MutatorState* ms) {
  {
    runtime::LockGuard l(ms->lock);
    release_buf(ms->grey);
  }
  if (ms->cache != nullptr) {
    runtime::LockGuard l(ms->cache->lock);
    flush_cache(ms->cache);
  }
  {
    runtime::LockGuard l(ms->lock);
    adopt_roots(ms->root_log);  // the counted objects stay roots after the thread is gone
  }
  g_exited_marked_bytes.fetch_add(ms->marked_bytes.exchange(0, std::memory_order_relaxed),
                                  std::memory_order_relaxed);
  ms->assist_debt = 0;
  runtime::LockGuard l(g_registry_lock);
  if (ms->prev != nullptr) {
    ms->prev->next = ms->next;
  } else {
    g_registry = ms->next;
  }
  if (ms->next != nullptr) ms->next->prev = ms->prev;
  ms->prev = nullptr;
  ms->next = g_spare_states;
  g_spare_states = ms;
}

thread_local bool t_exited = false;

struct ThreadHolder {
  MutatorState* ms = nullptr;
  ~ThreadHolder() {
    if (ms != nullptr) unregister_state(ms);  // kept, with its flushed cache, for reuse
    t_mutator_state = nullptr;
    t_exited = true;
  }
};
thread_local ThreadHolder t_holder;

__attribute__((noinline)) MutatorState* create_state() {
  fenced_mutators();  // decides the section entry before this thread's first section
  MutatorState* ms = take_state();
  ms->sample_countdown = next_sample_distance();
  register_state(ms);
  // A thread that uses the heap from a thread_local destructor that runs after ours keeps
  // its state registered for good (a few hundred bytes per such thread).
  if (!t_exited) t_holder.ms = ms;
  t_mutator_state = ms;
  return ms;
}

}  // namespace

GORT_GC_OPAQUE_TLS MutatorState* mutator() noexcept {
  asm volatile("" ::: "memory");
  MutatorState* ms = t_mutator_state;
  if (ms == nullptr) [[unlikely]]
    ms = create_state();
  return ms;
}

// For the stop signal's handler: never creates a state.
MutatorState* mutator_if_registered() noexcept {
  return t_mutator_state;
}

void publish_phase() {
  if (fenced_mutators() && !os::process_barrier())
    base::fatal("gc: membarrier failed after it was registered");
}

void wait_for_sections() {
  struct Seen {
    const MutatorState* ms;
    std::uint64_t busy;
  };
  // The collector's own list, kept between calls so that handshakes do not allocate.
  thread_local std::vector<Seen> inside;
  inside.clear();
  {
    runtime::LockGuard l(g_registry_lock);
    for (const MutatorState* ms = g_registry; ms != nullptr; ms = ms->next) {
      // Acquire: pairs with exit_busy's release.
      const std::uint64_t seen = ms->busy.load(std::memory_order_seq_cst);
      if ((seen & 1) != 0) inside.push_back({ms, seen});
    }
  }
  // Without the lock: threads may start and exit meanwhile (a new thread's sections see
  // the new phase; states are never freed, see g_spare_states).
  for (const Seen& s : inside) {
    int spins = 0;
    while (s.ms->busy.load(std::memory_order_seq_cst) == s.busy) {
      if (++spins < 100) {
        base::cpu_relax();
      } else if (spins < 200) {
        sched_yield();  // the section's thread may be descheduled
      } else {
        // A long section (a sanitizer's, or a thread the OS descheduled): wait without
        // burning the CPU the background budget counts (collector.cpp). Nobody waits for
        // this wait.
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }
  }
}

void handshake() {
  publish_phase();
  wait_for_sections();
}

std::int64_t exited_marked_bytes() {
  return g_exited_marked_bytes.exchange(0, std::memory_order_relaxed);
}

void for_each_mutator(const std::function<void(MutatorState&)>& f) {
  runtime::LockGuard l(g_registry_lock);
  for (MutatorState* ms = g_registry; ms != nullptr; ms = ms->next) f(*ms);
}

void barrier_shade(MutatorState* ms, const void* obj) noexcept {
  std::size_t bytes = 0;
  const std::uintptr_t cell = shade(reinterpret_cast<std::uintptr_t>(obj), &bytes);
  if (bytes != 0)
    ms->marked_bytes.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
  if (cell == 0) return;
  runtime::LockGuard l(ms->lock);
  push_grey(ms->grey, cell);
}

}  // namespace gort::gc::detail

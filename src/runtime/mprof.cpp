// Block and mutex contention records (Go's mprof.go, blockevent/mutexevent).
//
// Sampling follows Go 1.19. Block profile: an event of d ns is kept if d >= rate, else
// with probability d/rate, and a kept short event counts rate/d times with delay rate (the
// unbiased estimate from golang.org/cl/299991). Mutex profile: 1 in `fraction` events is
// kept; the writer scales counts and delays by the fraction.
//
// Stacks are captured by walking frame pointers from the caller's frame with the runtime's
// bounded walker (traceback.hpp), so a frame compiled without a frame pointer ends the walk
// instead of faulting. Records live in a map
// under a runtime lock: events are rare (they follow a park) and never in a signal handler.
#include "runtime/mprof.hpp"

#include <map>

#include "runtime/lock.hpp"
#include "runtime/sched.hpp"
#include "runtime/traceback.hpp"

namespace gort::runtime {

std::atomic<std::int64_t> g_block_profile_rate{0};
std::atomic<std::int64_t> g_mutex_profile_fraction{0};

namespace {

constexpr int kMaxStack = 32;

struct Bucket {
  double count = 0;
  std::int64_t delay_ns = 0;
};

struct Profile {
  Lock lock;
  std::map<std::vector<std::uintptr_t>, Bucket> buckets GORT_GUARDED_BY(lock);
};

Profile& profile(ContentionKind kind) {
  static Profile* block = new Profile();  // never destroyed: events may come at exit
  static Profile* mutex = new Profile();
  return kind == ContentionKind::kBlock ? *block : *mutex;
}

std::uint64_t cheap_rand() noexcept {
  M* m = current_m();
  if (m != nullptr) return m->rand.next();
  thread_local base::FastRand r(static_cast<std::uint64_t>(os::nanotime()));
  return r.next();
}

void save(ContentionKind kind, const std::uintptr_t* pcs, int n, double count, std::int64_t delay) {
  std::vector<std::uintptr_t> key(pcs, pcs + n);
  Profile& p = profile(kind);
  LockGuard l(p.lock);
  Bucket& b = p.buckets[std::move(key)];
  b.count += count;
  b.delay_ns += delay;
}

}  // namespace

bool blocks_for_profile(detail::WaitReason why) noexcept {
  using detail::WaitReason;
  switch (why) {
    case WaitReason::kSleep:
    case WaitReason::kIOWait:
    case WaitReason::kSelectNoCases:
    case WaitReason::kChanReceiveNilChan:
    case WaitReason::kChanSendNilChan:
    case WaitReason::kLockedThread:
    case WaitReason::kNone:
      return false;
    default:
      return true;
  }
}

bool is_mutex_wait(detail::WaitReason why) noexcept {
  using detail::WaitReason;
  return why == WaitReason::kSyncMutexLock || why == WaitReason::kSyncRWMutexLock ||
         why == WaitReason::kSyncRWMutexRLock;
}

__attribute__((noinline)) int capture_stack(std::uintptr_t* out, int max, int skip) noexcept {
  // Our own frame starts the chain, so its first return address is into our caller.
  return walk_frame_pointers(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)),
                             current_stack(), out, max, skip);
}

// The stack is captured here, one frame below the caller: skip + 1 drops our own return
// address and the caller's `skip` frames. (Callers must not tail-call us: see park().)
__attribute__((noinline)) void block_event(std::int64_t delay_ns, int skip) {
  const std::int64_t rate = g_block_profile_rate.load(std::memory_order_relaxed);
  if (rate <= 0) return;
  if (delay_ns <= 0) delay_ns = 1;
  const bool short_event = rate > delay_ns;
  if (short_event &&
      static_cast<std::int64_t>(cheap_rand() % static_cast<std::uint64_t>(rate)) > delay_ns)
    return;
  std::uintptr_t pcs[kMaxStack];
  const int n = capture_stack(pcs, kMaxStack, skip + 1);
  if (short_event) {
    save(ContentionKind::kBlock, pcs, n, static_cast<double>(rate) / static_cast<double>(delay_ns),
         rate);
  } else {
    save(ContentionKind::kBlock, pcs, n, 1, delay_ns);
  }
}

__attribute__((noinline)) void mutex_event(std::int64_t delay_ns, int skip) {
  const std::int64_t fraction = g_mutex_profile_fraction.load(std::memory_order_relaxed);
  if (fraction <= 0) return;
  if (cheap_rand() % static_cast<std::uint64_t>(fraction) != 0) return;
  std::uintptr_t pcs[kMaxStack];
  const int n = capture_stack(pcs, kMaxStack, skip + 1);
  save(ContentionKind::kMutex, pcs, n, 1, delay_ns);
}

std::vector<ContentionRecord> contention_records(ContentionKind kind) {
  Profile& p = profile(kind);
  std::vector<ContentionRecord> out;
  LockGuard l(p.lock);
  out.reserve(p.buckets.size());
  for (const auto& [stack, b] : p.buckets) out.push_back({stack, b.count, b.delay_ns});
  return out;
}

// ---- threadcreate

namespace {
struct ThreadCreates {
  Lock lock;
  const Sched* sched GORT_GUARDED_BY(lock) = nullptr;  // the run the records belong to
  std::vector<std::vector<std::uintptr_t>> stacks GORT_GUARDED_BY(lock);
};
ThreadCreates& thread_creates() {
  static auto* t = new ThreadCreates();  // never destroyed, like the contention profiles
  return *t;
}
}  // namespace

void thread_create_event(const Sched* s) {
  std::uintptr_t pcs[kMaxStack];
  const int n = capture_stack(pcs, kMaxStack, 1);
  ThreadCreates& t = thread_creates();
  LockGuard l(t.lock);
  if (t.sched != s) {  // a new run: Ms of earlier runs are gone
    t.sched = s;
    t.stacks.clear();
  }
  t.stacks.emplace_back(pcs, pcs + n);
}

std::vector<std::vector<std::uintptr_t>> thread_create_records(const Sched* s) {
  ThreadCreates& t = thread_creates();
  LockGuard l(t.lock);
  if (t.sched != s) return {};
  return t.stacks;
}

}  // namespace gort::runtime

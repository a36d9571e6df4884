// Goroutine tracebacks; the design (frame-pointer walk, validated optimistic reads of
// parked goroutines, no reads of running ones) is at the top of traceback.hpp.
#include "runtime/traceback.hpp"

#include "os/os.hpp"

// Reads of another goroutine's G and stack race with that goroutine resuming; they are
// validated afterwards (see traceback.hpp), so the sanitizers must not instrument them.
#define GORT_UNINSTRUMENTED __attribute__((noinline, no_sanitize("address", "thread")))

namespace gort::runtime {

namespace {

// Where gort_switch_context (switch_*.S) leaves the frame pointer and the resume address,
// in words above the saved sp, and how many bytes it pushed in all.
#if defined(__x86_64__)
constexpr std::size_t kSavedFpWord = 6, kSavedPcWord = 7, kSwitchFrameBytes = 64;
#elif defined(__aarch64__)
constexpr std::size_t kSavedFpWord = 18, kSavedPcWord = 19, kSwitchFrameBytes = 160;
#endif

using Range = StackRange;

// walk_frame_pointers appending to out, which ends with at most max entries.
void walk_frames(std::uintptr_t fp, Range r, int max, std::vector<std::uintptr_t>& out) {
  const std::size_t old = out.size();
  if (static_cast<int>(old) >= max) return;
  out.resize(static_cast<std::size_t>(max));
  const int n = walk_frame_pointers(fp, r, out.data() + old, max - static_cast<int>(old));
  out.resize(old + static_cast<std::size_t>(n));
}

// A racy read of what the walk needs from a G that may be resuming on another thread.
struct GView {
  GStatus status;
  std::uint64_t id;
  detail::WaitReason waitreason;
  std::uintptr_t sp;
  Range stack;
  bool locked;
  std::uintptr_t gopc;
  const void* labels;
};

GORT_UNINSTRUMENTED GView read_g(const G* gp) {
  GView v;
  // Acquire pairs with the release store of kWaiting after the park's switch saved sp.
  v.status = gp->status.load(std::memory_order_acquire);
  v.id = gp->id;
  v.waitreason = gp->waitreason;
  v.sp = reinterpret_cast<std::uintptr_t>(gp->sp);
  v.stack = Range{gp->stack.lo, gp->stack.hi};
  v.locked = gp->lockedm != nullptr;
  v.gopc = gp->gopc;
  v.labels = gp->labels;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return v;
}

// Walks a goroutine that is not running: from the switch frame at its saved sp.
GORT_UNINSTRUMENTED void walk_stopped(const GView& v, int max, std::vector<std::uintptr_t>& out) {
  if (!v.stack.holds(v.sp, kSwitchFrameBytes) || max <= 0) return;
  const auto* saved = reinterpret_cast<const volatile std::uintptr_t*>(v.sp);
  const std::uintptr_t pc = saved[kSavedPcWord], fp = saved[kSavedFpWord];
  if (pc == 0) return;
  out.push_back(pc);
  walk_frames(fp, v.stack, max, out);
}

bool live(GStatus st) {
  return st == GStatus::kRunnable || st == GStatus::kRunning || st == GStatus::kWaiting;
}

// One goroutine other than the caller. A stopped one is walked twice at most: the walk is
// kept only if the goroutine neither moved nor changed status meanwhile.
bool trace_other(const G* gp, int max_frames, GoroutineTrace* out) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const GView before = read_g(gp);
    if (!live(before.status)) return false;
    out->id = before.id;
    out->status = before.status;
    out->locked = before.locked;
    out->gopc = before.gopc;
    out->labels = before.labels;
    out->waitreason =
        before.status == GStatus::kWaiting ? before.waitreason : detail::WaitReason::kNone;
    out->pcs.clear();
    out->frames_known = false;
    if (before.status == GStatus::kRunning) return true;  // its stack is live: never read
    walk_stopped(before, max_frames, out->pcs);
    std::atomic_thread_fence(std::memory_order_acquire);
    const GView after = read_g(gp);
    if (after.status == before.status && after.sp == before.sp && after.id == before.id) {
      out->frames_known = true;
      return true;
    }
  }
  out->pcs.clear();
  return true;
}

}  // namespace

GORT_UNINSTRUMENTED int walk_frame_pointers(std::uintptr_t fp, StackRange r, std::uintptr_t* out,
                                            int max, int skip) noexcept {
  int n = 0;
  while (n < max && fp % sizeof(void*) == 0 && r.holds(fp, 2 * sizeof(void*))) {
    const auto* frame = reinterpret_cast<const volatile std::uintptr_t*>(fp);
    const std::uintptr_t next = frame[0], ret = frame[1];
    if (ret == 0) break;  // gort_context_trampoline's null return address: the outermost frame
    if (skip > 0) {
      --skip;
    } else {
      out[n++] = ret;
    }
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

StackRange stack_of(const M* m) noexcept {
  const G* g = m->curg;
  if (g != nullptr && g != &m->g0) return StackRange{g->stack.lo, g->stack.hi};
  const auto lo = reinterpret_cast<std::uintptr_t>(m->g0_stack_bottom);
  return StackRange{lo, lo + m->g0_stack_size};
}

StackRange current_stack() noexcept {
  if (const M* m = current_m()) {
    const StackRange r = stack_of(m);
    if (r.hi != r.lo) return r;  // M0's g0 has no recorded bounds: ask the thread
  }
  const void* bottom = nullptr;
  std::size_t size = 0;
  os::current_thread_stack(&bottom, &size);
  const auto lo = reinterpret_cast<std::uintptr_t>(bottom);
  return StackRange{lo, lo + size};
}

__attribute__((noinline)) std::vector<std::uintptr_t> trace_self(int max_frames) {
  std::vector<std::uintptr_t> pcs;
  pcs.reserve(static_cast<std::size_t>(max_frames > 0 ? max_frames : 0));
  // Our own frame's [fp, return address] pair starts the chain at our caller.
  walk_frames(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), current_stack(),
              max_frames, pcs);
  return pcs;
}

std::vector<GoroutineTrace> trace_goroutines(Sched& s, int max_frames) {
  std::vector<G*> gs;
  {
    LockGuard l(s.allg_lock);
    gs = s.allg;  // Gs are never freed while the runtime runs: safe to visit unlocked
  }
  std::vector<GoroutineTrace> out;
  out.reserve(gs.size() + 1);
  G* self = current_g();
  if (self != nullptr) {
    GoroutineTrace t;
    t.id = self->id;
    t.status = GStatus::kRunning;
    t.is_current = true;
    t.locked = self->lockedm != nullptr;
    t.gopc = self->gopc;
    t.labels = self->labels;
    t.frames_known = true;
    t.pcs = trace_self(max_frames);
    out.push_back(std::move(t));
  }
  for (G* gp : gs) {
    if (gp == self) continue;
    GoroutineTrace t;
    if (trace_other(gp, max_frames, &t)) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace gort::runtime

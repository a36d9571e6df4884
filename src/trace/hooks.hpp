// The execution tracer's hooks: what the runtime (and, later, the GC) calls to record an
// event. Each hook is one inline function: a relaxed load of g_enabled and, only while a
// trace runs, an out-of-line call that timestamps the event and appends it to the calling
// thread's buffer (trace.cpp). So a hook costs a load and a never-taken branch when
// tracing is off, and the runtime's hot paths carry one line each.
//
// Every hook is callable from any thread (goroutine, g0, sysmon, a plain thread) and never
// blocks, switches or throws. The events' meaning and how they become Chrome Trace Event
// JSON are described at the top of trace.cpp and in docs/design/trace.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace gort::trace::detail {

// Event kinds, in the binary buffers. Values are internal (never written out as numbers).
enum class Ev : std::uint8_t {
  kGoCreate,        // a: new goroutine id
  kGoStart,         // a: goroutine id; p: the P it runs on
  kGoSched,         // a: goroutine id; stopped by yield()
  kGoBlock,         // a: goroutine id, b: WaitReason
  kGoEnd,           // a: goroutine id
  kGoUnblock,       // a: goroutine made runnable (by the current goroutine, or a thread)
  kNetpollUnblock,  // a: goroutine made runnable by the netpoller
  kProcStart,       // p: the P the M acquired
  kProcStop,        // p: the P the M released
  kProcSteal,       // p: the P sysmon took; a: the M it took it from (or -1: in a call)
  kSyscallEnter,    // a: goroutine id; p: the P it leaves in kSyscall
  kSyscallExit,     // a: goroutine id; the call returned (no P yet)
  kGoRunning,       // a: goroutine id; p: it runs on that P again after a blocking call
  kTaskBegin,       // a: task id, b: parent task id; text: the task's type
  kTaskEnd,         // a: task id
  kRegionBegin,     // a: task id; text: region name
  kRegionEnd,       // a: task id; text: region name
  kLog,             // a: task id, b: length of the category; text: category + message
  kGCPhaseBegin,    // text: phase name
  kGCPhaseEnd,      // text: phase name
  kSTWBegin,        // text: reason
  kSTWEnd,          // text: reason
};

// True while a trace runs. Relaxed readers only decide whether to call emit(), which
// re-checks the flag under the stop protocol (trace.cpp), so a stale read costs at most
// one event more or less around start() and stop().
extern std::atomic<bool> g_enabled;

inline bool on() noexcept {
  return g_enabled.load(std::memory_order_relaxed);
}

// Out of line: appends one event from the calling thread. p < 0: no P. The current
// goroutine (if any) and M are read by emit itself.
void emit(Ev ev, int p, std::uint64_t a, std::uint64_t b) noexcept;
void emit_text(Ev ev, std::uint64_t a, std::uint64_t b, std::string_view text) noexcept;

// ---- Runtime hooks (src/runtime). One line at each call site.
inline void go_create(std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kGoCreate, -2, goid, 0);
}
inline void go_start(int p, std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kGoStart, p, goid, 0);
}
inline void go_sched(std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kGoSched, -2, goid, 0);
}
inline void go_block(std::uint64_t goid, std::uint8_t wait_reason) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kGoBlock, -2, goid, wait_reason);
}
inline void go_end(std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kGoEnd, -2, goid, 0);
}
inline void go_unblock(std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kGoUnblock, -2, goid, 0);
}
inline void netpoll_unblock(std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kNetpollUnblock, -2, goid, 0);
}
inline void proc_start(int p) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kProcStart, p, 0, 0);
}
inline void proc_stop(int p) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kProcStop, p, 0, 0);
}
// m_id < 0: the P was in a blocking call (its M had detached already).
inline void proc_steal(int p, int m_id) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kProcSteal, p, static_cast<std::uint64_t>(m_id), 0);
}
inline void syscall_enter(int p, std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kSyscallEnter, p, goid, 0);
}
inline void syscall_exit(std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kSyscallExit, -1, goid, 0);
}
inline void go_running(int p, std::uint64_t goid) noexcept {
  if (on()) [[unlikely]]
    emit(Ev::kGoRunning, p, goid, 0);
}

// ---- GC hooks: for the collector (src/gc), which calls them around its phases and its
// stop-the-world pauses. name: a short literal ("mark", "sweep", "mark termination").
inline void gc_phase_begin(std::string_view name) noexcept {
  if (on()) [[unlikely]]
    emit_text(Ev::kGCPhaseBegin, 0, 0, name);
}
inline void gc_phase_end(std::string_view name) noexcept {
  if (on()) [[unlikely]]
    emit_text(Ev::kGCPhaseEnd, 0, 0, name);
}
inline void stw_begin(std::string_view reason) noexcept {
  if (on()) [[unlikely]]
    emit_text(Ev::kSTWBegin, 0, 0, reason);
}
inline void stw_end(std::string_view reason) noexcept {
  if (on()) [[unlikely]]
    emit_text(Ev::kSTWEnd, 0, 0, reason);
}

}  // namespace gort::trace::detail

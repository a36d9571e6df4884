// Fatal reports in Go's words: panics (exceptions escaping a goroutine), stack overflow,
// and the goroutine list printed with "all goroutines are asleep - deadlock!".
//
// Panics: the runtime installs a std::terminate handler for the duration of run(). An
// exception escaping a goroutine reaches it before unwinding (see proc.cpp), so the
// backtrace printed is the throw site's. Output is "panic: <what()>" (prefixed with the
// exception's type unless it is gort::Panic), a blank line, "goroutine N [running]:" and
// the frames; exit status 2.
//
// Stack overflow: a fault whose address lies in the current goroutine's guard region
// prints "fatal error: stack overflow" with the goroutine's id, exit status 2. The handler
// runs on the M's alternate signal stack and only reads the M's fields and writes to fd 2.
#include <cxxabi.h>
#include <execinfo.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>
#include <vector>

#include "base/fatal.hpp"
#include "runtime/sched.hpp"
#include "symbolize/symbolizer.hpp"

namespace gort::runtime {

namespace {

std::terminate_handler g_previous_terminate = nullptr;

void write_hex(std::uintptr_t v) noexcept {
  char buf[2 + 16];
  char* p = buf + sizeof buf;
  do {
    *--p = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  *--p = 'x';
  *--p = '0';
  base::raw_write(std::string_view(p, static_cast<std::size_t>(buf + sizeof buf - p)));
}

bool on_fault(void* addr) noexcept {
  M* m = current_m();
  if (m == nullptr || m->curg == nullptr) return false;
  G* gp = m->curg;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  if (a >= gp->stack.lo || a < gp->stack.lo - StackArena::kGuardSize) return false;
  base::raw_write("runtime: goroutine stack exceeds ");
  base::raw_write_uint(gp->stack.hi - gp->stack.lo);
  base::raw_write("-byte limit\nruntime: fault addr=");
  write_hex(a);
  base::raw_write(" stack=[");
  write_hex(gp->stack.lo);
  base::raw_write(", ");
  write_hex(gp->stack.hi);
  base::raw_write("]\nfatal error: stack overflow\n\ngoroutine ");
  base::raw_write_uint(gp->id);
  base::raw_write(" [running]:\n");
  base::die();
}

// One frame: the function, then "\tfile:line" where the module has DWARF.
void print_frame(const std::string& function, const std::string& file, int line) {
  base::raw_write(function.empty() ? "?" : function);
  base::raw_write("\n");
  if (file.empty()) return;
  base::raw_write("\t");
  base::raw_write(file);
  base::raw_write(":");
  base::raw_write_uint(static_cast<std::uint64_t>(line));
  base::raw_write("\n");
}

// Prints the calling thread's frames from the throw site down, Go-style: the function
// (and the functions inlined into it, each with its file:line when known), then
// "\t<module> +0x<offset>". Frames of the reporting machinery (this handler,
// std::terminate, __cxa_throw) are skipped.
void print_backtrace() {
  void* frames[64];
  const int n = backtrace(frames, 64);
  std::vector<symbolize::Symbol> syms(static_cast<std::size_t>(n));
  int first = 0;
  for (int i = 0; i < n; ++i) {
    // Return addresses point after the call: look up pc-1 to stay inside the caller.
    symbolize::lookup(reinterpret_cast<std::uintptr_t>(frames[i]) - 1,
                      &syms[static_cast<std::size_t>(i)]);
    if (syms[static_cast<std::size_t>(i)].function == "__cxa_throw") first = i + 1;
  }
  for (int i = first; i < n; ++i) {
    const symbolize::Symbol& s = syms[static_cast<std::size_t>(i)];
    if (s.function.rfind("gort::runtime::", 0) == 0 || s.function == "gort_context_trampoline")
      continue;
    for (const symbolize::InlinedFrame& f : s.inlined) print_frame(f.function, f.file, f.line);
    print_frame(s.function, s.file, s.line);
    base::raw_write("\t");
    base::raw_write(s.module.empty() ? "?" : s.module);
    base::raw_write(" +");
    write_hex(s.module_offset + 1);
    base::raw_write("\n");
  }
}

std::string describe_current_exception() {
  std::exception_ptr ep = std::current_exception();
  if (!ep) return "";
  std::type_info* type = abi::__cxa_current_exception_type();
  std::string type_name = type != nullptr ? symbolize::demangle(type->name()) : "unknown";
  try {
    std::rethrow_exception(ep);
  } catch (const Panic& e) {
    return e.what();
  } catch (const std::exception& e) {
    return type_name + ": " + e.what();
  } catch (...) {
    return type_name;
  }
}

[[noreturn]] void on_terminate() {
  G* gp = current_g();
  if (gp == nullptr) {
    if (g_previous_terminate != nullptr) g_previous_terminate();
    std::abort();
  }
  std::string what = describe_current_exception();
  if (what.empty()) {
    base::raw_write("fatal error: std::terminate called");
  } else {
    base::raw_write("panic: ");
    base::raw_write(what);
  }
  base::raw_write("\n\ngoroutine ");
  base::raw_write_uint(gp->id);
  base::raw_write(" [running]:\n");
  print_backtrace();
  base::die();
}

}  // namespace

void install_fault_reporting() noexcept {
  os::install_fault_handler(on_fault);
  g_previous_terminate = std::set_terminate(on_terminate);
}

void restore_fault_reporting() noexcept {
  std::set_terminate(g_previous_terminate);
}

bool dump_waiting_goroutines(Sched& s) noexcept {
  bool runnable = false;
  LockGuard l(s.allg_lock);
  for (G* gp : s.allg) {
    const GStatus status = gp->status.load(std::memory_order_relaxed);
    // A runnable goroutine here means a scheduler bug (nobody would run it): show it.
    if (status != GStatus::kWaiting && status != GStatus::kRunnable) continue;
    base::raw_write("goroutine ");
    base::raw_write_uint(gp->id);
    base::raw_write(" [");
    base::raw_write(status == GStatus::kRunnable ? "runnable"
                                                 : detail::wait_reason_string(gp->waitreason));
    base::raw_write("]:\n\n");
    runnable = runnable || status == GStatus::kRunnable;
  }
  return runnable;
}

namespace {
void write_id_field(const char* name, bool present, std::uint64_t id) noexcept {
  base::raw_write(name);
  if (present) {
    base::raw_write_uint(id);
  } else {
    base::raw_write("-");
  }
}
}  // namespace

void dump_scheduler_state(Sched& s) noexcept GORT_REQUIRES(s.lock) {
  base::raw_write("runtime: mcount=");
  base::raw_write_uint(static_cast<std::uint64_t>(s.mcount));
  base::raw_write(" nmidle=");
  base::raw_write_uint(static_cast<std::uint64_t>(s.nmidle));
  base::raw_write(" nmidlelocked=");
  base::raw_write_uint(static_cast<std::uint64_t>(s.nmidlelocked));
  base::raw_write(" npidle=");
  base::raw_write_uint(static_cast<std::uint64_t>(s.npidle.load(std::memory_order_relaxed)));
  base::raw_write(" runqsize=");
  base::raw_write_uint(static_cast<std::uint64_t>(s.runq_size.load(std::memory_order_relaxed)));
  base::raw_write("\n");
  for (const M* m : s.allm) {
    write_id_field("  M", true, static_cast<std::uint64_t>(m->id));
    write_id_field(": p=", m->p != nullptr, m->p != nullptr ? m->p->id : 0);
    write_id_field(" nextp=", m->nextp != nullptr, m->nextp != nullptr ? m->nextp->id : 0);
    write_id_field(" curg=", m->curg != nullptr, m->curg != nullptr ? m->curg->id : 0);
    write_id_field(" lockedg=", m->lockedg != nullptr, m->lockedg != nullptr ? m->lockedg->id : 0);
    base::raw_write(m->spinning ? " spinning\n" : "\n");
  }
  base::raw_write("\n");
}

}  // namespace gort::runtime

namespace gort::detail {

const char* wait_reason_string(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::kNone:
      return "";
    case WaitReason::kSyncWaitGroupWait:
      return "sync.WaitGroup.Wait";
    case WaitReason::kSyncMutexLock:
      return "sync.Mutex.Lock";
    case WaitReason::kSyncRWMutexLock:
      return "sync.RWMutex.Lock";
    case WaitReason::kSyncRWMutexRLock:
      return "sync.RWMutex.RLock";
    case WaitReason::kSyncCondWait:
      return "sync.Cond.Wait";
    case WaitReason::kSemacquire:
      return "semacquire";
    case WaitReason::kChanReceive:
      return "chan receive";
    case WaitReason::kChanSend:
      return "chan send";
    case WaitReason::kChanReceiveNilChan:
      return "chan receive (nil chan)";
    case WaitReason::kChanSendNilChan:
      return "chan send (nil chan)";
    case WaitReason::kSelect:
      return "select";
    case WaitReason::kSelectNoCases:
      return "select (no cases)";
    case WaitReason::kSleep:
      return "sleep";
    case WaitReason::kIOWait:
      return "IO wait";
    case WaitReason::kLockedThread:
      return "locked to thread";
  }
  return "unknown";
}

}  // namespace gort::detail

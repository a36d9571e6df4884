// The goroutine profile's text forms, byte for byte as Go's runtime/pprof writes them
// where gort knows as much as Go (ids, states, wait reasons, return addresses, function
// names, and file:line and inlined frames where the module has DWARF), with "?:0" where
// it does not (code built without -g).
//
// debug=1 (pprof.go, printCountProfile + printStackRecord):
//   goroutine profile: total 3
//   2 @ 0x4a5b6 0x4a7c8 0x4b001
//   #	0x4a7c7	worker(gort::Chan<int>)+0x27	?:0
//   (blank line)
// Groups of identical stacks, largest first; the "@" line lists the return addresses from
// the first frame outside the runtime (Go's start at runtime.gopark; gort parks through
// several runtime paths, which would split groups), the "#" lines the frames shown (pc-1,
// Go's Frame.PC), runtime-internal ones hidden.
//
// debug=2 (runtime.Stack(all) via traceback.go's goroutineheader and printframe):
//   goroutine 18 [chan receive]:
//   worker(gort::Chan<int>)
//   	?:0 +0x27
//   created by main
//   	?:0 +0x3f
//   (blank line)
// The calling goroutine first, as "[running]"; a goroutine running on another thread gets
// Go's "goroutine running on other thread; stack unavailable". Each ends, as in Go, with
// "created by <function>" and its location (the go statement), as Go prints it.
// Hidden frames are the runtime's own (gort::runtime, gort::detail, this file, the switch
// and trampoline), as Go hides runtime.* frames.
//
// debug=0: profile.proto (gzipped) with sample type goroutine/count, one sample per
// distinct stack (the debug=1 grouping); goroutines running on other threads, whose stacks
// are not read, are counted under the synthetic frame "_Running".
//
// The threadcreate profile (Go's): the stack that created each M, in the same two forms
// ("threadcreate profile: total N" and the same records; or threadcreate/count). Not yet: ", N
// minutes" for long waits (the G does not record when it parked: a clock read on every park is not
// worth it).
#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "gort/pprof.hpp"
#include "gort/runtime.hpp"
#include "pprof/contention_profile.hpp"
#include "pprof/heap_profile.hpp"
#include "pprof/profile_builder.hpp"
#include "runtime/mprof.hpp"
#include "runtime/sched.hpp"
#include "runtime/traceback.hpp"
#include "symbolize/symbolizer.hpp"

namespace gort::pprof {

namespace {

constexpr int kMaxFrames = 64;  // Go's runtime/pprof also records at most 64 (maxStack)

using runtime::GoroutineTrace;
using runtime::GStatus;

// Symbols of one profile write, looked up once per pc.
class SymbolCache {
 public:
  // The symbol for the return address ret (looked up at ret-1, inside the call).
  const symbolize::Symbol& at(std::uintptr_t ret) {
    auto it = cache_.find(ret);
    if (it != cache_.end()) return it->second;
    symbolize::Symbol s;
    if (!symbolize::lookup(ret - 1, &s)) s = symbolize::Symbol{};
    return cache_.emplace(ret, std::move(s)).first->second;
  }

 private:
  std::unordered_map<std::uintptr_t, symbolize::Symbol> cache_;
};

// Runtime internals, as Go hides runtime.* frames. gort::detail::BoundCall::run is shown:
// it is the goroutine's body (the user's lambda, often inlined into it).
bool hidden(const std::string& fn) {
  static constexpr std::string_view kPrefixes[] = {
      "gort::runtime::", "gort::detail::", "gort::pprof::", "gort_context_trampoline",
      "gort_switch_context"};
  if (fn.rfind("gort::detail::BoundCall<", 0) == 0) return false;
  return std::any_of(std::begin(kPrefixes), std::end(kPrefixes),
                     [&](std::string_view p) { return fn.compare(0, p.size(), p) == 0; });
}

// The name as shown: without GCC's " [clone .isra.0]" suffixes of specialised copies.
std::string display_name(const std::string& fn) {
  const std::size_t clone = fn.find(" [clone ");
  return clone == std::string::npos ? fn : fn.substr(0, clone);
}

void write_hex(std::ostream& out, std::uintptr_t v) {
  char buf[2 + 16 + 1];
  std::snprintf(buf, sizeof buf, "0x%zx", static_cast<std::size_t>(v));
  out << buf;
}

std::vector<GoroutineTrace> snapshot() {
  runtime::Sched* s = runtime::current_sched();
  if (s == nullptr) throw Panic("gort::pprof: goroutine profile requested outside gort::run");
  return runtime::trace_goroutines(*s, kMaxFrames);
}

// ---- debug=2

void write_header(std::ostream& out, const GoroutineTrace& t) {
  out << "goroutine " << t.id << " [";
  switch (t.status) {
    case GStatus::kRunning:
      out << "running";
      break;
    case GStatus::kRunnable:
      out << "runnable";
      break;
    default:
      out << gort::detail::wait_reason_string(t.waitreason);
      break;
  }
  if (t.locked) out << ", locked to thread";
  out << "]:\n";
}

// A demangled C++ name carries its parameter list; a C name gets Go's "()".
void write_function(std::ostream& out, const std::string& fn) {
  if (fn.empty()) {
    out << "?()";
  } else {
    out << fn;
    if (fn.find('(') == std::string::npos) out << "()";
  }
}

// "file:line", or Go's "?:0" where the module has no DWARF for the pc.
void write_position(std::ostream& out, const std::string& file, int line) {
  if (file.empty()) {
    out << "?:0";
  } else {
    out << file << ':' << line;
  }
}

void write_location(std::ostream& out, std::uintptr_t pc, const symbolize::Symbol& s) {
  out << "\n\t";
  write_position(out, s.file, s.line);
  out << " +";
  write_hex(out, s.function.empty() ? pc - 1 : s.function_offset);
  out << "\n";
}

// Functions inlined at the pc, innermost first, each as a frame of its own as in Go's
// tracebacks (with a position but no pc offset: they have no frame).
void write_inlined(std::ostream& out, const symbolize::Symbol& s) {
  for (const symbolize::InlinedFrame& f : s.inlined) {
    if (hidden(f.function)) continue;
    write_function(out, display_name(f.function));
    out << "\n\t";
    write_position(out, f.file, f.line);
    out << "\n";
  }
}

// A demangled name without its final parameter list (and qualifiers after it):
// "ns::f(int) const" -> "ns::f"; template arguments and lambdas inside stay whole.
std::string without_parameters(const std::string& fn) {
  const std::size_t close = fn.rfind(')');
  if (close == std::string::npos) return fn;
  int depth = 0;
  for (std::size_t i = close + 1; i-- > 0;) {
    if (fn[i] == ')') ++depth;
    if (fn[i] == '(' && --depth == 0) return fn.substr(0, i);
  }
  return fn;
}

// Go's "created by main.main" (the function, without its parameter list), then where.
void write_created_by(std::ostream& out, std::uintptr_t gopc, SymbolCache& syms) {
  const symbolize::Symbol& s = syms.at(gopc);
  const std::string name = without_parameters(display_name(s.function));
  out << "created by " << (name.empty() ? "?" : name);
  write_location(out, gopc, s);
}

void write_stack(std::ostream& out, const GoroutineTrace& t, SymbolCache& syms) {
  write_header(out, t);
  if (!t.frames_known) {
    out << "\tgoroutine running on other thread; stack unavailable\n";
  } else {
    for (std::uintptr_t pc : t.pcs) {
      const symbolize::Symbol& s = syms.at(pc);
      if (hidden(s.function)) continue;
      write_inlined(out, s);
      write_function(out, display_name(s.function));
      write_location(out, pc, s);
    }
  }
  if (t.gopc != 0) write_created_by(out, t.gopc, syms);
}

void write_all_stacks(std::ostream& out) {
  SymbolCache syms;
  bool first = true;
  for (const GoroutineTrace& t : snapshot()) {
    if (!first) out << "\n";
    first = false;
    write_stack(out, t, syms);
  }
}

// ---- debug=1

// A stack to count, with the labels of its goroutine (interned: equal sets, equal pointers).
struct CountedStack {
  std::vector<std::uintptr_t> pcs;
  const detail::LabelList* labels = nullptr;
  auto operator<=>(const CountedStack&) const = default;
};

// Go's labelMap.String(): {"k1":"v1", "k2":"v2"}, sorted (interned lists are sorted).
void write_labels(std::ostream& out, const detail::LabelList& labels) {
  out << '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out << ", ";
    out << std::quoted(labels[i].first) << ':' << std::quoted(labels[i].second);
  }
  out << '}';
}

void write_record(std::ostream& out, std::size_t count, const CountedStack& stack,
                  SymbolCache& syms) {
  const std::vector<std::uintptr_t>& pcs = stack.pcs;
  out << count << " @";
  for (std::uintptr_t pc : pcs) {
    out << ' ';
    write_hex(out, pc);
  }
  out << "\n";
  if (stack.labels != nullptr) {
    out << "# labels: ";
    write_labels(out, *stack.labels);
    out << "\n";
  }
  for (std::uintptr_t pc : pcs) {
    const symbolize::Symbol& s = syms.at(pc);
    if (hidden(s.function)) continue;
    for (const symbolize::InlinedFrame& f : s.inlined) {
      out << "#\t";
      write_hex(out, pc - 1);
      out << '\t' << display_name(f.function) << "+0x0\t";
      write_position(out, f.file, f.line);
      out << "\n";
    }
    out << "#\t";
    write_hex(out, pc - 1);
    if (!s.function.empty()) {
      out << '\t' << display_name(s.function) << '+';
      write_hex(out, s.function_offset);
      out << '\t';
      write_position(out, s.file, s.line);
    }
    out << "\n";
  }
  out << "\n";
}

// The stack without its innermost runtime frames: a goroutine parks through one of several
// runtime paths (through g0 or a direct switch), which must not split a group.
std::vector<std::uintptr_t> grouping_key(const GoroutineTrace& t, SymbolCache& syms) {
  auto first = std::find_if(t.pcs.begin(), t.pcs.end(),
                            [&](std::uintptr_t pc) { return !hidden(syms.at(pc).function); });
  return std::vector<std::uintptr_t>(first, t.pcs.end());
}

// Go's printCountProfile: "<name> profile: total N", then identical stacks with identical
// labels grouped, largest group first.
void write_count_text(std::string_view name, const std::vector<CountedStack>& stacks,
                      SymbolCache& syms, std::ostream& out) {
  std::map<CountedStack, std::size_t> counts;
  for (const auto& st : stacks) ++counts[st];
  std::vector<std::pair<CountedStack, std::size_t>> groups(counts.begin(), counts.end());
  std::stable_sort(groups.begin(), groups.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  out << name << " profile: total " << stacks.size() << "\n";
  for (const auto& [stack, count] : groups) write_record(out, count, stack, syms);
}

// The same counts as profile.proto: sample type <name>/count, one sample per stack and
// label set (merged by the builder); an empty stack is counted under the synthetic frame
// `unknown`.
void write_count_proto(std::string_view name, const std::vector<CountedStack>& stacks,
                       std::string_view unknown, std::ostream& out) {
  const std::string type(name);
  detail::ProfileBuilder b({{type, "count"}}, {type, "count"}, 1);
  const std::int64_t one = 1;
  for (const auto& st : stacks) {
    if (st.pcs.empty()) {
      b.add_synthetic(unknown, {&one, 1}, st.labels);
    } else {
      b.add(st.pcs, {&one, 1}, st.labels, /*leaf_exact=*/false);
    }
  }
  const std::string gz = detail::gzip(b.encode(0, 0));
  out.write(gz.data(), static_cast<std::streamsize>(gz.size()));
}

void write_goroutine_counts(std::ostream& out, int debug) {
  SymbolCache syms;
  std::vector<CountedStack> stacks;
  for (const GoroutineTrace& t : snapshot())
    stacks.push_back({grouping_key(t, syms), static_cast<const detail::LabelList*>(t.labels)});
  if (debug > 0) return write_count_text("goroutine", stacks, syms, out);
  write_count_proto("goroutine", stacks, "_Running", out);
}

void write_threadcreate(std::ostream& out, int debug) {
  std::vector<CountedStack> stacks;
  for (auto& pcs : runtime::thread_create_records(runtime::current_sched()))
    stacks.push_back({std::move(pcs), nullptr});
  if (debug > 0) {
    SymbolCache syms;
    return write_count_text("threadcreate", stacks, syms, out);
  }
  write_count_proto("threadcreate", stacks, "_Unknown", out);
}

}  // namespace

void write_profile(std::string_view name, std::ostream& out, int debug) {
  if (name == "block" || name == "mutex")
    return detail::write_contention_profile(name == "mutex", out, debug);
  if (name == "threadcreate") return write_threadcreate(out, debug);
  if (name == "heap" || name == "allocs")
    return detail::write_heap_profile(name == "allocs", out, debug);
  if (name != "goroutine")
    throw std::invalid_argument("gort::pprof: unknown profile \"" + std::string(name) +
                                "\" (supported: allocs, block, goroutine, heap, mutex, "
                                "threadcreate)");
  if (debug <= 1) {
    write_goroutine_counts(out, debug);
  } else {
    write_all_stacks(out);
  }
}

std::vector<ProfileInfo> profiles() {
  return {
      ProfileInfo{"allocs", detail::heap_profile_count(),
                  "A sampling of all past memory allocations on the collected heap"},
      ProfileInfo{"block", detail::contention_profile_count(false),
                  "Stack traces that led to blocking on synchronization primitives"},
      ProfileInfo{"goroutine", num_goroutine(),
                  "Stack traces of all current goroutines. Use debug=2 as a query parameter to "
                  "export in the same format as an unrecovered panic."},
      ProfileInfo{"heap", detail::heap_profile_count(),
                  "A sampling of memory allocations of live objects on the collected heap. You "
                  "can specify the gc GET parameter to run GC before taking the heap sample."},
      ProfileInfo{"mutex", detail::contention_profile_count(true),
                  "Stack traces of holders of contended mutexes"},
      ProfileInfo{"threadcreate",
                  static_cast<std::int64_t>(
                      runtime::thread_create_records(runtime::current_sched()).size()),
                  "Stack traces that led to the creation of new OS threads"},
  };
}

}  // namespace gort::pprof

namespace gort::runtime {

// SIGQUIT's dump (sysmon.cpp): the debug=2 text, from sysmon's thread (no goroutine of
// its own, so every goroutine is listed as seen from outside).
void write_goroutine_dump(std::string& out) {
  std::ostringstream text;
  pprof::write_profile("goroutine", text, 2);
  out += text.str();
}

}  // namespace gort::runtime

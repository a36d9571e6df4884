// Records -> Chrome Trace Event JSON (the "JSON Array Format" of Google's Trace Event
// Format document, which Perfetto's and Chromium's viewers import).
//
// Tracks. pid 1 ("Procs") has one thread-track per P; pid 2 ("Threads") one per M, plus
// one per plain thread that emitted something (sysmon, foreign threads); pid 3 holds the
// user's tasks and regions as async slices; pid 4 the GC's phases and pauses. Names come
// from "M" metadata events written at the end. A track's tid is pid * kTidStride + its
// id (P0 is tid 1000000, M3 tid 2000003): never 0, because Perfetto's JSON importer takes
// tid 0 as "no tid" and uses the pid instead (json_trace_tokenizer.cc), which merged P0
// into P1 and M0 into M2; and unique across pids, for viewers that key threads by tid.
//
// Slices. The converter keeps, per M, the slices still open: the P it holds, the
// goroutine it runs, the blocking call it is in. A slice is written as one "X" (complete)
// event when it closes, so nothing dangles if the trace stops mid-way (finish() closes
// the rest) and nesting is by construction: on a P's track the M that holds the P
// encloses the goroutines that run on it; on an M's track the P encloses the goroutines.
// A goroutine slice carries its id and why it ended (yield, a wait reason, exit, a
// blocking call, preemption) in args.
//
// Records arrive in timestamp order across threads (the writer merges each batch), so a
// record may change another M's state: sysmon's ProcSteal closes, at the moment of the
// steal, the P part of the slices of the M it took the P from, which keeps running its
// goroutine on the M's track only.
//
// Unblocks. A goroutine made runnable gets an instant event on the unblocker's track and
// a flow arrow ("s" there, "f" bound to the slice where the goroutine runs next). go
// statements do the same from the creator. Slices that began before the trace started
// (no start record) are drawn from the trace's start.
//
// Perfetto binds a flow event to the innermost slice open on its track when it processes
// it, after sorting by (ts, "X" by decreasing dur, file order): the "s" binds to the
// unblock instant written just before it, the "f" ("bp":"e") to the goroutine slice
// beginning at the same ts. Slices of equal start and end nest in file order, so where
// an M's P slice and its goroutine's slice close at the same instant the P slice is
// written first (it must be the parent).
#include <charconv>
#include <cstdio>

#include "gort/detail/sema.hpp"
#include "trace/trace_internal.hpp"

namespace gort::trace::detail {

namespace {
constexpr int kPidProcs = 1, kPidThreads = 2, kPidUser = 3, kPidGC = 4;
// tid = pid * kTidStride + track id (see the top). Track ids stay below it: Ps and Ms are
// small, plain threads are kThreadTrackBase + n.
constexpr std::int64_t kTidStride = 1'000'000;

// "G12", "M3", "P0". (Not "G" + std::to_string: GCC 12 warns falsely, -Wrestrict, on
// that concatenation once inlined.)
std::string track_name(char kind, std::uint64_t id) {
  char buf[24];
  buf[0] = kind;
  const auto end = std::to_chars(buf + 1, buf + sizeof buf, id).ptr;
  return std::string(buf, end);
}

std::string goroutine_name(std::uint64_t g) {
  return track_name('G', g);
}
}  // namespace

// ---- JSON writing -----------------------------------------------------------------

void JsonConverter::num(std::int64_t v) {
  char buf[24];
  out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void JsonConverter::append_ts(std::int64_t t) {
  // Microseconds with nanosecond precision, without floating point.
  if (t < 0) t = 0;
  num(t / 1000);
  const auto ns = static_cast<int>(t % 1000);
  const char frac[4] = {'.', static_cast<char>('0' + ns / 100),
                        static_cast<char>('0' + ns / 10 % 10), static_cast<char>('0' + ns % 10)};
  out_.append(frac, sizeof frac);
}

void JsonConverter::append_str(std::string_view s) {
  out_ += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out_ += '\\';
      out_ += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out_ += buf;
    } else {
      out_ += c;
    }
  }
  out_ += '"';
}

void JsonConverter::begin_event(char ph, int pid, std::int64_t tid, std::int64_t t,
                                std::string_view name, std::string_view cat) {
  out_ += first_ ? "\n" : ",\n";
  first_ = false;
  out_ += "{\"ph\":\"";
  out_ += ph;
  out_ += "\",\"pid\":";
  num(pid);
  out_ += ",\"tid\":";
  num(pid * kTidStride + tid);
  out_ += ",\"ts\":";
  append_ts(t - t0_);
  out_ += ",\"name\":";
  append_str(name);
  if (!cat.empty()) {
    out_ += ",\"cat\":";
    append_str(cat);
  }
}

void JsonConverter::complete(int pid, std::int64_t tid, std::int64_t start, std::int64_t end,
                             std::string_view name, std::string_view cat, std::uint64_t g,
                             std::string_view why) {
  begin_event('X', pid, tid, start, name, cat);
  out_ += ",\"dur\":";
  append_ts(end - start);
  if (g != 0) {
    out_ += ",\"args\":{\"goroutine\":";
    num(static_cast<std::int64_t>(g));
    out_ += ",\"end\":";
    append_str(why);
    out_ += '}';
  }
  out_ += '}';
}

void JsonConverter::header() {
  out_ += "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
}

// ---- Slices -------------------------------------------------------------------------

void JsonConverter::proc_start(MState& s, int p, std::int64_t t) {
  s.proc_open = true;
  s.proc = p;
  s.proc_start = t;
  ps_.insert(p);
}

void JsonConverter::close_proc(MState& s, int m, std::int64_t t) {
  if (!s.proc_open) return;
  s.proc_open = false;
  complete(kPidProcs, s.proc, s.proc_start, t, track_name('M', static_cast<std::uint64_t>(m)),
           "proc", 0, {});
  complete(kPidThreads, m, s.proc_start, t, track_name('P', static_cast<std::uint64_t>(s.proc)),
           "proc", 0, {});
}

void JsonConverter::close_g_on_p(MState& s, std::int64_t t, std::string_view why) {
  if (s.gp < 0) return;
  complete(kPidProcs, s.gp, s.gp_start, t, goroutine_name(s.g), "goroutine", s.g, why);
  s.gp = -1;
}

void JsonConverter::close_g(MState& s, int m, std::int64_t t, std::string_view why) {
  if (!s.g_open) return;
  s.g_open = false;
  close_g_on_p(s, t, why);
  complete(kPidThreads, m, s.g_start, t, goroutine_name(s.g), "goroutine", s.g, why);
}

void JsonConverter::go_start(MState& s, const Record& r, int p, std::uint64_t g) {
  const bool new_p = p >= 0 && !(s.proc_open && s.proc == p);
  if (new_p) close_proc(s, r.m, r.ts);  // before the goroutine's slice (see the top)
  close_g(s, r.m, r.ts, "unknown");     // a stop this trace missed
  if (new_p) proc_start(s, p, t0_);     // held since before the trace started
  s.g_open = true;
  s.g = g;
  s.g_start = r.ts;
  s.gp = p;
  s.gp_start = r.ts;
  if (p >= 0) ps_.insert(p);
  auto flow = pending_flow_.find(g);
  if (flow == pending_flow_.end()) return;
  begin_event('f', p >= 0 ? kPidProcs : kPidThreads, p >= 0 ? p : r.m, r.ts, "unblock", "flow");
  out_ += ",\"bp\":\"e\",\"id\":";
  num(static_cast<std::int64_t>(flow->second));
  out_ += '}';
  pending_flow_.erase(flow);
}

void JsonConverter::adopt_g(MState& s, const Record& r) {
  if (s.g_open) return;
  // Running since before the trace started.
  s.g_open = true;
  s.g = r.a;
  s.g_start = t0_;
  s.gp = r.p;
  s.gp_start = t0_;
  if (r.p >= 0 && !s.proc_open) proc_start(s, r.p, t0_);
}

void JsonConverter::go_stop(MState& s, const Record& r, std::string_view why) {
  adopt_g(s, r);
  close_g(s, r.m, r.ts, why);
}

void JsonConverter::track_of(const MState& s, int m, int* pid, std::int64_t* tid) const {
  if (s.g_open && s.gp >= 0) {
    *pid = kPidProcs;
    *tid = s.gp;
  } else {
    *pid = kPidThreads;
    *tid = m;
  }
}

void JsonConverter::unblock(MState& s, const Record& r, std::string_view what) {
  int pid = 0;
  std::int64_t tid = 0;
  track_of(s, r.m, &pid, &tid);
  const std::string name = std::string(what) + " " + goroutine_name(r.a);
  begin_event('i', pid, tid, r.ts, name, "unblock");
  out_ += ",\"s\":\"t\",\"args\":{\"goroutine\":";
  num(static_cast<std::int64_t>(r.a));
  out_ += ",\"by\":";
  num(static_cast<std::int64_t>(r.goid));
  out_ += "}}";
  const std::uint64_t id = next_flow_++;
  begin_event('s', pid, tid, r.ts, "unblock", "flow");
  out_ += ",\"id\":";
  num(static_cast<std::int64_t>(id));
  out_ += '}';
  pending_flow_[r.a] = id;
}

// ---- User and GC events ---------------------------------------------------------------

void JsonConverter::user_event(const Record& r, std::string_view text) {
  const std::string task = std::to_string(r.a);
  switch (r.ev) {
    case Ev::kTaskBegin:
      task_names_[r.a] = std::string(text);
      begin_event('b', kPidUser, 0, r.ts, text, "task");
      out_ += ",\"id2\":{\"local\":" + task + "},\"args\":{\"task\":" + task +
              ",\"parent\":" + std::to_string(r.b) + "}}";
      return;
    case Ev::kTaskEnd: {
      auto it = task_names_.find(r.a);
      begin_event('e', kPidUser, 0, r.ts, it != task_names_.end() ? it->second : "task", "task");
      out_ += ",\"id2\":{\"local\":" + task + "}}";
      if (it != task_names_.end()) task_names_.erase(it);
      return;
    }
    case Ev::kRegionBegin:
    case Ev::kRegionEnd:
      begin_event(r.ev == Ev::kRegionBegin ? 'b' : 'e', kPidUser, 0, r.ts, text, "region");
      out_ += ",\"id2\":{\"local\":" + std::to_string(r.goid) +
              "},\"args\":{\"goroutine\":" + std::to_string(r.goid) + ",\"task\":" + task + "}}";
      return;
    default:
      break;
  }
  // kLog: an instant on the goroutine's current track.
  int pid = 0;
  std::int64_t tid = 0;
  track_of(ms_[r.m], r.m, &pid, &tid);
  const std::size_t cat_len = std::min<std::size_t>(r.b, text.size());
  begin_event('i', pid, tid, r.ts, "log: " + std::string(text.substr(0, cat_len)), "log");
  out_ += ",\"s\":\"t\",\"args\":{\"message\":";
  append_str(text.substr(cat_len));
  out_ += ",\"task\":" + task + ",\"goroutine\":" + std::to_string(r.goid) + "}}";
}

void JsonConverter::gc_event(const Record& r, std::string_view text) {
  const bool begin = r.ev == Ev::kGCPhaseBegin || r.ev == Ev::kSTWBegin;
  const int tid = r.ev == Ev::kGCPhaseBegin || r.ev == Ev::kGCPhaseEnd ? 1 : 2;
  begin_event(begin ? 'B' : 'E', kPidGC, tid, r.ts, text, tid == 1 ? "gc" : "stw");
  out_ += '}';
}

// ---- Dispatch -----------------------------------------------------------------------

void JsonConverter::add(const Record& r, std::string_view text) {
  if (r.m >= kThreadTrackBase) threads_.insert(r.m);
  MState& s = ms_[r.m];
  switch (r.ev) {
    case Ev::kGoCreate:
      unblock(s, r, "go");
      return;
    case Ev::kGoStart:
      go_start(s, r, r.p, r.a);
      return;
    case Ev::kGoSched:
      go_stop(s, r, "yield");
      return;
    case Ev::kGoBlock: {
      const std::string why =
          std::string("block: ") +
          gort::detail::wait_reason_string(static_cast<gort::detail::WaitReason>(r.b));
      go_stop(s, r, why);
      return;
    }
    case Ev::kGoEnd:
      go_stop(s, r, "exit");
      return;
    case Ev::kGoUnblock:
      unblock(s, r, "unblock");
      return;
    case Ev::kNetpollUnblock:
      unblock(s, r, "netpoll: unblock");
      return;
    case Ev::kProcStart:
      close_proc(s, r.m, r.ts);
      proc_start(s, r.p, r.ts);
      return;
    case Ev::kProcStop:
      if (!s.proc_open) proc_start(s, r.p, t0_);
      close_proc(s, r.m, r.ts);
      return;
    case Ev::kProcSteal: {
      begin_event('i', kPidProcs, r.p, r.ts, "P taken by sysmon", "proc");
      out_ += ",\"s\":\"t\"}";
      ps_.insert(r.p);
      const auto victim = static_cast<int>(static_cast<std::int64_t>(r.a));
      if (victim < 0) return;
      MState& v = ms_[victim];
      const bool running_on_p = v.g_open && v.gp == r.p;
      // The P slice first (see the top), then the goroutine's (both tracks: the M's P
      // slice ends here and must enclose them); it runs on, on its M's track only.
      if (v.proc_open && v.proc == r.p) close_proc(v, victim, r.ts);
      if (running_on_p) {
        const std::uint64_t g = v.g;
        close_g(v, victim, r.ts, "preempted: P taken by sysmon");
        v.g_open = true;
        v.g = g;
        v.g_start = r.ts;
      }
      return;
    }
    case Ev::kSyscallEnter:
      adopt_g(s, r);
      close_proc(s, r.m, r.ts);  // before the goroutine's slice (see the top)
      close_g(s, r.m, r.ts, "blocking call");
      s.sys_open = true;
      s.sys_g = r.a;
      s.sys_start = r.ts;
      return;
    case Ev::kSyscallExit:
      if (s.sys_open) {
        s.sys_open = false;
        complete(kPidThreads, r.m, s.sys_start, r.ts, "blocking call", "syscall", s.sys_g,
                 "returned");
      }
      return;
    case Ev::kGoRunning:
      if (!(s.proc_open && s.proc == r.p)) {
        close_proc(s, r.m, r.ts);
        proc_start(s, r.p, r.ts);
      }
      if (!(s.g_open && s.g == r.a)) go_start(s, r, r.p, r.a);
      return;
    case Ev::kTaskBegin:
    case Ev::kTaskEnd:
    case Ev::kRegionBegin:
    case Ev::kRegionEnd:
    case Ev::kLog:
      user_event(r, text);
      return;
    case Ev::kGCPhaseBegin:
    case Ev::kGCPhaseEnd:
    case Ev::kSTWBegin:
    case Ev::kSTWEnd:
      gc_event(r, text);
      return;
  }
}

void JsonConverter::finish(std::int64_t t, std::uint64_t lost) {
  if (lost > 0) {  // the writer fell too far behind: say so where it cannot be missed
    begin_event('i', kPidProcs, 0, t, "events lost: " + std::to_string(lost), "trace");
    out_ += ",\"s\":\"g\",\"args\":{\"lost\":";
    num(static_cast<std::int64_t>(lost));
    out_ += "}}";
  }
  for (auto& [m, s] : ms_) {
    close_proc(s, m, t);  // before the goroutine's slice (see the top)
    close_g(s, m, t, "trace stopped");
    if (s.sys_open)
      complete(kPidThreads, m, s.sys_start, t, "blocking call", "syscall", s.sys_g,
               "trace stopped");
  }
  auto meta = [this](int pid, std::int64_t tid, std::string_view what, std::string_view name,
                     std::int64_t sort) {
    begin_event('M', pid, tid, t0_, what, {});
    out_ += ",\"args\":{\"name\":";
    append_str(name);
    out_ += "}}";
    begin_event('M', pid, tid, t0_,
                what == "process_name" ? "process_sort_index" : "thread_sort_index", {});
    out_ += ",\"args\":{\"sort_index\":" + std::to_string(sort) + "}}";
  };
  meta(kPidProcs, 0, "process_name", "Procs", 1);
  meta(kPidThreads, 0, "process_name", "Threads (Ms)", 2);
  meta(kPidUser, 0, "process_name", "Tasks and regions", 3);
  meta(kPidGC, 0, "process_name", "GC", 4);
  meta(kPidGC, 1, "thread_name", "phases", 1);
  meta(kPidGC, 2, "thread_name", "stop the world", 2);
  for (int p : ps_)
    meta(kPidProcs, p, "thread_name", track_name('P', static_cast<std::uint64_t>(p)), p);
  for (const auto& [m, s] : ms_) {
    if (m >= kThreadTrackBase) continue;
    meta(kPidThreads, m, "thread_name", track_name('M', static_cast<std::uint64_t>(m)), m);
  }
  for (int tid : threads_) meta(kPidThreads, tid, "thread_name", "thread (no M)", tid);
  out_ += "\n]}\n";
}

}  // namespace gort::trace::detail

// Internal to src/trace: the binary record the hooks append (trace.cpp) and the converter
// that turns records into Chrome Trace Event JSON (json.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "trace/hooks.hpp"

namespace gort::trace::detail {

// One event as stored in a thread's buffer, followed by text_len bytes of text padded to
// 8 bytes. Fixed-size fields first so a record is read with one memcpy.
struct Record {
  std::int64_t ts = 0;     // os::nanotime()
  std::uint64_t goid = 0;  // the goroutine running on the emitting thread, 0 if none
  std::uint64_t a = 0, b = 0;
  std::int32_t p = -1;  // a P id, -1 for none
  std::int32_t m = 0;   // the emitting M's id; kThreadTrackBase + n for thread n (no M)
  Ev ev = Ev::kGoCreate;
  std::uint8_t pad = 0;
  std::uint16_t text_len = 0;
  std::uint32_t pad2 = 0;
};
static_assert(sizeof(Record) == 48, "records are packed in 8-byte units");

inline constexpr std::int32_t kThreadTrackBase = 100000;  // track ids of non-M threads
inline constexpr std::size_t kMaxText = 1024;             // longer texts are cut

// Converts records, fed in timestamp order, into JSON trace events appended to out().
// Single-threaded (the trace's writer). Layout of the output: docs/design/trace.md.
class JsonConverter {
 public:
  explicit JsonConverter(std::int64_t t0) : t0_(t0) {}
  void header();
  void add(const Record& r, std::string_view text);
  // Closes every open slice at t, notes `lost` dropped events (if any), and writes the
  // track names and the closing bracket.
  void finish(std::int64_t t, std::uint64_t lost);
  std::string& out() { return out_; }

 private:
  // What one M (or thread) is doing, as far as the slices still open are concerned.
  struct MState {
    bool proc_open = false;  // holds a P since proc_start
    int proc = -1;
    std::int64_t proc_start = 0;
    bool g_open = false;  // runs goroutine g since g_start (on P gp since gp_start)
    std::uint64_t g = 0;
    std::int64_t g_start = 0;
    int gp = -1;
    std::int64_t gp_start = 0;
    bool sys_open = false;  // in a blocking call since sys_start
    std::uint64_t sys_g = 0;
    std::int64_t sys_start = 0;
  };

  void go_start(MState& s, const Record& r, int p, std::uint64_t g);
  void go_stop(MState& s, const Record& r, std::string_view why);
  void adopt_g(MState& s, const Record& r);  // a goroutine running since before the trace
  void close_g(MState& s, int m, std::int64_t t, std::string_view why);
  void close_g_on_p(MState& s, std::int64_t t, std::string_view why);
  void proc_start(MState& s, int p, std::int64_t t);
  void close_proc(MState& s, int m, std::int64_t t);
  void unblock(MState& s, const Record& r, std::string_view what);
  void user_event(const Record& r, std::string_view text);
  void gc_event(const Record& r, std::string_view text);

  // Writers of one JSON event. pid: 1 Ps, 2 Ms and threads, 3 user tasks/regions, 4 GC.
  void begin_event(char ph, int pid, std::int64_t tid, std::int64_t t, std::string_view name,
                   std::string_view cat);
  void complete(int pid, std::int64_t tid, std::int64_t start, std::int64_t end,
                std::string_view name, std::string_view cat, std::uint64_t g, std::string_view why);
  void num(std::int64_t v);
  void append_ts(std::int64_t t);
  void append_str(std::string_view s);
  void track_of(const MState& s, int m, int* pid, std::int64_t* tid) const;

  std::int64_t t0_;
  std::string out_;
  bool first_ = true;
  std::map<int, MState> ms_;
  std::unordered_map<std::uint64_t, std::uint64_t> pending_flow_;  // goid -> flow id
  std::unordered_map<std::uint64_t, std::string> task_names_;
  std::uint64_t next_flow_ = 1;
  std::set<int> ps_, threads_;
};

}  // namespace gort::trace::detail

// Execution tracing: Go's runtime/trace for gort programs.
//
// start(out) records what the scheduler does — goroutines created, started, stopped
// (yield, preemption), blocked (with the wait reason) and unblocked, Ps acquired and
// released by Ms, blocking calls, netpoller wake-ups, GC phases — plus the program's own
// tasks, regions and log messages, until stop(). The trace is written to out as Chrome
// Trace Event JSON, which https://ui.perfetto.dev and chrome://tracing open: one track per
// P (the goroutines that ran on it, inside the M that held it), one per M, arrows from
// the goroutine that unblocked another to where that one ran next, and the user regions
// and tasks as async slices. docs/design/trace.md describes the format and the cost.
//
// Events are buffered per thread and converted and written by a background thread while
// the trace runs; out must outlive the trace and is written from that thread. When no
// trace runs, each hook in the runtime costs one relaxed load and a branch.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>

namespace gort::trace {

// trace.Start: starts tracing into out. Throws std::logic_error if a trace is running.
// May be called outside gort::run (events then start with the runtime).
void start(std::ostream& out);
// trace.Stop: stops tracing, writes the rest of the trace and the closing bracket, and
// returns once out holds a complete JSON document. No-op if no trace runs.
void stop();
// Whether a trace is running (trace.IsEnabled).
bool is_enabled() noexcept;

// A logical operation that may span goroutines (trace.Task). Ends at end() or destruction.
class Task {
 public:
  Task() = default;
  Task(Task&& o) noexcept : id_(std::exchange(o.id_, 0)) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      end();
      id_ = std::exchange(o.id_, 0);
    }
    return *this;
  }
  ~Task() { end(); }
  void end() noexcept;
  std::uint64_t id() const noexcept { return id_; }  // 0: no task (not tracing at creation)

 private:
  friend Task new_task(std::string_view type, const Task* parent);
  explicit Task(std::uint64_t id) : id_(id) {}
  std::uint64_t id_ = 0;
};

// trace.NewTask: a task of the given type, as a child of parent (if any).
Task new_task(std::string_view type, const Task* parent = nullptr);

// A time interval of the calling goroutine (trace.Region): from construction to end() or
// destruction, on the same goroutine. Regions nest.
class Region {
 public:
  explicit Region(std::string_view name, const Task* task = nullptr);
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  ~Region() { end(); }
  void end() noexcept;

 private:
  std::string name_;  // empty unless tracing
  std::uint64_t task_ = 0;
  bool open_ = false;
};

// trace.WithRegion: runs f inside a region named name.
template <class F>
decltype(auto) with_region(std::string_view name, F&& f) {
  Region r(name);
  return std::forward<F>(f)();
}
template <class F>
decltype(auto) with_region(const Task& task, std::string_view name, F&& f) {
  Region r(name, &task);
  return std::forward<F>(f)();
}

// trace.Log: a message with a category, attached to task (if any) and the calling
// goroutine.
void log(std::string_view category, std::string_view message, const Task* task = nullptr);

}  // namespace gort::trace

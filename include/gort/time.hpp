// Time: Go's time.Sleep, time.After, time.Timer, time.Ticker and time.AfterFunc.
//
// Timers live in per-P heaps inside the scheduler (src/runtime/timer.cpp): a sleeping
// goroutine is parked, not its thread, and when nothing is runnable an M sleeps exactly
// until the next timer is due. Semantics follow Go 1.19's time package: a timer's channel
// has capacity 1 and a firing that finds it full is dropped; stop() does not drain the
// channel; stop() returning false means the timer had already fired (or been stopped).
#pragma once

#include <chrono>
#include <functional>

#include "gort/chan.hpp"

namespace gort {

// A point in monotonic time (CLOCK_MONOTONIC, the clock timers use).
using Time = std::chrono::steady_clock::time_point;
inline Time now() noexcept {
  return std::chrono::steady_clock::now();
}

// time.Sleep(d): parks the calling goroutine for at least d (d <= 0 returns at once).
// Outside goroutines it blocks the calling thread.
void sleep(std::chrono::nanoseconds d);

namespace detail {
class TimerHandleCore;  // a runtime::TimerCore with a payload (src/time/time.cpp)
}

// time.Timer: sends the time on c() once, d after it is made (or last reset). Movable,
// not copyable. Destroying the handle does not stop the timer (in Go an unreferenced timer
// still fires, which matters for after_func): call stop() for that.
class Timer {
 public:
  // time.NewTimer(d). Throws gort::Panic outside gort::run.
  explicit Timer(std::chrono::nanoseconds d);
  Timer(Timer&& o) noexcept;
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();

  // The channel the time is sent on (capacity 1); the nil channel for after_func timers.
  const Chan<Time>& c() const noexcept { return c_; }
  // Prevents the timer from firing. Returns false if it had already fired or been stopped.
  bool stop();
  // Re-arms the timer to fire d from now. Returns whether it was armed. As in Go, reset a
  // channel timer only when it is stopped or fired and its channel drained.
  bool reset(std::chrono::nanoseconds d);

 private:
  friend Timer after_func(std::chrono::nanoseconds, std::function<void()>);
  Timer(detail::TimerHandleCore* core, Chan<Time> c) noexcept : core_(core), c_(std::move(c)) {}
  detail::TimerHandleCore* core_ = nullptr;
  Chan<Time> c_;
};

// time.After(d): a channel that receives the time once, d from now.
Chan<Time> after(std::chrono::nanoseconds d);

// time.AfterFunc(d, f): runs f in its own goroutine d from now. The returned Timer's
// stop() cancels it if it has not started; its c() is the nil channel.
Timer after_func(std::chrono::nanoseconds d, std::function<void()> f);

// time.Ticker: sends the time on c() every d. Slow receivers miss ticks (capacity 1)
// rather than receiving a burst. Destroying the handle stops it (nothing else could).
class Ticker {
 public:
  // time.NewTicker(d). Throws gort::Panic if d <= 0 ("non-positive interval for
  // NewTicker") or outside gort::run.
  explicit Ticker(std::chrono::nanoseconds d);
  Ticker(Ticker&& o) noexcept;
  Ticker& operator=(Ticker&& o) noexcept;
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  ~Ticker();

  const Chan<Time>& c() const noexcept { return c_; }
  void stop();
  // Stops the ticker and restarts it with period d (first tick d from now). Throws
  // gort::Panic if d <= 0.
  void reset(std::chrono::nanoseconds d);

 private:
  detail::TimerHandleCore* core_ = nullptr;
  Chan<Time> c_;
};

}  // namespace gort

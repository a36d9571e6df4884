// The time package's public face (include/gort/time.hpp) over the runtime's timers
// (runtime/timer.cpp).
//
// sleep() parks the goroutine with a timer that lives on its own stack: the timer is armed
// in the park commit step, on g0, once the goroutine is off its stack, so the firing can
// never ready a goroutine that is still running. Nobody else can stop that timer, so it
// needs no reference counting: the goroutine resumes only after fire() readied it.
//
// Timer, Ticker and after_func share one heap-allocated, reference-counted core holding
// either a channel (capacity 1, a non-blocking send per firing, as Go's sendTime) or a
// function (started in a new goroutine per firing, as Go's goFunc). The handle and each
// heap entry hold a reference, so a handle may be dropped while the timer is pending.
#include <string>
#include <thread>

#include "gort/runtime.hpp"
#include "gort/select.hpp"
#include "gort/time.hpp"
#include "runtime/sched.hpp"
#include "runtime/timer.hpp"

namespace gort {

namespace detail {

class TimerHandleCore final : public runtime::TimerCore {
 public:
  TimerHandleCore(Chan<Time> ch, std::function<void()> fn)
      : TimerCore(/*counted=*/true), ch_(std::move(ch)), fn_(std::move(fn)) {}

  void fire(std::int64_t now) override {
    if (fn_) {
      go(fn_);
      return;
    }
    Time t{std::chrono::duration_cast<Time::duration>(std::chrono::nanoseconds(now))};
    SelectCase send{ch_.core(), &t, true};
    bool ok = false;
    select_run(&send, 1, /*has_default=*/true, &ok);  // full: this tick is dropped
  }

 private:
  ~TimerHandleCore() override = default;
  Chan<Time> ch_;
  std::function<void()> fn_;
};

}  // namespace detail

namespace {

using detail::TimerHandleCore;

runtime::Sched& require_runtime(const char* what) {
  runtime::Sched* s = runtime::current_sched();
  if (s == nullptr) throw Panic(std::string(what) + " used outside gort::run");
  return *s;
}

std::int64_t deadline_after(std::chrono::nanoseconds d) {
  const std::int64_t now = os::nanotime();
  return d.count() <= 0 ? now : runtime::saturating_add(now, d.count());
}

void release(TimerHandleCore*& core) noexcept {
  if (core != nullptr) std::exchange(core, nullptr)->release();
}

struct SleepTimer final : runtime::TimerCore {
  SleepTimer() : TimerCore(/*counted=*/false) {}
  void fire(std::int64_t) override { runtime::ready(g, true); }  // the last touch of *this
  runtime::G* g = nullptr;
  std::int64_t when = 0;
};

bool arm_sleep_timer(void* arg, runtime::G*) {
  auto* t = static_cast<SleepTimer*>(arg);
  runtime::timer_arm(t, t->when, 0);
  return true;
}

}  // namespace

void sleep(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return;
  runtime::G* gp = runtime::current_g();
  if (gp == nullptr) {
    std::this_thread::sleep_for(d);
    return;
  }
  SleepTimer t;
  t.g = gp;
  t.when = deadline_after(d);
  runtime::park(detail::WaitReason::kSleep, arm_sleep_timer, &t);
}

// ---- Timer --------------------------------------------------------------------------

Timer::Timer(std::chrono::nanoseconds d) {
  require_runtime("gort::Timer");
  c_ = make_chan<Time>(1);
  core_ = new TimerHandleCore(c_, nullptr);
  runtime::timer_arm(core_, deadline_after(d), 0);
}

Timer::Timer(Timer&& o) noexcept : core_(std::exchange(o.core_, nullptr)), c_(std::move(o.c_)) {}

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    release(core_);
    core_ = std::exchange(o.core_, nullptr);
    c_ = std::move(o.c_);
  }
  return *this;
}

Timer::~Timer() {
  release(core_);
}

bool Timer::stop() {
  if (core_ == nullptr) throw Panic("gort::Timer: stop on a moved-from timer");
  return runtime::timer_disarm(core_);
}

bool Timer::reset(std::chrono::nanoseconds d) {
  if (core_ == nullptr) throw Panic("gort::Timer: reset on a moved-from timer");
  require_runtime("gort::Timer::reset");
  return runtime::timer_arm(core_, deadline_after(d), 0);
}

Chan<Time> after(std::chrono::nanoseconds d) {
  return Timer(d).c();
}

Timer after_func(std::chrono::nanoseconds d, std::function<void()> f) {
  require_runtime("gort::after_func");
  if (!f) throw Panic("gort::after_func: empty function");
  auto* core = new TimerHandleCore(Chan<Time>(), std::move(f));
  Timer t(core, Chan<Time>());
  runtime::timer_arm(core, deadline_after(d), 0);
  return t;
}

// ---- Ticker -------------------------------------------------------------------------

Ticker::Ticker(std::chrono::nanoseconds d) {
  if (d.count() <= 0) throw Panic("non-positive interval for NewTicker");
  require_runtime("gort::Ticker");
  c_ = make_chan<Time>(1);
  core_ = new TimerHandleCore(c_, nullptr);
  runtime::timer_arm(core_, deadline_after(d), d.count());
}

Ticker::Ticker(Ticker&& o) noexcept : core_(std::exchange(o.core_, nullptr)), c_(std::move(o.c_)) {}

Ticker& Ticker::operator=(Ticker&& o) noexcept {
  if (this != &o) {
    if (core_ != nullptr) runtime::timer_disarm(core_);
    release(core_);
    core_ = std::exchange(o.core_, nullptr);
    c_ = std::move(o.c_);
  }
  return *this;
}

Ticker::~Ticker() {
  if (core_ != nullptr) runtime::timer_disarm(core_);
  release(core_);
}

void Ticker::stop() {
  if (core_ != nullptr) runtime::timer_disarm(core_);
}

void Ticker::reset(std::chrono::nanoseconds d) {
  if (d.count() <= 0) throw Panic("non-positive interval for Ticker.Reset");
  if (core_ == nullptr) throw Panic("gort::Ticker: reset on a moved-from ticker");
  require_runtime("gort::Ticker::reset");
  runtime::timer_arm(core_, deadline_after(d), d.count());
}

}  // namespace gort

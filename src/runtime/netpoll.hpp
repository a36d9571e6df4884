// The netpoller: goroutines waiting for socket readiness (Go's runtime/netpoll.go).
// netpoll.cpp explains the design, the wait protocol and how it meets the scheduler.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/lock.hpp"
#include "runtime/timer.hpp"

namespace gort::runtime {

struct G;
struct Sched;
struct PollDesc;

// What a wait ended with (Go's pollNoError, pollErrClosing, pollErrTimeout).
enum class PollResult { kReady, kClosing, kTimeout };
enum class PollMode : std::uint8_t { kRead, kWrite };

// Registers fd (non-blocking, owned by the caller) with the running runtime's poller.
// Returns null and sets *err to an errno on failure, or to 0 when no runtime runs (the
// caller then blocks its thread in poll(2) instead). Context: any thread.
PollDesc* poll_open(int fd, int* err);
// Marks pd closing and wakes its waiters, which return kClosing (and so do all later
// waits). Call before poll_close; the fd must still be open. Any thread.
void poll_unblock(PollDesc* pd);
// Unregisters the fd and recycles pd. After poll_unblock, once no goroutine waits on pd.
void poll_close(PollDesc* pd);
// Parks the calling goroutine until the fd may be ready for mode (the caller then retries
// its system call: readiness is a hint, EAGAIN may recur), or pd is closing, or mode's
// deadline passed. Context: goroutine.
PollResult poll_wait(PollDesc* pd, PollMode mode);
// Sets mode's deadline: an absolute os::nanotime(), 0 for none; one in the past (or now)
// expires at once. Wakes a waiter that the new deadline times out. Any thread.
void poll_set_deadline(PollDesc* pd, std::int64_t when, PollMode mode);
// Whether mode's deadline has passed (a wait would return kTimeout at once).
bool poll_expired(const PollDesc* pd, PollMode mode);

// ---- Scheduler side (sched.cpp, sysmon.cpp).
// Opens the poller when the runtime starts; fatal if the kernel refuses.
void netpoll_init(Sched& s);
// The runtime exited (its Ms are gone): goroutines still recorded as waiting were
// abandoned, and a later event or close must not hand them out.
void netpoll_shutdown(Sched& s);
// Polls for up to delay_ns (<0: until woken; 0: just look) and stores in out (room for
// max) the goroutines whose sockets became ready; the caller makes them runnable
// (inject_list). Returns how many. Context: an M's g0, or sysmon. Only one thread may
// block (delay != 0) at a time: the scheduler's sleeper.
int netpoll(Sched& s, std::int64_t delay_ns, G** out, int max);
// When the poller was last looked at; 0 while an M blocks in it.
std::int64_t netpoll_last_poll(const Sched& s);
// Ends a blocking netpoll() early (Go's netpollBreak). Any thread.
void netpoll_break(Sched& s);
// Whether any goroutine waits in poll_wait (deadlock detection and pollers consult it).
bool netpoll_has_waiters(const Sched& s);

}  // namespace gort::runtime

// Weighted semaphore with the semantics of golang.org/x/sync/semaphore (see the header).
//
// Design. A count (cur_) and a FIFO list of waiters under a gort::Mutex. An acquire that
// cannot be satisfied at once, or that finds others queued (no barging, so a large
// request is not starved), queues a waiter with its own unbuffered `ready` channel and
// waits in a select on ready and ctx.done(). Granting happens under the lock: the granter
// adds the waiter's weight to cur_, unlinks it and closes `ready`. A waiter whose context
// ends re-takes the lock and looks at `ready` once more: if it was granted meanwhile, it
// gives the weight back (the cancellation wins, as in x/sync); otherwise it unlinks
// itself, and if it was the head, the waiters behind it may now fit.
//
// Invariant: 0 <= cur_ <= size_, and the head waiter (if any) does not fit (size_ - cur_ <
// head.n), except transiently inside a call holding mu_.
#include "gort/semaphore.hpp"

#include <mutex>

#include "gort/runtime.hpp"
#include "gort/select.hpp"

namespace gort {

namespace {
bool is_closed(const Chan<std::monostate>& c) {
  bool closed = false;
  select(on_recv(c, [&](std::optional<std::monostate> v) { closed = !v.has_value(); }),
         on_default([] {}));
  return closed;
}
}  // namespace

Semaphore::Semaphore(std::int64_t n) : size_(n) {
  if (n < 0) throw Panic("semaphore: negative size");
}

std::error_code Semaphore::acquire(const Context& ctx, std::int64_t n) {
  if (n < 0) throw Panic("semaphore: negative acquire");
  const Chan<std::monostate>& done = ctx.done();
  std::unique_lock l(mu_);
  // ctx ending "happened before" this acquire: fail even if n is free (x/sync's choice).
  if (done && is_closed(done)) return ctx.err();
  if (size_ - cur_ >= n && waiters_.empty()) {
    cur_ += n;
    return {};
  }
  if (n > size_) {
    l.unlock();  // can never succeed: wait for the context alone
    done.recv();
    return ctx.err();
  }
  auto self = waiters_.insert(waiters_.end(), Waiter{n, make_chan<std::monostate>()});
  const Chan<std::monostate> ready = self->ready;
  l.unlock();

  bool granted = false;
  select(on_recv(ready, [&](std::optional<std::monostate>) { granted = true; }),
         on_recv(done, [](std::optional<std::monostate>) {}));
  if (granted) {
    if (done && is_closed(done)) {  // granted, but the context ended too: give it back
      release(n);
      return ctx.err();
    }
    return {};
  }
  l.lock();
  if (is_closed(ready)) {  // granted after the context ended: undo, report the context
    cur_ -= n;
    notify_waiters();
  } else {
    const bool was_head = self == waiters_.begin();
    waiters_.erase(self);
    if (was_head && size_ > cur_) notify_waiters();
  }
  return ctx.err();
}

bool Semaphore::try_acquire(std::int64_t n) {
  if (n < 0) throw Panic("semaphore: negative acquire");
  std::scoped_lock l(mu_);
  if (size_ - cur_ >= n && waiters_.empty()) {
    cur_ += n;
    return true;
  }
  return false;
}

void Semaphore::release(std::int64_t n) {
  if (n < 0) throw Panic("semaphore: negative release");
  std::scoped_lock l(mu_);
  if (n > cur_) throw Panic("semaphore: released more than held");
  cur_ -= n;
  notify_waiters();
}

void Semaphore::notify_waiters() {
  while (!waiters_.empty()) {
    Waiter& w = waiters_.front();
    // FIFO: if the head does not fit, nobody behind it is served either.
    if (size_ - cur_ < w.n) break;
    cur_ += w.n;
    w.ready.close();
    waiters_.pop_front();
  }
}

}  // namespace gort

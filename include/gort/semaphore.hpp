// A weighted semaphore: golang.org/x/sync/semaphore's Weighted. Acquirers are served in
// FIFO order (a large request is not starved by a stream of small ones), and an acquire can
// be abandoned through its context.
#pragma once

#include <cstdint>
#include <list>
#include <system_error>

#include "gort/context.hpp"
#include "gort/sync.hpp"

namespace gort {

class Semaphore {
 public:
  // semaphore.NewWeighted(n): n is the total weight available. Throws gort::Panic if n < 0.
  explicit Semaphore(std::int64_t n);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Blocks until n can be taken or ctx is done. Returns an empty error code on success,
  // else ctx.err() (and takes nothing). A ctx already done fails even if n is available.
  // A request larger than the whole semaphore waits for ctx (as in x/sync).
  std::error_code acquire(const Context& ctx, std::int64_t n = 1);
  // Takes n without blocking; false if that would block (or waiters are queued).
  bool try_acquire(std::int64_t n = 1);
  // Gives back n. Throws gort::Panic("semaphore: released more than held") on misuse.
  void release(std::int64_t n = 1);

 private:
  struct Waiter {
    std::int64_t n;
    Chan<std::monostate> ready;  // closed when the waiter has been granted n
  };
  void notify_waiters();  // mu_ held

  const std::int64_t size_;
  Mutex mu_;
  std::int64_t cur_ = 0;
  std::list<Waiter> waiters_;
};

}  // namespace gort

// errgroup (see include/gort/errgroup.hpp). The group's state is shared with its
// goroutines, so the handle may be moved while they run. The limit is a channel used as a
// counting semaphore, as errgroup does: a send takes a slot, a receive frees one.
#include "gort/errgroup.hpp"

#include <mutex>
#include <string>

#include "gort/chan.hpp"
#include "gort/select.hpp"

namespace gort {

struct ErrGroup::State {
  WaitGroup wg;
  Mutex mu;
  bool failed = false;  // guarded by mu
  std::error_code err;  // guarded by mu
  std::exception_ptr exc;
  CancelFunc cancel;
  Chan<std::monostate> limit;  // nil: no limit
  std::int64_t active = 0;     // guarded by mu; for set_limit's check
};

bool ErrGroup::before_go(State& s, bool blocking) {
  if (s.limit) {
    if (blocking) {
      s.limit.send(std::monostate{});
    } else {
      bool took = false;
      select(on_send(s.limit, std::monostate{}, [&] { took = true; }), on_default([] {}));
      if (!took) return false;
    }
  }
  {
    std::scoped_lock l(s.mu);
    ++s.active;
  }
  s.wg.add(1);
  return true;
}

ErrGroup::ErrGroup() : state_(std::make_shared<State>()) {}

std::pair<ErrGroup, Context> ErrGroup::with_context(const Context& parent) {
  ErrGroup g;
  auto [ctx, cancel] = with_cancel(parent);
  g.state_->cancel = cancel;
  return {std::move(g), ctx};
}

void ErrGroup::done(State& s, std::error_code err, std::exception_ptr exc) {
  if (err || exc) {
    bool first = false;
    {
      std::scoped_lock l(s.mu);
      if (!s.failed) {
        s.failed = true;
        s.err = err;
        s.exc = exc;
        first = true;
      }
    }
    if (first) s.cancel();
  }
  {
    std::scoped_lock l(s.mu);
    --s.active;
  }
  if (s.limit) s.limit.recv();
  s.wg.done();
}

std::error_code ErrGroup::wait() {
  state_->wg.wait();
  state_->cancel();
  std::scoped_lock l(state_->mu);
  if (state_->exc) std::rethrow_exception(state_->exc);
  return state_->err;
}

void ErrGroup::set_limit(int n) {
  std::scoped_lock l(state_->mu);
  if (state_->active != 0)
    throw Panic("errgroup: modify limit while " + std::to_string(state_->active) +
                " goroutines in the group are still active");
  state_->limit =
      n < 0 ? Chan<std::monostate>() : make_chan<std::monostate>(static_cast<std::size_t>(n));
}

}  // namespace gort

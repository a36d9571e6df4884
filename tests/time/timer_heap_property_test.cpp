// Property test of the runtime's timer heap against a model: random sequences of arm,
// disarm and run-at-time operations fire exactly the timers the model says, in due-time
// order, and arm/disarm report what the model says was armed. Drives runtime/timer.hpp
// directly with synthetic times an hour ahead, so the scheduler never fires them itself.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <vector>

#include "gort/gort.hpp"
#include "runtime/sched.hpp"
#include "runtime/timer.hpp"

namespace {

using gort::runtime::TimerCore;

struct Fired {
  int id;
  std::int64_t when;  // the run's now: the model checks order through `due`
  std::int64_t due;
};

struct RecordingTimer final : TimerCore {
  RecordingTimer(int i, std::vector<Fired>* l) : TimerCore(true), id(i), log(l) {}
  void fire(std::int64_t now) override { log->push_back(Fired{id, now, due}); }
  int id;
  std::int64_t due = 0;  // maintained by the test: the due time of the current arming
  std::vector<Fired>* log;
};

struct ModelTimer {
  bool armed = false;
  std::int64_t when = 0;
  std::int64_t period = 0;
};

std::int64_t next_period(std::int64_t when, std::int64_t period, std::int64_t now) {
  std::int64_t next = when + period;
  while (next <= now) next += period;
  return next;
}

RC_GTEST_PROP(TimerHeap, MatchesModel, ()) {
  const int n_timers = *rc::gen::inRange(1, 40);
  const auto ops = *rc::gen::container<std::vector<std::tuple<int, int, int, int>>>(
      rc::gen::tuple(rc::gen::inRange(0, 4), rc::gen::inRange(0, n_timers),
                     rc::gen::inRange(0, 1000), rc::gen::inRange(0, 4)));
  std::exception_ptr failure;  // RC_ASSERT throws; a goroutine must not let it escape
  gort::run(
      [&] {
        try {
          using namespace gort::runtime;
          TimerHeap& heap = current_m()->p->timers;
          const std::int64_t base = gort::os::nanotime() + 3'600'000'000'000;
          std::vector<Fired> log;
          std::vector<RecordingTimer*> timers;
          std::vector<ModelTimer> model(static_cast<std::size_t>(n_timers));
          for (int i = 0; i < n_timers; ++i) timers.push_back(new RecordingTimer(i, &log));
          std::int64_t now = base;
          for (const auto& [kind, id, x, p] : ops) {
            const auto i = static_cast<std::size_t>(id);
            if (kind <= 1) {  // arm (twice as likely as the others)
              const std::int64_t when = now + x;
              const std::int64_t period = p == 3 ? 1 + x % 97 : 0;
              timers[i]->due = when;
              RC_ASSERT(timer_arm(timers[i], when, period) == model[i].armed);
              model[i] = ModelTimer{true, when, period};
            } else if (kind == 2) {
              RC_ASSERT(timer_disarm(timers[i]) == model[i].armed);
              model[i].armed = false;
            } else {  // run everything due up to now + x
              now += x;
              log.clear();
              // The model: every armed timer due by `now` fires once, ordered by due time.
              std::multimap<std::int64_t, int> expect;
              for (std::size_t k = 0; k < model.size(); ++k) {
                ModelTimer& mt = model[k];
                if (!mt.armed || mt.when > now) continue;
                expect.emplace(mt.when, static_cast<int>(k));
                if (mt.period > 0) {
                  mt.when = next_period(mt.when, mt.period, now);
                } else {
                  mt.armed = false;
                }
              }
              // Periodic timers re-armed by the run report their next due time from the test.
              const int fired = run_timers(heap, now);
              RC_ASSERT(fired == static_cast<int>(expect.size()));
              RC_ASSERT(log.size() == expect.size());
              std::int64_t prev_due = INT64_MIN;
              std::multimap<std::int64_t, int> got;
              for (const Fired& f : log) {
                RC_ASSERT(f.due >= prev_due);  // due-time order
                prev_due = f.due;
                got.emplace(f.due, f.id);
              }
              for (auto e = expect.begin(), g = got.begin(); e != expect.end(); ++e, ++g) {
                RC_ASSERT(e->first == g->first);
              }
              std::vector<int> ids_e, ids_g;
              for (auto& [w, id2] : expect) ids_e.push_back(id2);
              for (auto& [w, id2] : got) ids_g.push_back(id2);
              std::sort(ids_e.begin(), ids_e.end());
              std::sort(ids_g.begin(), ids_g.end());
              RC_ASSERT(ids_e == ids_g);
              for (std::size_t k = 0; k < model.size(); ++k)
                if (model[k].armed) timers[k]->due = model[k].when;
            }
            // next_when always names the earliest armed timer.
            std::int64_t earliest = 0;
            for (const ModelTimer& mt : model)
              if (mt.armed && (earliest == 0 || mt.when < earliest)) earliest = mt.when;
            RC_ASSERT(heap.next_when() == earliest);
          }
          for (RecordingTimer* t : timers) {
            timer_disarm(t);
            t->release();
          }
        } catch (...) {
          failure = std::current_exception();
        }
      },
      gort::Options{.procs = 1});
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

// A group of goroutines working on subtasks of one task: golang.org/x/sync/errgroup.
//
//   auto [g, ctx] = gort::ErrGroup::with_context(parent);
//   for (auto& url : urls)
//     g.go([&, url]() -> std::error_code { return fetch(ctx, url); });
//   std::error_code err = g.wait();  // the first error, after every goroutine returned
//
// A function passed to go() returns std::error_code (empty: success) or void. An
// exception escaping it is captured instead of crashing the program, counts as the
// group's first error if it comes first, and wait() rethrows it (as errgroup re-panics
// in Wait). The first failure cancels the group's context.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "gort/context.hpp"
#include "gort/runtime.hpp"
#include "gort/sync.hpp"

namespace gort {

class ErrGroup {
 public:
  // A group without a context (errgroup's zero Group).
  ErrGroup();
  // errgroup.WithContext: the returned context is cancelled by the first failure or when
  // wait() returns, whichever comes first.
  static std::pair<ErrGroup, Context> with_context(const Context& parent);

  ErrGroup(ErrGroup&&) noexcept = default;
  ErrGroup& operator=(ErrGroup&&) noexcept = default;
  ErrGroup(const ErrGroup&) = delete;
  ErrGroup& operator=(const ErrGroup&) = delete;
  ~ErrGroup() = default;

  // Runs f in a new goroutine. With a limit set, blocks while `limit` goroutines of the
  // group are active.
  template <class F>
  void go(F f) {
    static_assert(returns_error_or_void<F>, "ErrGroup::go: f must return std::error_code or void");
    before_go(*state_, /*blocking=*/true);
    start(std::move(f));
  }
  // Runs f in a new goroutine only if that would not exceed the limit.
  template <class F>
  bool try_go(F f) {
    static_assert(returns_error_or_void<F>,
                  "ErrGroup::try_go: f must return std::error_code or void");
    if (!before_go(*state_, /*blocking=*/false)) return false;
    start(std::move(f));
    return true;
  }
  // Waits for every goroutine started so far; returns the first error. If the first
  // failure was an exception, rethrows it.
  std::error_code wait();
  // At most n goroutines of the group active at once (n < 0: no limit). Throws
  // gort::Panic if goroutines are active, as errgroup does.
  void set_limit(int n);

  struct State;  // shared with the group's goroutines (src/sync/errgroup.cpp)

 private:
  template <class F>
  static constexpr bool returns_error_or_void =
      std::is_void_v<std::invoke_result_t<F&>> ||
      std::is_convertible_v<std::invoke_result_t<F&>, std::error_code>;

  template <class F>
  void start(F f) {
    gort::go([s = state_, f = std::move(f)]() mutable {
      std::error_code err;
      std::exception_ptr exc;
      try {
        if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
          f();
        } else {
          err = f();
        }
      } catch (...) {
        exc = std::current_exception();
      }
      done(*s, err, exc);
    });
  }
  static bool before_go(State& s, bool blocking);
  static void done(State& s, std::error_code err, std::exception_ptr exc);

  std::shared_ptr<State> state_;
};

}  // namespace gort

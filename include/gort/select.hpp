// Go's select: gort::select(on_recv(ch, f), on_send(ch, v, g), on_default(h)) runs exactly
// one ready case, chosen uniformly at random among the ready ones; blocks when none is
// ready and there is no default; returns the index of the case that ran.
#pragma once

#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "gort/chan.hpp"

namespace gort {

namespace detail {

// Cases refer to the caller's channel handle rather than copying it (no reference-count
// traffic): the handle outlives the select, being an argument of the same full expression.
template <class T, class F>
struct RecvCase {
  const Chan<T>* ch;
  F fn;
  alignas(T) unsigned char storage[sizeof(T)];
  void fill(SelectCase& c) { c = SelectCase{ch->core(), storage, false}; }
  void finish(bool ok) {
    if (!ok) {
      fn(std::optional<T>());
      return;
    }
    T* p = std::launder(reinterpret_cast<T*>(storage));
    std::optional<T> v(std::move(*p));
    p->~T();
    fn(std::move(v));
  }
};

template <class T, class F>
struct SendCase {
  const Chan<T>* ch;
  T value;
  F fn;
  void fill(SelectCase& c) { c = SelectCase{ch->core(), &value, true}; }
  void finish(bool) { fn(); }
};

template <class F>
struct DefaultCase {
  F fn;
};

template <class C>
struct IsDefault : std::false_type {};
template <class F>
struct IsDefault<DefaultCase<F>> : std::true_type {};

}  // namespace detail

// case v, ok := <-ch:  f receives std::optional<T> (nullopt: closed).
template <class T, class F>
detail::RecvCase<T, std::decay_t<F>> on_recv(const Chan<T>& ch, F&& f) {
  return {&ch, std::forward<F>(f), {}};
}
// case ch <- v:  the value is moved in; if another case runs, it is destroyed.
template <class T, class V, class F>
detail::SendCase<T, std::decay_t<F>> on_send(const Chan<T>& ch, V&& v, F&& f) {
  return {&ch, T(std::forward<V>(v)), std::forward<F>(f)};
}
// default:
template <class F>
detail::DefaultCase<std::decay_t<F>> on_default(F&& f) {
  return {std::forward<F>(f)};
}

namespace detail {
template <bool kHasDefault, class... Cases>
std::size_t select_cases(Cases&... cases);
}  // namespace detail

template <class... Cases>
std::size_t select(Cases&&... cases) {
  constexpr std::size_t kDefaults =
      (std::size_t{0} + ... + detail::IsDefault<std::decay_t<Cases>>::value);
  static_assert(kDefaults <= 1, "gort::select: at most one on_default");
  constexpr std::size_t kN = sizeof...(Cases);
  if constexpr (kN == 0) {
    bool unused = false;
    return detail::select_run(nullptr, 0, false, &unused);  // select {}: blocks forever
  } else {
    return detail::select_cases<kDefaults == 1>(cases...);
  }
}

namespace detail {
template <bool kHasDefault, class... Cases>
std::size_t select_cases(Cases&... cases) {
  std::tuple<Cases&...> all(cases...);
  constexpr std::size_t kN = sizeof...(Cases);
  SelectCase raw[kN];
  std::size_t to_user[kN];  // raw index -> argument index
  std::size_t default_index = kN;
  std::size_t n = 0;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          auto& c = std::get<I>(all);
          if constexpr (IsDefault<std::decay_t<decltype(c)>>::value) {
            default_index = I;
          } else {
            c.fill(raw[n]);
            to_user[n++] = I;
          }
        }(),
        ...);
  }
  (std::make_index_sequence<kN>{});
  bool ok = false;
  const std::size_t chosen = select_run(raw, n, kHasDefault, &ok);
  const std::size_t user = chosen == n ? default_index : to_user[chosen];
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          if (I != user) return;
          auto& c = std::get<I>(all);
          if constexpr (IsDefault<std::decay_t<decltype(c)>>::value) {
            c.fn();
          } else {
            c.finish(ok);
          }
        }(),
        ...);
  }
  (std::make_index_sequence<kN>{});
  return user;
}
}  // namespace detail

}  // namespace gort

// Context: Go's context package. A Context carries a cancellation signal, an optional
// deadline and request-scoped values across goroutines; cancelling a context cancels
// every context derived from it.
//
//   auto [ctx, cancel] = gort::with_timeout(gort::background(), 100ms);
//   gort::select(gort::on_recv(ctx.done(), [&](auto) { /* ctx.err() says why */ }),
//                gort::on_recv(results, [&](std::optional<int> v) { ... }));
//   cancel();  // release the context's resources (its timer) as soon as it is not needed
//
// Unlike Go, a context nobody references any more is freed even if cancel was never
// called: its timer is stopped and its parent forgets it (C++ has no collector to wait for).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "gort/chan.hpp"
#include "gort/time.hpp"

namespace gort {

// Why a context was cancelled: context.Canceled and context.DeadlineExceeded. Messages are
// Go's ("context canceled", "context deadline exceeded").
enum class ContextError { canceled = 1, deadline_exceeded = 2 };
const std::error_category& context_category() noexcept;
inline std::error_code make_error_code(ContextError e) noexcept {
  return {static_cast<int>(e), context_category()};
}

}  // namespace gort

template <>
struct std::is_error_code_enum<gort::ContextError> : std::true_type {};

namespace gort {

namespace detail {
class ContextNode;
}

// A key for Context values. Keys compare by identity (address), as Go's unexported key
// types do, so two packages cannot collide: declare one per value, e.g.
//   inline const gort::ContextKey<std::string> kRequestId;
template <class T>
class ContextKey {
 public:
  ContextKey() = default;
  ContextKey(const ContextKey&) = delete;
  ContextKey& operator=(const ContextKey&) = delete;
};

class Context {
 public:
  // The background context: never cancelled, no deadline, no values.
  Context() = default;

  // A channel closed when the context is cancelled; the nil channel (never ready) for
  // contexts that can never be cancelled. Usable in select.
  const Chan<std::monostate>& done() const noexcept;
  // Empty while not cancelled; then ContextError::canceled or ::deadline_exceeded.
  std::error_code err() const;
  // The time after which the context is cancelled, if any.
  std::optional<Time> deadline() const;
  // The value stored under key by the nearest with_value, or null.
  template <class T>
  const T* value(const ContextKey<T>& key) const {
    return static_cast<const T*>(find_value(&key));
  }

 private:
  friend class detail::ContextNode;
  explicit Context(std::shared_ptr<detail::ContextNode> n) noexcept : node_(std::move(n)) {}
  const void* find_value(const void* key) const noexcept;
  std::shared_ptr<detail::ContextNode> node_;
};

// Cancels its context (and everything derived from it) with ContextError::canceled;
// idempotent, safe from any goroutine. Keeps the context alive while held.
class CancelFunc {
 public:
  CancelFunc() = default;
  void operator()() const;

 private:
  friend class detail::ContextNode;
  explicit CancelFunc(std::shared_ptr<detail::ContextNode> n) noexcept : node_(std::move(n)) {}
  std::shared_ptr<detail::ContextNode> node_;
};

// context.Background() and context.TODO().
Context background();
Context todo();
// context.WithCancel(parent).
std::pair<Context, CancelFunc> with_cancel(const Context& parent);
// context.WithDeadline(parent, t): also cancelled (deadline_exceeded) at t. If parent's
// deadline is earlier, the child simply inherits it. Throws gort::Panic outside gort::run
// when a timer is needed.
std::pair<Context, CancelFunc> with_deadline(const Context& parent, Time t);
// context.WithTimeout(parent, d) == with_deadline(parent, now() + d).
std::pair<Context, CancelFunc> with_timeout(const Context& parent, std::chrono::nanoseconds d);

Context with_value_erased(const Context& parent, const void* key,
                          std::shared_ptr<const void> value);
// context.WithValue(parent, key, value).
template <class T, class V>
Context with_value(const Context& parent, const ContextKey<T>& key, V&& value) {
  return with_value_erased(parent, &key, std::make_shared<const T>(std::forward<V>(value)));
}

}  // namespace gort

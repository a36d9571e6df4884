// Type erasure for goroutine bodies. Users never name these.
#pragma once

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace gort::detail {

// A goroutine's body. The runtime constructs it in storage it owns (usually the top of the
// new goroutine's own stack, so a small goroutine costs one allocation-free page), runs it
// once on the goroutine, then destroys it on the goroutine before the goroutine exits.
class Closure {
 public:
  virtual void run() = 0;

 protected:
  virtual ~Closure() = default;  // destroyed through destroy_closure(), never through delete
  friend void destroy_closure(Closure* c) noexcept;
  virtual void destroy() noexcept = 0;
};

inline void destroy_closure(Closure* c) noexcept {
  c->destroy();
}

// std::thread's rule: f and args are decay-copied (or moved) in, and invoked as rvalues.
template <class F, class... Args>
class BoundCall final : public Closure {
 public:
  template <class F2, class... A2>
  explicit BoundCall(F2&& f, A2&&... args)
      : f_(std::forward<F2>(f)), args_(std::forward<A2>(args)...) {}
  void run() override { std::apply(std::move(f_), std::move(args_)); }

 private:
  void destroy() noexcept override { this->~BoundCall(); }
  F f_;
  std::tuple<Args...> args_;
};

// Storage for a new goroutine's closure, handed out by the runtime.
struct SpawnSlot {
  void* storage;  // sizeof/alignof the closure; owned by the runtime
  void* g;        // the new goroutine (opaque)
};

SpawnSlot spawn_begin(std::size_t size, std::size_t align);
void spawn_commit(SpawnSlot slot, Closure* body) noexcept;
void spawn_abort(SpawnSlot slot) noexcept;

}  // namespace gort::detail

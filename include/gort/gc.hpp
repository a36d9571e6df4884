// A garbage-collected heap for C++ objects: Go's allocator and concurrent tri-color
// mark-sweep collector (docs/design/gc.md).
//
//   struct Node {
//     gort::gc::Member<Node> left, right;
//     int value = 0;
//     void trace(gort::gc::Visitor& v) const { v.visit(left); v.visit(right); }
//   };
//   gort::gc::Ptr<Node> n = gort::gc::make<Node>();
//   n->left = gort::gc::make<Node>();      // a Member: traced through Node::trace
//
// What keeps an object alive (the roots, and the edges the collector follows):
//   * a Ptr<T>, wherever it lives: on a goroutine stack, in a std::vector, in a global, in
//     an ordinary heap object. A Ptr that is not on the stack of the goroutine that made it
//     holds a count on the object; one on a goroutine stack is found by scanning that stack.
//   * any word on a goroutine's stack (or in its saved registers) that points into the
//     object: goroutine stacks are scanned conservatively, so raw T* and T& held by a
//     goroutine keep the object alive too;
//   * a Member<T> inside a collected object, if the object names it in trace().
// Not roots: raw pointers in memory that is not a goroutine stack (malloc'd memory,
// globals, the stacks of threads that are not goroutines): hold a Ptr there instead.
//
// Rules for collected types:
//   * trace() visits every Member of the object and nothing else; it runs on a collector
//     thread concurrently with the program, so it must not read containers the program may
//     resize (a std::vector<Member<T>> field is not safe to trace; use fixed fields or
//     arrays of Members).
//   * Inside a collected object, refer to collected objects through Member, not Ptr: a Ptr
//     field is a root, so a cycle through Ptr fields is never collected.
//   * alignof(T) <= 8.
//   * Destructors run when the object is found unreachable, on the thread that sweeps its
//     span (the collector's background thread, or a goroutine that allocates). They may
//     use ordinary memory and must not dereference Members (the objects they point to may
//     be dead and destroyed in the same cycle), allocate on the collected heap, or block.
//   * A finalizer (set_finalizer) runs once, on the finalizer thread, after the object
//     becomes unreachable; the object and everything it references stay valid during the
//     call, and it is destroyed in a later cycle if the finalizer did not make it reachable
//     again (Go's runtime.SetFinalizer).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

namespace gort::gc {

class Visitor;
template <class T>
class Ptr;
template <class T>
class Member;

namespace detail {

// What the collector knows about a collected type.
struct TypeInfo {
  void (*trace)(const void* obj, Visitor& v);  // null: the type has no Members
  void (*destroy)(void* obj) noexcept;         // null: trivially destructible
  const char* name;
  std::uint32_t size;  // sizeof the type: the bytes a scan of one object counts as work
};

// Registers a type once (thread-safe); returns its id, which the heap records per object.
std::uint32_t register_type(const TypeInfo* info);

// The registration itself, out of line, so that type_id's check of its static is inlined
// into every make<T>() (a call per allocation before: 2% of binary-trees' instructions).
template <class T>
__attribute__((noinline)) std::uint32_t register_type_of() {
  static const TypeInfo info{
      [] {
        if constexpr (requires(const T& t, Visitor& v) { t.trace(v); }) {
          return +[](const void* obj, Visitor& v) { static_cast<const T*>(obj)->trace(v); };
        } else {
          return static_cast<void (*)(const void*, Visitor&)>(nullptr);
        }
      }(),
      std::is_trivially_destructible_v<T> ? nullptr
                                          : +[](void* obj) noexcept { static_cast<T*>(obj)->~T(); },
      __PRETTY_FUNCTION__, static_cast<std::uint32_t>(sizeof(T))};
  return register_type(&info);
}

template <class T>
inline std::uint32_t type_id() {
  static const std::uint32_t id = register_type_of<T>();
  return id;
}

// Allocates an uninitialised object of `size` bytes (zero-filled) of the given type;
// has_destructor says whether the type's TypeInfo has a destroy function (known
// at the call, so the allocation need not look it up). Throws std::bad_alloc when the
// heap is exhausted.
void* allocate(std::size_t size, std::uint32_t type, bool has_destructor);
// The constructor threw: the object is left as garbage without a destructor.
void abandon(void* obj) noexcept;

// Reference counting of Ptrs that do not live on their goroutine's stack (see the top of
// this file). hold() decides whether `where` (the Ptr's own address) needs a count and
// takes it; both shade the object while the collector marks.
bool hold(const void* where, const void* obj) noexcept;
void retain(const void* obj) noexcept;  // takes a count (or adopts make()'s, roots.cpp)
void unhold(const void* obj) noexcept;
// A Ptr on a stack, at `where`, changed to obj: shades it while the collector marks if
// `where` is another goroutine's stack (one the collector may have scanned already).
void note_stack_store(const void* where, const void* obj) noexcept;
// Member assignment with the write barrier (slot is accessed through std::atomic_ref).
void store_member(const void** slot, const void* obj) noexcept;
// The collector's phase (src/gc/internal.hpp: 0 while no cycle marks), for Member's
// constructors only (Member::init_to).
extern std::atomic<std::uint32_t> g_phase;

void set_finalizer(const void* obj, std::function<void(void*)> fn);
}  // namespace detail

// Visits the Members of a collected object (see T::trace).
class Visitor {
 public:
  template <class T>
  void visit(const Member<T>& m) {
    if (const void* p = m.raw()) mark(p);
  }
  template <class T>
  void visit(const Ptr<T>&) {}  // a Ptr is a root already
  virtual void mark(const void* obj) = 0;

 protected:
  ~Visitor() = default;
};

// A strong reference usable anywhere (see the top of this file). The low bit of the word
// records whether this Ptr holds a count on the object.
template <class T>
class Ptr {
 public:
  Ptr() noexcept = default;
  Ptr(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): as T* converts
  Ptr(const Ptr& o) noexcept { reset_to(o.get()); }
  Ptr(Ptr&& o) noexcept { take(std::move(o)); }
  template <class U>
  requires std::is_convertible_v<U*, T*> Ptr(const Ptr<U>& o)
  noexcept {  // NOLINT(google-explicit-constructor)
    reset_to(static_cast<T*>(o.get()));
  }
  explicit Ptr(const Member<T>& m) noexcept { reset_to(m.get()); }
  ~Ptr() {
    release();
    // Goroutine stacks are scanned conservatively: left in a dead frame slot, the address
    // would keep its object alive until the slot is reused (binary-trees held each
    // finished tree through the loop's temporary, and cycles marked a third more). The
    // store must happen although the object dies: the compiler drops a plain one.
    asm volatile("" : : "m"(bits_));
  }

  Ptr& operator=(const Ptr& o) noexcept {
    if (this != &o) assign(o.get());
    return *this;
  }
  Ptr& operator=(Ptr&& o) noexcept {
    if (this != &o) {
      assign(o.get());
      o.assign(nullptr);
    }
    return *this;
  }
  Ptr& operator=(std::nullptr_t) noexcept {
    assign(nullptr);
    return *this;
  }

  T* get() const noexcept { return reinterpret_cast<T*>(bits_ & ~std::uintptr_t{1}); }
  T* operator->() const noexcept { return get(); }
  T& operator*() const noexcept { return *get(); }
  explicit operator bool() const noexcept { return get() != nullptr; }
  friend bool operator==(const Ptr& a, const Ptr& b) noexcept { return a.get() == b.get(); }
  friend bool operator==(const Ptr& a, std::nullptr_t) noexcept { return a.get() == nullptr; }

  // Adopts an object just made by make<T> (private use).
  static Ptr adopt(T* obj) noexcept {
    Ptr p;
    p.reset_to(obj);
    return p;
  }

 private:
  template <class U>
  friend class Ptr;

  bool holds() const noexcept { return (bits_ & 1) != 0; }
  // Constructor side: this Ptr has no value yet.
  void reset_to(T* obj) noexcept {
    if (obj == nullptr) {
      bits_ = 0;
      return;
    }
    bits_ = reinterpret_cast<std::uintptr_t>(obj) | (detail::hold(this, obj) ? 1 : 0);
  }
  void take(Ptr&& o) noexcept {
    if (o.holds()) {  // a counted Ptr moves its count along only to another counted place
      T* obj = o.get();
      o.bits_ = 0;
      reset_to(obj);
      detail::unhold(obj);
    } else {
      reset_to(o.get());
      o.bits_ = 0;
    }
  }
  void assign(T* obj) noexcept {
    T* old = get();
    if (old == obj) return;
    if (holds()) {
      if (obj != nullptr) detail::retain(obj);
      bits_ = reinterpret_cast<std::uintptr_t>(obj) | (obj != nullptr ? 1 : 0);
      if (old != nullptr) detail::unhold(old);
    } else if (bits_ == 0 && obj != nullptr) {
      reset_to(obj);
    } else {
      if (obj != nullptr) detail::note_stack_store(this, obj);
      bits_ = reinterpret_cast<std::uintptr_t>(obj);
    }
  }
  void release() noexcept {
    if (holds()) detail::unhold(get());
    bits_ = 0;
  }

  std::uintptr_t bits_ = 0;
};

// A reference stored inside a collected object, traced through the object's trace().
// The pointer is accessed only atomically (std::atomic_ref), even when a Member is
// constructed: the collector may trace an object whose constructor is still running.
template <class T>
class Member {
 public:
  Member() noexcept { init(); }
  Member(std::nullptr_t) noexcept { init(); }  // NOLINT(google-explicit-constructor)
  Member(const Ptr<T>& p) noexcept {           // NOLINT(google-explicit-constructor)
    init_to(p.get());
  }
  Member(const Member& o) noexcept { init_to(o.get()); }
  ~Member() = default;

  Member& operator=(const Ptr<T>& p) noexcept {
    set(p.get());
    return *this;
  }
  Member& operator=(const Member& o) noexcept {
    if (this != &o) set(o.get());
    return *this;
  }
  Member& operator=(std::nullptr_t) noexcept {
    set(nullptr);
    return *this;
  }

  // Acquire (pairs with the release in store_member): an object reached through a Member
  // is seen fully constructed, even when another goroutine stored it without other
  // synchronisation. Both are plain moves on x86.
  T* get() const noexcept { return static_cast<T*>(const_cast<void*>(raw())); }
  T* operator->() const noexcept { return get(); }
  T& operator*() const noexcept { return *get(); }
  explicit operator bool() const noexcept { return get() != nullptr; }
  friend bool operator==(const Member& a, const Member& b) noexcept { return a.get() == b.get(); }
  friend bool operator==(const Member& a, std::nullptr_t) noexcept { return a.get() == nullptr; }
  const void* raw() const noexcept {
    return std::atomic_ref<const void*>(const_cast<const void*&>(slot_))
        .load(std::memory_order_acquire);
  }

 private:
  void init() noexcept {
    std::atomic_ref<const void*>(slot_).store(nullptr, std::memory_order_relaxed);
  }
  void set(T* obj) noexcept { detail::store_member(&slot_, obj); }
  // A constructor's store. While no cycle marks it needs no barrier, and no busy section
  // either: even if marking starts before the store lands, the slot held nothing to shade
  // (the deletion half), and what it stores is found by marking anyway (the insertion
  // half): it is held meanwhile by the constructor's caller, in a Ptr or a stack word that
  // the stack scan or the counted roots reach, or in a Member of an object that is. The
  // phase read cannot be older than the allocation's (coherence): an object allocated
  // black is stored into with the barrier. (docs/design/gc.md, "Initializing stores";
  // binary-trees: two calls of store_member per node saved, 13% of its instructions.)
  void init_to(T* obj) noexcept {
    if (obj != nullptr && detail::g_phase.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      init();
      set(obj);
      return;
    }
    std::atomic_ref<const void*>(slot_).store(obj, std::memory_order_release);
  }
  alignas(std::atomic_ref<const void*>::required_alignment) const void* slot_;
};

// new(T) on the collected heap.
template <class T, class... Args>
Ptr<T> make(Args&&... args) {
  static_assert(alignof(T) <= 8, "gort::gc::make: collected types must have alignof(T) <= 8");
  static_assert(!std::is_array_v<T>, "gort::gc::make: arrays are not supported");
  void* mem =
      detail::allocate(sizeof(T), detail::type_id<T>(), !std::is_trivially_destructible_v<T>);
  T* obj;
  try {
#if defined(__SANITIZE_THREAD__)
    // Cells come zeroed. T() would zero the object again with plain stores, which a
    // marker that reached the cell through a conservative stack root may read (atomically)
    // meanwhile: harmless, but a data race to TSan. Default-initialization skips that pass.
    if constexpr (sizeof...(Args) == 0) {
      obj = ::new (mem) T;
    } else {
      obj = ::new (mem) T(std::forward<Args>(args)...);
    }
#else
    obj = ::new (mem) T(std::forward<Args>(args)...);
#endif
  } catch (...) {
    detail::abandon(mem);
    throw;
  }
  return Ptr<T>::adopt(obj);
}

// runtime.SetFinalizer(obj, fn): fn(obj) runs once, on the finalizer thread, after obj
// becomes unreachable. A null fn removes the finalizer.
template <class T, class F>
void set_finalizer(const Ptr<T>& obj, F fn) {
  if constexpr (std::is_same_v<std::decay_t<F>, std::nullptr_t>) {
    detail::set_finalizer(obj.get(), nullptr);
  } else {
    detail::set_finalizer(obj.get(), [fn = std::move(fn)](void* p) { fn(static_cast<T*>(p)); });
  }
}

// runtime.GC(): runs a full cycle (mark and sweep) and returns when it is done.
void collect();
// debug.SetGCPercent: returns the previous value; negative turns the collector off ($GOGC
// sets the initial value, "off" too).
int set_percent(int percent);
// debug.SetMemoryLimit: a soft limit on the heap in bytes; returns the previous one
// ($GOMEMLIMIT sets the initial value; INT64_MAX: none).
std::int64_t set_memory_limit(std::int64_t bytes);

// A subset of runtime.MemStats.
struct Stats {
  std::uint64_t num_gc = 0;         // completed cycles
  std::uint64_t num_forced_gc = 0;  // cycles started by collect()
  std::uint64_t heap_alloc = 0;     // bytes of live and not yet swept objects
  std::uint64_t heap_objects = 0;   // objects live or not yet swept
  std::uint64_t heap_sys = 0;       // bytes of address space the heap uses
  std::uint64_t heap_released = 0;  // bytes of that returned to the OS
  std::uint64_t heap_inuse = 0;     // bytes in spans with at least one object
  std::uint64_t next_gc = 0;        // heap goal of the next cycle
  std::uint64_t total_alloc = 0;    // bytes allocated, ever
  std::uint64_t mallocs = 0;        // objects allocated, ever
  std::uint64_t frees = 0;          // objects freed, ever
  // Pauses: the collector's phase changes, per cycle (Go stops the world for them). gort
  // stops no goroutine: a pause is the publication of a new phase to every thread (a
  // membarrier, which interrupts running threads), at mark start and at mark end
  // (docs/design/gc.md, "What counts as a pause").
  std::uint64_t pause_total_ns = 0;
  std::uint64_t pause_max_ns = 0;
  std::uint64_t pause_ns[256] = {};  // recent cycles, as Go's: cycle k at [(k + 255) % 256]
  // After publishing a phase, the collector waits for the gc operations that started
  // before it to end (an allocation or a barrier that a thread was running then), and
  // after the last one it collects every allocation cache (waiting for an owner that is
  // refilling its cache). Nothing waits for the collector meanwhile: these delay the
  // cycle, not the program. Per cycle, both phase changes together.
  std::uint64_t handshake_wait_total_ns = 0;
  std::uint64_t handshake_wait_max_ns = 0;
  // Wall time of the mark phases, and the background marking in them: the collector's
  // CPU time plus the Ps' fractional marking, within a quarter of GOMAXPROCS (Go's
  // dedicated and fractional workers). mark_fractional_ns is the Ps' part of it; the Ps'
  // marking while they had nothing else to run (Go's idle workers) is mark_idle_ns, apart
  // (it counts towards the quarter: fractional marking makes up only what it leaves).
  // mark_assist_ns: time allocating goroutines spent in mark assists (Go's
  // /gc/cpu/assist), waits past the goal included.
  std::uint64_t mark_ns = 0;
  std::uint64_t mark_background_cpu_ns = 0;
  std::uint64_t mark_fractional_ns = 0;
  std::uint64_t mark_idle_ns = 0;
  std::uint64_t mark_assist_ns = 0;
  // The longest time one goroutine was stopped for its stack scan.
  std::uint64_t stack_stop_max_ns = 0;
  std::uint64_t last_gc_ns = 0;  // end of the last cycle (CLOCK_REALTIME)
  double gc_cpu_fraction = 0;    // CPU time of the collector / elapsed CPU time
};
Stats stats();

}  // namespace gort::gc

#include "runtime/stack.hpp"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

#include "os/os.hpp"
#include "runtime/fiber_sanitizer.hpp"

namespace gort::runtime {

namespace {
std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}
}  // namespace

std::size_t resolve_stack_size(std::size_t requested) {
  if (requested == 0) {
    requested = StackArena::kDefaultStackSize;
    if (const char* env = std::getenv("GORT_STACK_SIZE")) {
      char* end = nullptr;
      unsigned long long v = std::strtoull(env, &end, 10);
      if (end != env && v > 0) requested = static_cast<std::size_t>(v);
    }
  }
  if (requested < StackArena::kMinStackSize) requested = StackArena::kMinStackSize;
  return round_up(requested, os::page_size());
}

StackArena::StackArena(std::size_t stack_size)
    : stack_size_(stack_size), slot_size_(stack_size + kGuardSize) {}

StackArena::~StackArena() {
  LockGuard g(lock_);
  for (auto [p, n] : slabs_) {
    // ASan keeps shadow for addresses, not mappings: leave no poison for the next mmap.
    san::asan_unpoison(p, n);
    os::release(p, n);
  }
}

std::size_t StackArena::slab_count() const {
  LockGuard g(lock_);
  return slabs_.size();
}

Stack StackArena::carve() {
  LockGuard g(lock_);
  if (next_ == end_) {
    const std::size_t bytes = slot_size_ * kSlotsPerSlab;
    void* slab = os::reserve_lazy(bytes);
    if (slab == nullptr)
      throw std::system_error(errno, std::generic_category(),
                              "gort: cannot reserve " + std::to_string(bytes) +
                                  " bytes of address space for goroutine stacks");
    slabs_.emplace_back(slab, bytes);
    next_ = reinterpret_cast<std::uintptr_t>(slab);
    end_ = next_ + bytes;
  }
  const std::uintptr_t base = next_;
  if (!os::install_guard(reinterpret_cast<void*>(base), kGuardSize))
    throw std::system_error(errno, std::generic_category(),
                            "gort: cannot install a goroutine stack guard (with mprotect "
                            "guards, vm.max_map_count limits the number of goroutines)");
  next_ += slot_size_;
  return Stack{base + kGuardSize, base + slot_size_};
}

void StackArena::trim(const Stack& s) noexcept {
  const std::size_t page = os::page_size();
  const std::uintptr_t keep_from = (s.hi - kKeepBytes) & ~(page - 1);
  if (keep_from <= s.lo) return;
  os::decommit(reinterpret_cast<void*>(s.lo), keep_from - s.lo);
}

}  // namespace gort::runtime

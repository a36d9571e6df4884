// Preserving errno across runtime work done on a goroutine's stack.
//
// errno is goroutine-local state of the *user's* code (runtime.hpp): the runtime saves and
// restores it at every switch. But the runtime also runs on goroutine stacks between
// switches (a contended lock's futex wait, a stack carved by go(), a thread started to run
// new work), and a system call there that fails harmlessly (futex EAGAIN, an madvise probe's
// EINVAL) would leave its errno behind in the goroutine's. Such code keeps errno with this
// guard.
#pragma once

#include <cerrno>

namespace gort::base {

class KeepErrno {
 public:
  KeepErrno() noexcept : saved_(errno) {}
  ~KeepErrno() { errno = saved_; }
  KeepErrno(const KeepErrno&) = delete;
  KeepErrno& operator=(const KeepErrno&) = delete;

 private:
  int saved_;
};

}  // namespace gort::base

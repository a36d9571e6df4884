// A self-checking program for architectures the machine does not run natively (aarch64
// under qemu-user in tools/test.sh): the context switch, the scheduler across 2 Ps,
// errno across migrations, thread locking, and the stack guard. GoogleTest is not
// cross-built, so this prints its own "N passed, M failed" line.
//   arch_smoke            run the checks
//   arch_smoke overflow   overflow a goroutine stack (must print "fatal error: stack overflow")
//   arch_smoke panic      throw out of a goroutine (must print "panic: ...")
#include <sys/syscall.h>
#include <unistd.h>
#include <gort/gort.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "../test_util.hpp"

namespace {

int g_passed = 0, g_failed = 0;

void check(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
  (ok ? g_passed : g_failed)++;
}

__attribute__((noinline)) int tid() {
  return static_cast<int>(syscall(SYS_gettid));
}
__attribute__((noinline)) void set_errno(int v) {
  errno = v;
}
__attribute__((noinline)) int get_errno() {
  return errno;
}

// Callee-saved floating-point registers must survive a switch.
__attribute__((noinline)) bool fp_survives_yield() {
  volatile double a = 1.5, b = 2.25;
  double x = a * b;  // likely kept in a callee-saved FP register across the call
  gort::yield();
  return x == 3.375 && std::fabs(a * b - x) == 0.0;
}

void checks() {
  std::atomic<int> ran{0};
  gort::WaitGroup wg;
  for (int i = 0; i < 20000; ++i) {
    wg.add(1);
    gort::go([&] {
      ran.fetch_add(1);
      wg.done();
    });
  }
  wg.wait();
  check(ran.load() == 20000, "20000 goroutines spawned and joined on 2 Ps");

  std::atomic<long> yields{0};
  std::atomic<int> fp_bad{0};
  wg.add(4);
  for (int g = 0; g < 4; ++g)
    gort::go([&] {
      for (int i = 0; i < 5000; ++i) {
        if (!fp_survives_yield()) fp_bad.fetch_add(1);
        yields.fetch_add(1);
      }
      wg.done();
    });
  wg.wait();
  check(yields.load() == 20000 && fp_bad.load() == 0, "yields preserve FP callee-saved registers");

  std::atomic<int> errno_bad{0}, migrations{0};
  wg.add(4);
  for (int g = 0; g < 4; ++g)
    gort::go([&, g] {
      set_errno(100 + g);
      for (int i = 0; i < 200; ++i) {
        const int before = tid();
        gort::WaitGroup hop;
        hop.add(1);
        gort::go([&] { hop.done(); });
        hop.wait();
        if (tid() != before) migrations.fetch_add(1);
        if (get_errno() != 100 + g) errno_bad.fetch_add(1);
      }
      wg.done();
    });
  wg.wait();
  check(errno_bad.load() == 0, "errno follows its goroutine across threads");
  std::printf("      (%d migrations)\n", migrations.load());

  std::atomic<bool> moved{false};
  wg.add(1);
  gort::go([&] {
    gort::lock_os_thread();
    const int mine = tid();
    for (int i = 0; i < 50; ++i) {
      gort::yield();
      if (tid() != mine) moved = true;
    }
    gort::unlock_os_thread();
    wg.done();
  });
  wg.wait();
  check(!moved.load(), "lock_os_thread keeps the goroutine on its thread");
}

// One P: a goroutine spinning without runtime calls until another goroutine runs, which
// only sysmon's preemption makes possible. Where membarrier is missing (qemu-user may not
// pass it through) preemption is off and the check is reported as skipped.
void preemption_check() {
  bool enabled = false, others_ran = false;
  gort::run(
      [&] {
        enabled = gort::sched_stats().preemption_enabled;
        if (!enabled) return;
        std::atomic<bool> hog_started{false}, flag{false};
        gort::WaitGroup wg;
        wg.add(2);
        gort::go([&] {
          hog_started = true;
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
          while (!flag.load(std::memory_order_relaxed) &&
                 std::chrono::steady_clock::now() < deadline) {
          }
          wg.done();
        });
        gort::go([&] {
          while (!hog_started.load()) gort::yield();
          flag = true;
          wg.done();
        });
        wg.wait();
        others_ran = flag.load() && gort::sched_stats().preemptions > 0;
      },
      gort::Options{.procs = 1});
  if (!enabled) {
    std::printf("skip: preemption is off here (no membarrier)\n");
    return;
  }
  check(others_ran, "sysmon preempts a spinning goroutine on 1 P");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "overflow") == 0)
    return gort::run([] { gort::test::overflow_stack(0); }, gort::Options{.stack_size = 64 * 1024});
  if (argc > 1 && std::strcmp(argv[1], "panic") == 0)
    return gort::run([] {
      gort::WaitGroup wg;
      wg.add(1);
      gort::go([] { throw std::runtime_error("arch smoke"); });
      wg.wait();
    });
  gort::run(checks, gort::Options{.procs = 2});
  preemption_check();
  std::printf("arch smoke: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

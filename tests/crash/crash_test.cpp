// Fatal conditions print Go's words and exit with status 2 (runtime/crash_test.go's
// approach: run the failing program in a child and check its output).
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <stdexcept>

#include "gort/gort.hpp"
#include "test_util.hpp"

namespace {

__attribute__((noinline)) void throw_from_deep_inside() {
  throw std::out_of_range("index 7 out of range [0:3]");
}

class Crash : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};
}  // namespace

TEST_F(Crash, ExceptionEscapingAGoroutineIsAPanic) {
  EXPECT_EXIT(gort::run(
                  [] {
                    gort::WaitGroup wg;
                    wg.add(1);
                    gort::go([] { throw_from_deep_inside(); });
                    wg.wait();
                  },
                  gort::Options{.procs = 2}),
              ::testing::ExitedWithCode(2),
              "panic: std::out_of_range: index 7 out of range \\[0:3\\]\n\ngoroutine [0-9]+ "
              "\\[running\\]:\n(.|\n)*throw_from_deep_inside");
}

TEST_F(Crash, PanicFromMainNamesGoroutineOne) {
  EXPECT_EXIT(gort::run([] { throw gort::Panic("boom"); }), ::testing::ExitedWithCode(2),
              "panic: boom\n\ngoroutine 1 \\[running\\]:");
}

TEST_F(Crash, StackOverflowIsReported) {
  EXPECT_EXIT(gort::run(
                  [] {
                    gort::WaitGroup wg;
                    wg.add(1);
                    gort::go([] { gort::test::overflow_stack(0); });
                    wg.wait();
                  },
                  gort::Options{.procs = 1, .stack_size = 64 * 1024}),
              ::testing::ExitedWithCode(2),
              "runtime: goroutine stack exceeds 65[0-9]+-byte limit\n(.|\n)*fatal error: stack "
              "overflow\n\ngoroutine [0-9]+ \\[running\\]:");
}

TEST_F(Crash, StackOverflowInMain) {
  EXPECT_EXIT(
      gort::run([] { gort::test::overflow_stack(0); }, gort::Options{.stack_size = 64 * 1024}),
      ::testing::ExitedWithCode(2), "fatal error: stack overflow\n\ngoroutine 1 ");
}

TEST_F(Crash, AllGoroutinesAsleepIsADeadlock) {
  EXPECT_EXIT(gort::run(
                  [] {
                    gort::WaitGroup wg;
                    wg.add(1);
                    wg.wait();
                  },
                  gort::Options{.procs = 2}),
              ::testing::ExitedWithCode(2),
              "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 "
              "\\[sync.WaitGroup.Wait\\]:");
}

TEST_F(Crash, DeadlockAmongSeveralGoroutines) {
  EXPECT_EXIT(gort::run(
                  [] {
                    gort::WaitGroup a, b;
                    a.add(1);
                    b.add(1);
                    gort::go([&] {
                      a.wait();
                      b.done();
                    });
                    gort::go([&] {
                      b.wait();
                      a.done();
                    });
                    gort::WaitGroup never;
                    never.add(1);
                    never.wait();
                  },
                  gort::Options{.procs = 4}),
              ::testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!");
}

TEST(CrashSafe, NoDeadlockReportWhileWorkRemains) {
  // Many short parks across Ps must never look like a deadlock.
  gort::run(
      [] {
        for (int r = 0; r < 200; ++r) {
          gort::WaitGroup wg;
          wg.add(4);
          for (int i = 0; i < 4; ++i) gort::go([&] { wg.done(); });
          wg.wait();
        }
      },
      gort::Options{.procs = 4});
}

namespace {
__attribute__((noinline)) void wait_for_quit_signal(const gort::Chan<int>& never) {
  never.recv();
  asm volatile("" ::: "memory");  // keep this frame: no tail call
}

bool helper_parked() {
  std::ostringstream out;
  gort::pprof::write_profile("goroutine", out, 2);
  return out.str().find("wait_for_quit_signal") != std::string::npos;  // walked: parked
}
}  // namespace

// SIGQUIT prints every goroutine's stack (the debug=2 text) and exits with status 2, as Go.
TEST_F(Crash, SigquitDumpsGoroutinesAndExits) {
  EXPECT_EXIT(gort::run(
                  [] {
                    auto never = gort::make_chan<int>();
                    auto started = gort::make_chan<int>();
                    gort::go([=] {
                      started.send(1);
                      wait_for_quit_signal(never);
                    });
                    started.recv();
                    while (!helper_parked()) gort::yield();
                    ::raise(SIGQUIT);
                    never.recv();  // parks main until sysmon writes the dump and exits
                  },
                  gort::Options{.procs = 2, .detect_deadlock = false}),
              ::testing::ExitedWithCode(2),
              // With DWARF (sanitizer builds are -g), Chan::recv inlined into the waiting
              // function comes first, as a frame and its file:line.
              "SIGQUIT: quit\n\ngoroutine [0-9]+ \\[(.|\n)*goroutine [0-9]+ \\[chan "
              "receive\\]:\n([^\n]*\n\t[^\n]*\n)*[^\n]*wait_for_quit_signal");
}

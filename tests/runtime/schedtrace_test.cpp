// GODEBUG=schedtrace=N: sysmon prints Go's scheduler summary line every N ms to stderr.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gort/gort.hpp"

using namespace std::chrono_literals;

namespace {

// The SCHED lines a run of `run_for` prints under GODEBUG=godebug.
std::vector<std::string> sched_lines(const char* godebug, int procs,
                                     std::chrono::milliseconds run_for = 60ms) {
  ::setenv("GODEBUG", godebug, 1);
  testing::internal::CaptureStderr();
  gort::run([run_for] { gort::sleep(run_for); }, gort::Options{.procs = procs});
  const std::string err = testing::internal::GetCapturedStderr();
  ::unsetenv("GODEBUG");
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("SCHED ", 0) == 0) lines.push_back(line);
  return lines;
}

TEST(SchedTrace, PrintsGoLinesEveryPeriod) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto lines = sched_lines("foo=1,schedtrace=10", 2, 200ms);
  const auto ran_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  // One line per 10 ms: about 20. A loaded machine (sanitizers, parallel tests) delays
  // sysmon, so fewer is allowed, but never more than one per period slot.
  ASSERT_GE(lines.size(), 3u);
  ASSERT_LE(static_cast<long>(lines.size()), ran_ms / 10 + 1);
  const std::regex re(
      R"(SCHED (\d+)ms: gomaxprocs=2 idleprocs=\d+ threads=\d+ spinningthreads=\d+ )"
      R"(needspinning=0 idlethreads=\d+ runqueue=\d+ \[\d+ \d+\])");
  long prev = -1;
  for (const auto& line : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, re)) << line;
    const long ms = std::stol(m[1]);
    EXPECT_GT(ms, prev) << line;
    prev = ms;
  }
}

TEST(SchedTrace, SilentWithoutGodebug) {
  EXPECT_TRUE(sched_lines("gctrace=1", 1).empty());
}

}  // namespace

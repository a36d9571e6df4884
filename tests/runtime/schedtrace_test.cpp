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

// The SCHED lines a 60 ms run prints under GODEBUG=godebug.
std::vector<std::string> sched_lines(const char* godebug, int procs) {
  ::setenv("GODEBUG", godebug, 1);
  testing::internal::CaptureStderr();
  gort::run([] { gort::sleep(60ms); }, gort::Options{.procs = procs});
  const std::string err = testing::internal::GetCapturedStderr();
  ::unsetenv("GODEBUG");
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("SCHED ", 0) == 0) lines.push_back(line);
  return lines;
}

TEST(SchedTrace, PrintsGoLinesEveryPeriod) {
  const auto lines = sched_lines("foo=1,schedtrace=10", 2);
  // 60 ms at 10 ms: about 6 lines; loaded CI machines may delay sysmon a little.
  ASSERT_GE(lines.size(), 3u);
  ASSERT_LE(lines.size(), 8u);
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

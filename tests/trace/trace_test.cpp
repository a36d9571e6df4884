// The execution tracer: a scripted scenario (channel ping-pong, a sleep, a mutex wait, a
// blocking call, a task with a region and a log) is traced; the JSON must parse, its
// slices must nest on every track (check_trace.py), and each part of the scenario must
// show up as the events it should produce.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gort/gort.hpp"
#include "gort/trace.hpp"
#include "test_util.hpp"
#include "trace/hooks.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int kRounds = 50;

// Runs check_trace.py on the traces; returns its "key -> count" summary, summed over them
// (empty if it failed). One python run for several traces: its start-up dominates.
std::map<std::string, long> check(const std::vector<std::string>& jsons) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string base = (dir / ("gort_trace_" + std::to_string(::getpid()))).string();
  std::string cmd = "python3 " GORT_TRACE_CHECKER;
  for (std::size_t i = 0; i < jsons.size(); ++i) {
    const std::string path = base + "_" + std::to_string(i) + ".json";
    std::ofstream(path) << jsons[i];
    cmd += " " + path;
  }
  cmd += " > " + base + ".txt";
  const int rc = std::system(cmd.c_str());
  std::map<std::string, long> out;
  std::ifstream in(base + ".txt");
  std::string line;
  while (std::getline(in, line)) {
    const auto tab = line.rfind('\t');
    if (tab != std::string::npos) out[line.substr(0, tab)] = std::stol(line.substr(tab + 1));
  }
  if (std::getenv("GORT_TRACE_TEST_KEEP") == nullptr) {  // set it to look at the files
    for (std::size_t i = 0; i < jsons.size(); ++i)
      std::filesystem::remove(base + "_" + std::to_string(i) + ".json");
    std::filesystem::remove(base + ".txt");
  }
  EXPECT_EQ(rc, 0) << "check_trace.py failed";
  return out;
}

std::map<std::string, long> check(const std::string& json) {
  return check(std::vector<std::string>{json});
}

void ping_pong() {
  auto ping = gort::make_chan<int>();
  auto pong = gort::make_chan<int>();
  gort::WaitGroup wg;
  wg.add(1);
  gort::go([=, &wg] {
    for (int v : ping) pong.send(v + 1);
    // Main is in wg.wait() by now, so that the trace has a WaitGroup block: done()
    // right after the close let main find the count at zero on another P (TSan, 8 Ps).
    gort::sleep(5ms);
    wg.done();
  });
  for (int i = 0; i < kRounds; ++i) {
    ping.send(i);
    EXPECT_EQ(pong.recv().value_or(-1), i + 1);
  }
  ping.close();
  wg.wait();
}

void mutex_wait() {
  gort::Mutex mu;
  auto locked = gort::make_chan<int>();
  gort::WaitGroup wg;
  mu.lock();
  wg.add(1);
  gort::go([&] {
    locked.send(1);
    mu.lock();  // parks: main holds it
    mu.unlock();
    wg.done();
  });
  locked.recv();
  gort::sleep(2ms);  // the waiter parks on the mutex meanwhile
  mu.unlock();
  wg.wait();
}

void scenario() {
  auto task = gort::trace::new_task("scenario");
  gort::trace::log("step", "ping-pong", &task);
  gort::trace::with_region(task, "ping-pong", ping_pong);
  {
    gort::trace::Region r("sleep-and-lock", &task);
    gort::sleep(1ms);
    mutex_wait();
  }
  gort::blocking([] { ::usleep(3000); });  // sysmon retakes the P meanwhile
  gort::yield();
  gort::trace::detail::gc_phase_begin("mark");
  gort::trace::detail::stw_begin("mark termination");
  gort::trace::detail::stw_end("mark termination");
  gort::trace::detail::gc_phase_end("mark");
}

std::string trace_scenario(int procs) {
  std::ostringstream out;
  gort::trace::start(out);
  EXPECT_TRUE(gort::trace::is_enabled());
  gort::run(scenario, gort::Options{.procs = procs});
  gort::trace::stop();
  EXPECT_FALSE(gort::trace::is_enabled());
  return out.str();
}

class TraceTest : public ::testing::TestWithParam<int> {};

TEST_P(TraceTest, ScenarioProducesItsEvents) {
  const std::string json = trace_scenario(GetParam());
  auto c = check(json);
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c["errors"], 0);
  // The ping-pong blocks on the channel every round (each slice is counted twice: on its
  // P's track and on its M's).
  EXPECT_GE(c["end block: chan send"] + c["end block: chan receive"], 2 * kRounds);
  EXPECT_GE(c["end block: sleep"], 2);
  EXPECT_GE(c["end block: sync.Mutex.Lock"], 1);
  EXPECT_GE(c["end block: sync.WaitGroup.Wait"], 1);
  EXPECT_GE(c["end yield"], 1);
  EXPECT_GE(c["end exit"], 2);  // the two helpers (main's exit is the run's end)
  EXPECT_GE(c["end blocking call"], 1);
  EXPECT_GE(c["end returned"], 1);  // the blocking call's own slice on its M
  // Goroutines appear on the P tracks and on the M tracks, inside their P/M slices.
  EXPECT_GE(c["goroutine slice pid 1"], 2 * kRounds);
  EXPECT_GE(c["goroutine slice pid 2"], 2 * kRounds);
  EXPECT_GE(c["slice proc pid 1"], 1);
  EXPECT_GE(c["track 1 P0"], 1);
  EXPECT_GE(c["track 2 M0"], 1);
  // Unblocks: instants and arrows to where the goroutine ran next.
  EXPECT_GE(c["instant unblock"], 2 * kRounds);
  EXPECT_GE(c["instant go"], 2);
  EXPECT_GE(c["flows matched"], 2 * kRounds);
  EXPECT_EQ(c["flows unmatched finish"], 0);
  // ... which Perfetto binds to the unblock instant and to the woken goroutine's slice.
  EXPECT_GE(c["flows bound"], 2 * kRounds);
  // The user's task, regions and log; the GC hooks.
  EXPECT_EQ(c["task b scenario"], 1);
  EXPECT_EQ(c["task e scenario"], 1);
  EXPECT_EQ(c["region b ping-pong"], 1);
  EXPECT_EQ(c["region e ping-pong"], 1);
  EXPECT_EQ(c["region b sleep-and-lock"], 1);
  EXPECT_EQ(c["instant log: step"], 1);
  EXPECT_EQ(c["gc B mark"], 1);
  EXPECT_EQ(c["gc E mark"], 1);
  EXPECT_EQ(c["stw B mark termination"], 1);
  EXPECT_NE(json.find("\"message\":\"ping-pong\""), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Procs, TraceTest, ::testing::Values(1, 2, 8));

TEST(Trace, SysmonRetakeShowsOnTheP) {
  // A blocking call long enough for sysmon to take the P while other goroutines need it.
  std::ostringstream out;
  gort::trace::start(out);
  gort::run(
      [] {
        gort::WaitGroup wg;
        wg.add(1);
        gort::go([&] {
          for (int i = 0; i < 200; ++i) gort::yield();
          wg.done();
        });
        gort::blocking([] { ::usleep(20'000); });
        wg.wait();
      },
      gort::Options{.procs = 1});
  gort::trace::stop();
  auto c = check(out.str());
  EXPECT_EQ(c["errors"], 0);
  EXPECT_GE(c["instant P taken by sysmon"], 1);
  EXPECT_GE(c["end blocking call"], 1);
}

TEST(Trace, EmptyTraceIsValidJson) {
  std::ostringstream out;
  gort::trace::start(out);
  gort::trace::stop();
  auto c = check(out.str());
  EXPECT_EQ(c["errors"], 0);
  EXPECT_EQ(c["ph X"], 0);
}

TEST(Trace, StartTwiceThrowsStopTwiceIsHarmless) {
  std::ostringstream out;
  gort::trace::start(out);
  EXPECT_THROW(gort::trace::start(out), std::logic_error);
  gort::trace::stop();
  gort::trace::stop();
  EXPECT_FALSE(gort::trace::is_enabled());
}

TEST(Trace, UserApiIsInertWhenOff) {
  gort::run([] {
    auto task = gort::trace::new_task("off");
    EXPECT_EQ(task.id(), 0u);
    gort::trace::with_region("off", [] {});
    gort::trace::log("off", "nothing");
  });
}

TEST(Trace, RepeatedSessionsWithGoroutinesRunning) {
  // Traces start and stop while goroutines keep switching on every P: each trace is
  // complete JSON with nested slices (the stop protocol must not lose or tear records).
  gort::run([] {
    std::atomic<bool> quit{false};
    gort::WaitGroup wg;
    for (int w = 0; w < 4; ++w) {
      wg.add(1);
      gort::go([&] {
        auto c = gort::make_chan<int>(1);
        for (int i = 1; !quit.load(); ++i) {
          c.send(1);
          c.recv();
          gort::yield();
          if (i % 64 == 0) gort::sleep(50us);  // bounds the event rate (sanitizer builds)
        }
        wg.done();
      });
    }
    std::vector<std::string> traces;
    for (int i = 0; i < 3; ++i) {
      std::ostringstream out;
      gort::blocking([&] { gort::trace::start(out); });
      gort::sleep(5ms);
      gort::blocking([] { gort::trace::stop(); });
      traces.push_back(out.str());
    }
    quit = true;
    wg.wait();
    auto c = check(traces);
    EXPECT_EQ(c["errors"], 0);
    EXPECT_GE(c["end yield"], 3);
  });
}

}  // namespace

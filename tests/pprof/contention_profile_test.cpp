// Block and mutex profiles: a known blocking site and a known contended lock show up with
// their delays, in Go's text form and in the profile.proto that `go tool pprof` reads.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "gort/gort.hpp"
#include "gort/pprof.hpp"

using namespace std::chrono_literals;

namespace {

__attribute__((noinline)) int receive_the_slow_value(const gort::Chan<int>& c) {
  return c.recv().value_or(-1);
}

__attribute__((noinline)) void unlock_after_holding(gort::Mutex& mu) {
  gort::sleep(30ms);  // a waiter queues up meanwhile
  mu.unlock();
  asm volatile("" ::: "memory");  // keep this frame: no tail call into unlock
}

// Sum of the first numbers (delays) of the sample lines whose frames include fn.
long long delay_at(const std::string& text, const std::string& fn) {
  std::istringstream in(text);
  std::string line;
  long long total = 0, current = -1;
  while (std::getline(in, line)) {
    if (line.find(" @ ") != std::string::npos) {
      current = std::stoll(line);
      continue;
    }
    if (current >= 0 && line.rfind("#", 0) == 0 && line.find(fn) != std::string::npos) {
      total += current;
      current = -1;  // count each sample once
    }
  }
  return total;
}

TEST(ContentionProfile, BlockProfileShowsTheBlockingSite) {
  std::string text;
  gort::run([&] {
    gort::pprof::set_block_profile_rate(1);
    auto c = gort::make_chan<int>(0);
    gort::go([c] {
      gort::sleep(25ms);
      c.send(7);
    });
    EXPECT_EQ(receive_the_slow_value(c), 7);
    gort::pprof::set_block_profile_rate(0);
    std::ostringstream out;
    gort::pprof::write_profile("block", out, 1);
    text = out.str();
  });
  EXPECT_EQ(text.rfind("--- contention:", 0), 0u) << text;
  EXPECT_GE(delay_at(text, "receive_the_slow_value"), 20'000'000) << text;
}

TEST(ContentionProfile, OffRecordsNothing) {
  std::string before, text;
  gort::run([&] {
    gort::pprof::set_block_profile_rate(0);
    std::ostringstream first;
    gort::pprof::write_profile("block", first, 1);
    before = first.str();  // records of earlier tests in this process stay
    auto c = gort::make_chan<int>(0);
    gort::go([c] {
      gort::sleep(5ms);
      c.send(7);
    });
    receive_the_slow_value(c);
    std::ostringstream out;
    gort::pprof::write_profile("block", out, 1);
    text = out.str();
  });
  EXPECT_EQ(delay_at(text, "receive_the_slow_value"), delay_at(before, "receive_the_slow_value"))
      << text;
}

TEST(ContentionProfile, MutexProfileShowsTheUnlockerWithTheWaitersDelay) {
  std::string text, proto;
  gort::run([&] {
    EXPECT_EQ(gort::pprof::set_mutex_profile_fraction(1), 0);
    EXPECT_EQ(gort::pprof::set_mutex_profile_fraction(-1), 1);  // read only
    gort::Mutex mu;
    mu.lock();
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([&] {
      mu.lock();  // waits ~30 ms behind unlock_after_holding
      mu.unlock();
      wg.done();
    });
    gort::sleep(2ms);
    unlock_after_holding(mu);
    wg.wait();
    std::ostringstream out;
    gort::pprof::write_profile("mutex", out, 1);
    text = out.str();
    std::ostringstream bin;
    gort::pprof::write_profile("mutex", bin, 0);
    proto = bin.str();
    gort::pprof::set_mutex_profile_fraction(0);
  });
  EXPECT_GE(delay_at(text, "unlock_after_holding"), 20'000'000) << text;
  ASSERT_GT(proto.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(proto[0]), 0x1f);
  if (std::system("go version >/dev/null 2>&1") != 0) return;  // the text form was checked
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("gort-mutex-" + std::to_string(::getpid()) + ".pb.gz"))
                               .string();
  std::ofstream(path, std::ios::binary) << proto;
  std::string top;
  FILE* p = popen(
      ("HOME=${HOME:-/tmp} GOCACHE=/tmp/gort-gocache go tool pprof -top -sample_index=delay " +
       path + " 2>&1")
          .c_str(),
      "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) top += buf;
  pclose(p);
  EXPECT_NE(top.find("unlock_after_holding"), std::string::npos) << top;
  EXPECT_NE(top.find("Type: delay"), std::string::npos) << top;
  std::filesystem::remove(path);
}

// Not identical to receive_the_slow_value, or GCC's identical code folding (-fipa-icf)
// makes both one function.
__attribute__((noinline)) int receive_before_the_snapshot(const gort::Chan<int>& c) {
  return c.recv().value_or(-2);
}

// Delta profiles (?seconds=N): only what was recorded after the snapshot.
TEST(ContentionProfile, DeltaHoldsOnlyWhatFollowsTheSnapshot) {
  std::string proto;
  gort::run([&] {
    gort::pprof::set_block_profile_rate(1);
    auto c = gort::make_chan<int>(0);
    gort::go([c] {
      gort::sleep(10ms);
      c.send(1);
      gort::sleep(10ms);
      c.send(2);
    });
    EXPECT_EQ(receive_before_the_snapshot(c), 1);
    const gort::pprof::ProfileSnapshot snap = gort::pprof::snapshot_profile("block");
    EXPECT_EQ(receive_the_slow_value(c), 2);
    gort::pprof::set_block_profile_rate(0);
    std::ostringstream bin;
    gort::pprof::write_profile_delta(snap, bin);
    proto = bin.str();
    EXPECT_THROW(gort::pprof::snapshot_profile("goroutine"), std::invalid_argument);
  });
  ASSERT_GT(proto.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(proto[0]), 0x1f);
  if (std::system("go version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no go tool pprof";
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("gort-block-delta-" + std::to_string(::getpid()) + ".pb.gz"))
                               .string();
  std::ofstream(path, std::ios::binary) << proto;
  std::string top;
  FILE* p = popen(
      ("HOME=${HOME:-/tmp} GOCACHE=/tmp/gort-gocache go tool pprof -top " + path + " 2>&1").c_str(),
      "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) top += buf;
  pclose(p);
  std::filesystem::remove(path);
  EXPECT_NE(top.find("receive_the_slow_value"), std::string::npos) << top;
  EXPECT_EQ(top.find("receive_before_the_snapshot"), std::string::npos) << top;
}

}  // namespace

// The goroutine profile's text forms (Go's pprof.Lookup("goroutine").WriteTo, debug=1|2):
// ids, states and wait reasons of known parked goroutines, frames of a marked function,
// grouping of identical stacks, errors for what is not implemented, and dumps taken while
// goroutines keep switching (no crash, sanitizer-clean).
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "gort/gort.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

std::string dump(int debug) {
  std::ostringstream out;
  gort::pprof::write_profile("goroutine", out, debug);
  return out.str();
}

// Dumps until every needle is in the debug=2 dump (the goroutines may still be on their
// way to park), or gives up after ~2 s and returns the last dump.
// Dumps until `done(dump)` holds (at most ~2 s), and returns the last dump.
template <typename Predicate>
std::string dump_until_true(Predicate done, int debug) {
  std::string d;
  for (int i = 0; i < 400; ++i) {
    d = dump(debug);
    if (done(d)) break;
    gort::sleep(5ms);
  }
  return d;
}

std::string dump_until(const std::vector<std::string>& needles, int debug = 2) {
  return dump_until_true(
      [&](const std::string& d) {
        for (const auto& n : needles)
          if (d.find(n) == std::string::npos) return false;
        return true;
      },
      debug);
}

// The "N @ ..." line of the debug=1 record whose labels line is `labels`, or "".
std::string record_line_before(const std::string& text, const std::string& labels) {
  const std::size_t at = text.find(labels);
  if (at == std::string::npos || at < 2) return "";
  const std::size_t record = text.rfind('\n', at - 2) + 1;
  return text.substr(record, at - 1 - record);
}

std::string header(std::uint64_t id, const std::string& state) {
  return "goroutine " + std::to_string(id) + " [" + state + "]:\n";
}

}  // namespace

// Named frames the dump must show: noinline and noclone so they are real frames under
// their own names, different bodies so identical-code folding keeps both.
// Lines of the calls the goroutines block in (this file is built with -g: file:line from
// DWARF must be in the dumps).
std::atomic<int> marker_recv_line{0};
std::atomic<int> marker_group_line{0};  // written by every goroutine of a group

__attribute__((noinline, noclone)) void profile_marker_recv(gort::Chan<int> ch) {
  marker_recv_line = __LINE__ + 1;
  (void)ch.recv();
  asm volatile("");  // not a tail call: the frame stays on the stack
}

__attribute__((noinline, noclone)) void profile_marker_group(gort::Chan<int> ch, int tag) {
  marker_group_line = __LINE__ + 1;
  (void)ch.recv();
  asm volatile("" : : "r"(tag));
}

namespace {

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(GoroutineProfile, Debug2ShowsIdsStatesAndWaitReasons) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        gort::Mutex mu;
        gort::WaitGroup never;
        never.add(1);
        std::atomic<std::uint64_t> recv_id{0}, mutex_id{0}, wg_id{0}, sleep_id{0};
        gort::WaitGroup done;
        done.add(3);  // the sleeper is abandoned: it owns nothing
        gort::go([&] {
          recv_id = gort::goid();
          profile_marker_recv(ch);
          done.done();
        });
        mu.lock();
        gort::go([&] {
          mutex_id = gort::goid();
          mu.lock();
          mu.unlock();
          done.done();
        });
        gort::go([&] {
          wg_id = gort::goid();
          never.wait();
          done.done();
        });
        gort::go([&] {
          sleep_id = gort::goid();
          gort::sleep(10s);
        });
        while (recv_id == 0 || mutex_id == 0 || wg_id == 0 || sleep_id == 0) gort::yield();
        const std::string d =
            dump_until({header(recv_id, "chan receive"), header(mutex_id, "sync.Mutex.Lock"),
                        header(wg_id, "sync.WaitGroup.Wait"), header(sleep_id, "sleep")});
        EXPECT_EQ(d.rfind("goroutine 1 [running]:\n", 0), 0u) << d;  // the caller comes first
        EXPECT_NE(d.find(header(recv_id, "chan receive")), std::string::npos) << d;
        EXPECT_NE(d.find(header(mutex_id, "sync.Mutex.Lock")), std::string::npos) << d;
        EXPECT_NE(d.find(header(wg_id, "sync.WaitGroup.Wait")), std::string::npos) << d;
        EXPECT_NE(d.find(header(sleep_id, "sleep")), std::string::npos) << d;
        // The receiver's stack names the function it is blocked in, Go-style.
        const std::size_t at = d.find(header(recv_id, "chan receive"));
        const std::size_t end = d.find("\n\n", at);
        const std::string block = d.substr(at, end - at);
        const std::string position =
            "goroutine_profile_test.cpp:" + std::to_string(marker_recv_line) + " +0x";
        EXPECT_NE(block.find("profile_marker_recv(gort::Chan<int>)\n\t/"), std::string::npos)
            << block;
        EXPECT_NE(block.find(position), std::string::npos) << block;
        EXPECT_EQ(block.find("gort::runtime::"), std::string::npos) << block;  // hidden
        // Created by this test's body (the lambda holding the go statement).
        EXPECT_NE(block.find("\ncreated by GoroutineProfile_Debug2ShowsIdsStatesAndWaitReasons"),
                  std::string::npos)
            << block;
        ch.send(1);
        mu.unlock();
        never.done();
        done.wait();
      },
      gort::Options{.procs = 2});
}

TEST(GoroutineProfile, Debug1GroupsIdenticalStacks) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        constexpr int kN = 6;
        std::atomic<int> started{0};
        gort::WaitGroup done;
        done.add(kN);
        for (int i = 0; i < kN; ++i) {
          gort::go([&] {
            ++started;
            profile_marker_group(ch, 7);
            done.done();
          });
        }
        while (started < kN) gort::yield();
        std::string d;
        int in_groups = 0, records = 0;
        for (int attempt = 0; attempt < 400 && in_groups != kN; ++attempt) {
          gort::sleep(5ms);
          d = dump(1);
          in_groups = records = 0;
          std::istringstream lines(d);
          std::string line, record;
          int record_count = 0;
          auto flush = [&] {
            if (record.find("profile_marker_group") != std::string::npos) {
              in_groups += record_count;
              ++records;
            }
            record.clear();
          };
          while (std::getline(lines, line)) {
            if (line.find(" @") != std::string::npos && line[0] != '#') {
              flush();
              record_count = std::stoi(line);
            }
            record += line + "\n";
          }
          flush();
        }
        EXPECT_EQ(d.rfind("goroutine profile: total ", 0), 0u) << d;
        EXPECT_GE(std::stoi(d.substr(25)), kN + 1) << d;
        EXPECT_EQ(in_groups, kN) << d;
        EXPECT_LT(records, kN) << d;  // identical stacks were grouped
        EXPECT_NE(d.find("\tprofile_marker_group(gort::Chan<int>, int)+0x"), std::string::npos)
            << d;
        for (int i = 0; i < kN; ++i) ch.send(i);
        done.wait();
      },
      gort::Options{.procs = 2});
}

TEST(GoroutineProfile, UnsupportedFormsAreClearErrors) {
  gort::run([] {
    std::ostringstream out;
    EXPECT_THROW(gort::pprof::write_profile("nosuch", out, 1), std::invalid_argument);
    const auto ps = gort::pprof::profiles();
    ASSERT_EQ(ps.size(), 6u);
    EXPECT_EQ(ps[0].name, "allocs");
    EXPECT_EQ(ps[1].name, "block");
    EXPECT_EQ(ps[2].name, "goroutine");
    EXPECT_GE(ps[2].count, 1);
    EXPECT_EQ(ps[3].name, "heap");
    EXPECT_EQ(ps[4].name, "mutex");
    EXPECT_EQ(ps[5].name, "threadcreate");
    EXPECT_GE(ps[5].count, 1);  // M0 at least
  });
  std::ostringstream out;
  EXPECT_THROW(gort::pprof::write_profile("goroutine", out, 2), gort::Panic);
}

// Dumps taken while goroutines keep parking, resuming and exiting on both Ps: the
// validated walk may drop a moving goroutine's frames, but never crashes or reports a
// goroutine twice.
TEST(GoroutineProfile, DumpsWhileGoroutinesSwitch) {
  gort::run(
      [] {
        std::atomic<bool> stop{false};
        gort::WaitGroup wg;
        for (int i = 0; i < 4; ++i) {
          wg.add(1);
          gort::go([&] {
            auto a = gort::make_chan<int>(), b = gort::make_chan<int>();
            gort::go([a, b] {
              for (auto v : a) b.send(v);
              b.close();
            });
            for (int n = 0; !stop.load(std::memory_order_relaxed); ++n) {
              a.send(n);
              (void)b.recv();
              if (n % 16 == 0) gort::go([] { gort::yield(); });
            }
            a.close();
            while (b.recv()) {
            }
            wg.done();
          });
        }
        const int rounds = static_cast<int>(gort::test::scaled(300));
        for (int r = 0; r < rounds; ++r) {
          const std::string d = dump(r % 2 + 1);
          ASSERT_FALSE(d.empty());
          if (r % 2 == 1) {
            EXPECT_EQ(count(d, "goroutine 1 ["), 1u);
          }
          gort::yield();
        }
        stop = true;
        wg.wait();
        gort::test::wait_for_other_goroutines();
      },
      gort::Options{.procs = 2});
}

namespace {

using gort::test::have_go;
using gort::test::run_command;

// `go tool pprof -top` of a profile written by write_profile(name, debug=0).
std::string pprof_top_of(const std::string& name, const std::string& options = "") {
  std::ostringstream out;
  gort::pprof::write_profile(name, out, 0);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("gort_" + name + "_" + std::to_string(::getpid()) + ".pb.gz"))
                               .string();
  std::ofstream(path, std::ios::binary) << out.str();
  const std::string top =
      run_command("HOME=${HOME:-/tmp} GOCACHE=/tmp/gort-gocache GOFLAGS= go tool pprof -top " +
                  options + " " + path + " 2>&1");
  std::filesystem::remove(path);
  return top;
}

}  // namespace

// debug=0: profile.proto that `go tool pprof` reads, counting goroutines per stack.
TEST(GoroutineProfile, ProtoFormCountsGoroutinesPerStack) {
  if (!have_go()) GTEST_SKIP() << "golang-go (go tool pprof) is not installed";
  constexpr int kN = 5;
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        gort::WaitGroup done;
        done.add(kN);
        for (int i = 0; i < kN; ++i)
          gort::go([&, ch] {
            profile_marker_group(ch, 0);
            done.done();
          });
        dump_until({"profile_marker_group"}, 1);
        std::string top;
        for (int tries = 0; tries < 100; ++tries) {  // until all kN are parked in it
          top = pprof_top_of("goroutine");
          if (top.find("Type: goroutine") != std::string::npos &&
              top.find(std::to_string(kN) + " ") != std::string::npos)
            break;
          gort::sleep(10ms);
        }
        EXPECT_NE(top.find("Type: goroutine"), std::string::npos) << top;
        EXPECT_NE(top.find("profile_marker_group"), std::string::npos) << top;
        // Source lines from DWARF, which pprof shows per line with -lines.
        const std::string lines = pprof_top_of("goroutine", "-lines");
        EXPECT_NE(lines.find("goroutine_profile_test.cpp:" + std::to_string(marker_group_line)),
                  std::string::npos)
            << lines;
        for (int i = 0; i < kN; ++i) ch.send(i);
        done.wait();
      },
      gort::Options{.procs = 2});
}

// threadcreate: one record per M, with the stack that started it, in both forms.
TEST(ThreadCreateProfile, CountsEveryM) {
  gort::run(
      [] {
        // Make the other Ms start: goroutines that keep both Ps busy for a moment.
        std::atomic<int> running{0};
        gort::WaitGroup wg;
        for (int i = 0; i < 2; ++i) {
          wg.add(1);
          gort::go([&] {
            running.fetch_add(1);
            while (running.load() < 2) gort::yield();
            wg.done();
          });
        }
        wg.wait();
        const auto st = gort::sched_stats();
        std::ostringstream text;
        gort::pprof::write_profile("threadcreate", text, 1);
        const std::string t = text.str();
        const std::string head = "threadcreate profile: total ";
        ASSERT_EQ(t.rfind(head, 0), 0u) << t;
        EXPECT_GE(std::stoi(t.substr(head.size())), st.threads) << t;  // Ms may start meanwhile
        EXPECT_GE(st.threads, 2);
        EXPECT_NE(t.find(" @ 0x"), std::string::npos) << t;
        // A new M's creation stack (runtime frames hidden, as Go's text form hides them).
        EXPECT_NE(t.find("CountsEveryM_Test::TestBody()::{lambda()#1}"), std::string::npos) << t;
        if (have_go()) {
          const std::string top = pprof_top_of("threadcreate");
          EXPECT_NE(top.find("Type: threadcreate"), std::string::npos) << top;
        }
      },
      gort::Options{.procs = 2});
}

// Goroutine labels are on the goroutine profile too (Go's runtime_goroutineProfileWithLabels):
// a "# labels:" line per group in debug=1, sample labels in the proto form.
TEST(GoroutineProfile, CarriesGoroutineLabels) {
  gort::run(
      [] {
        auto ch = gort::make_chan<int>();
        gort::WaitGroup done;
        done.add(3);
        for (const char* role : {"alpha", "alpha", "beta"}) {
          gort::pprof::do_with_labels({{"role", role}}, [&] {
            gort::go([&, ch] {  // inherits the labels
              profile_marker_group(ch, 1);
              done.done();
            });
          });
        }
        const std::string alpha = "# labels: {\"role\":\"alpha\"}";
        const std::string beta = "# labels: {\"role\":\"beta\"}";
        // Until both alphas are parked in the marker (one may still be on its way there).
        const std::string text = dump_until_true(
            [&](const std::string& d) {
              return record_line_before(d, alpha).rfind("2 @ ", 0) == 0 &&
                     d.find(beta) != std::string::npos;
            },
            1);
        // Same stack, different labels: two groups, two and one.
        EXPECT_EQ(record_line_before(text, alpha).rfind("2 @ ", 0), 0u) << text;
        EXPECT_EQ(record_line_before(text, beta).rfind("1 @ ", 0), 0u) << text;
        if (have_go()) {
          std::ostringstream out;
          gort::pprof::write_profile("goroutine", out, 0);
          const std::string path = (std::filesystem::temp_directory_path() /
                                    ("gort_glabels_" + std::to_string(::getpid()) + ".pb.gz"))
                                       .string();
          std::ofstream(path, std::ios::binary) << out.str();
          const std::string tags = run_command(
              "HOME=${HOME:-/tmp} GOCACHE=/tmp/gort-gocache GOFLAGS= go tool pprof -tags " + path +
              " 2>&1");
          std::filesystem::remove(path);
          EXPECT_NE(tags.find("role: Total 3"), std::string::npos) << tags;
          EXPECT_NE(tags.find("2.0 (66.67%): alpha"), std::string::npos) << tags;
          EXPECT_NE(tags.find("1.0 (33.33%): beta"), std::string::npos) << tags;
        }
        for (int i = 0; i < 3; ++i) ch.send(i);
        done.wait();
      },
      gort::Options{.procs = 2});
}

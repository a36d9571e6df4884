// The heap and allocs profiles: known allocations show up at their allocating function
// with the right bytes (MemProfileRate 1 records every allocation, so the numbers are
// exact), frees of collected objects leave the in-use columns, and `go tool pprof` reads
// the profile.proto form.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gort/gc.hpp"
#include "gort/gort.hpp"
#include "test_util.hpp"

namespace gc = gort::gc;

namespace {

// Before any allocation (static initialisation): every allocation is sampled.
const int g_previous_rate = gort::pprof::set_memprofile_rate(1);

struct Kilo {
  std::uint64_t words[127];  // 1016 bytes + the 8-byte header: a 1024-byte cell
};

__attribute__((noinline)) std::vector<gc::Ptr<Kilo>> keep_site_for_heap_test(int n) {
  std::vector<gc::Ptr<Kilo>> v;
  for (int i = 0; i < n; ++i) v.push_back(gc::make<Kilo>());
  asm volatile("" ::: "memory");
  return v;
}

__attribute__((noinline)) void garbage_site_for_heap_test(int n) {
  for (int i = 0; i < n; ++i) gc::make<Kilo>();
  asm volatile("" ::: "memory");
}

// Not the same code as keep_site_for_heap_test (identical functions are folded into one).
__attribute__((noinline)) std::vector<gc::Ptr<Kilo>> late_site_for_heap_test(int n) {
  std::vector<gc::Ptr<Kilo>> v;
  v.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v.push_back(gc::make<Kilo>());
  asm volatile("" : : "r"(n) : "memory");
  return v;
}

// "inuse_objects: inuse_bytes [alloc_objects: alloc_bytes]" of the record whose frames name
// fn, from the debug=1 text; all -1 if none.
std::array<long, 4> record_of(const std::string& text, const std::string& fn) {
  std::istringstream in(text);
  std::string line, header;
  while (std::getline(in, line)) {
    if (line.find(" @ 0x") != std::string::npos) header = line;
    if (line.rfind("#\t", 0) == 0 && line.find(fn) != std::string::npos && !header.empty()) {
      std::array<long, 4> r{};
      if (std::sscanf(header.c_str(), "%ld: %ld [%ld: %ld]", &r[0], &r[1], &r[2], &r[3]) == 4)
        return r;
    }
  }
  return {-1, -1, -1, -1};
}

}  // namespace

TEST(HeapProfile, KnownAllocationsAtTheirSiteWithTheirBytes) {
  ASSERT_EQ(g_previous_rate, 512 * 1024);
  gort::run([] {
    std::vector<gc::Ptr<Kilo>> kept = keep_site_for_heap_test(300);
    // In a goroutine that exits, so that no stale pointer on a live stack keeps a piece of
    // the garbage (stacks are scanned conservatively).
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([&wg] {
      garbage_site_for_heap_test(500);
      wg.done();
    });
    wg.wait();
    gc::collect();  // the garbage is freed: out of the in-use columns
    std::ostringstream text;
    gort::pprof::write_profile("heap", text, 1);
    const auto keep = record_of(text.str(), "keep_site_for_heap_test");
    const auto drop = record_of(text.str(), "garbage_site_for_heap_test");
    EXPECT_EQ(keep[0], 300) << text.str().substr(0, 2000);
    EXPECT_EQ(keep[1], 300 * 1024);
    EXPECT_EQ(keep[2], 300);
    EXPECT_EQ(drop[0], 0);
    EXPECT_EQ(drop[2], 500);
    EXPECT_EQ(drop[3], 500 * 1024);
    EXPECT_EQ(text.str().rfind("heap profile: ", 0), 0u);
    EXPECT_NE(text.str().find("# NumGC = "), std::string::npos);
  });
}

TEST(HeapProfile, GoToolPprofReadsHeapAndAllocs) {
  if (!gort::test::have_go()) GTEST_SKIP() << "no go tool pprof";
  const std::string heap = ::testing::TempDir() + "gort-heap.pb.gz";
  const std::string allocs = ::testing::TempDir() + "gort-allocs.pb.gz";
  gort::run([&] {
    std::vector<gc::Ptr<Kilo>> kept = keep_site_for_heap_test(200);
    garbage_site_for_heap_test(400);
    gc::collect();
    std::ofstream h(heap, std::ios::binary), a(allocs, std::ios::binary);
    gort::pprof::write_profile("heap", h, 0);
    gort::pprof::write_profile("allocs", a, 0);
  });
  const std::string go =
      "HOME=${HOME:-/tmp} GOCACHE=/tmp/gort-gocache GOFLAGS= go tool pprof -top ";
  const std::string inuse = gort::test::run_command(go + heap + " 2>&1");
  EXPECT_NE(inuse.find("inuse_space"), std::string::npos) << inuse;  // the default for heap
  EXPECT_NE(inuse.find("keep_site_for_heap_test"), std::string::npos) << inuse;
  const std::string all = gort::test::run_command(go + allocs + " 2>&1");
  EXPECT_NE(all.find("alloc_space"), std::string::npos) << all;  // the default for allocs
  EXPECT_NE(all.find("garbage_site_for_heap_test"), std::string::npos) << all;
}

// As in Go, the profile is as of the last completed cycle: allocations since then show
// up only after the next collection, which had the chance to free them.
TEST(HeapProfile, ShowsTheHeapAsOfTheLastCycle) {
  gort::run([] {
    // Something published (else the first profile publishes everything, as Go's does).
    std::vector<gc::Ptr<Kilo>> early = keep_site_for_heap_test(10);
    gc::collect();
    std::vector<gc::Ptr<Kilo>> late = late_site_for_heap_test(40);
    std::ostringstream before;
    gort::pprof::write_profile("heap", before, 1);
    EXPECT_EQ(record_of(before.str(), "late_site_for_heap_test")[0], -1) << before.str();
    gc::collect();
    std::ostringstream after;
    gort::pprof::write_profile("heap", after, 1);
    const auto rec = record_of(after.str(), "late_site_for_heap_test");
    EXPECT_EQ(rec[0], 40) << after.str().substr(0, 2000);
    EXPECT_EQ(rec[1], 40 * 1024);
    EXPECT_EQ(late.size() + early.size(), 50u);
  });
}

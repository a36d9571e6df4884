// Goroutine stacks: lazily committed, guarded, trimmed, randomly offset.
#include "runtime/stack.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gort/gort.hpp"
#include "os/os.hpp"
#include "test_util.hpp"

namespace {
using gort::test::rss_kib;

__attribute__((noinline)) int recurse_and_yield(int depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(depth);
  if (depth == 0) {
    gort::yield();  // a switch at the deepest point: the runtime sees the depth
    return pad[0];
  }
  return recurse_and_yield(depth - 1) + pad[0];
}

__attribute__((noinline)) int recurse(int depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(depth);
  if (depth == 0) return pad[0];
  return recurse(depth - 1) + pad[0];
}
}  // namespace

TEST(StackArena, CarvesDistinctGuardedSlots) {
  gort::runtime::StackArena arena(64 * 1024);
  std::set<std::uintptr_t> los;
  for (int i = 0; i < 200; ++i) {
    auto s = arena.carve();
    EXPECT_EQ(s.hi - s.lo, 64u * 1024);
    EXPECT_TRUE(los.insert(s.lo).second);
    *reinterpret_cast<volatile char*>(s.lo) = 1;  // the lowest usable byte is writable
    *reinterpret_cast<volatile char*>(s.hi - 1) = 1;
  }
  EXPECT_EQ(arena.slab_count(), 4u) << "64 slots per slab";
}

TEST(StackArenaDeathTest, GuardFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        gort::runtime::StackArena arena(64 * 1024);
        auto s = arena.carve();
        *reinterpret_cast<volatile char*>(s.lo - 1) = 1;
      },
      "");
}

// Resident pages of [lo, hi), from mincore: exact, and blind to sanitizer shadow memory.
std::size_t resident_pages(std::uintptr_t lo, std::uintptr_t hi) {
  std::vector<unsigned char> vec((hi - lo) / 4096);
  if (mincore(reinterpret_cast<void*>(lo), hi - lo, vec.data()) != 0) return ~std::size_t{0};
  std::size_t n = 0;
  for (unsigned char c : vec) n += c & 1;
  return n;
}

TEST(StackArena, TrimReturnsPagesBelowTheTop) {
  gort::runtime::StackArena arena(4 * 1024 * 1024);
  auto s = arena.carve();
  EXPECT_EQ(resident_pages(s.lo, s.hi), 0u) << "nothing committed before first touch";
  for (std::uintptr_t p = s.lo; p < s.hi; p += 4096) *reinterpret_cast<volatile char*>(p) = 1;
  EXPECT_EQ(resident_pages(s.lo, s.hi), 1024u);
  gort::runtime::StackArena::trim(s);
  EXPECT_EQ(resident_pages(s.lo, s.hi), gort::runtime::StackArena::kKeepBytes / 4096);
  EXPECT_EQ(*reinterpret_cast<volatile char*>(s.lo), 0) << "trimmed pages read as zero";
  EXPECT_EQ(*reinterpret_cast<volatile char*>(s.hi - 4096), 1) << "top pages kept";
}

TEST(StackArenaDeathTest, MprotectFallbackCatchesOverflow) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The child process starts fresh: the variable is read at its first guard installation.
  ::setenv("GORT_STACK_GUARD", "mprotect", 1);
  EXPECT_EXIT(
      {
        gort::runtime::StackArena arena(64 * 1024);
        arena.carve();
        if (gort::os::guard_kind() == gort::os::GuardKind::kMprotect)
          std::fprintf(stderr, "guard=mprotect\n");
        gort::run([] { recurse(1 << 20); }, gort::Options{.stack_size = 64 * 1024});
      },
      ::testing::ExitedWithCode(2), "guard=mprotect\n(.|\n)*fatal error: stack overflow");
  ::unsetenv("GORT_STACK_GUARD");
}

TEST(StackArena, UsesGuardInstallWhereTheKernelHasIt) {
  gort::runtime::StackArena arena(64 * 1024);
  arena.carve();
  // Informational on old kernels; on >= 6.13 (CI's) guards must not split mappings.
  std::ifstream f("/proc/sys/kernel/osrelease");
  std::string rel;
  f >> rel;
  int major = std::stoi(rel), minor = std::stoi(rel.substr(rel.find('.') + 1));
  if (major > 6 || (major == 6 && minor >= 13)) {
    EXPECT_EQ(gort::os::guard_kind(), gort::os::GuardKind::kGuardInstall);
  }
}

TEST(Stacks, StartAtRandomOffsets) {
  std::set<std::uintptr_t> offsets;
  gort::run(
      [&] {
        gort::WaitGroup wg;
        for (int i = 0; i < 64; ++i) {
          wg.add(1);
          gort::go([&] {
            int local = 0;
            offsets.insert(reinterpret_cast<std::uintptr_t>(&local) & 4095);
            wg.done();
          });
          wg.wait();  // one at a time: all reuse the same G and stack
        }
      },
      gort::Options{.procs = 1});
  EXPECT_GE(offsets.size(), 8u) << "frames should not all share one alignment";
}

TEST(Stacks, DeepRecursionWithinTheReservation) {
  int result = -1;
  gort::run(
      [&] {
        gort::WaitGroup wg;
        wg.add(1);
        gort::go([&] {
          result = recurse(400);  // ~400 KiB of frames
          wg.done();
        });
        wg.wait();
      },
      gort::Options{.procs = 1, .stack_size = 1024 * 1024});
  EXPECT_GE(result, 0);
}

TEST(Stacks, DeepGoroutineStacksAreTrimmedWhenFreed) {
  long grown = 0, after = 0, base = 0;
  gort::run(
      [&] {
        base = rss_kib();
        gort::WaitGroup deep, release;
        release.add(1);
        for (int i = 0; i < 32; ++i) {
          deep.add(1);
          gort::go([&] {
            recurse_and_yield(600);  // ~600 KiB each
            deep.done();
            release.wait();
          });
        }
        deep.wait();
        grown = rss_kib() - base;
        release.done();
        while (gort::num_goroutine() > 1) gort::yield();
        after = rss_kib() - base;
      },
      gort::Options{.procs = 1, .stack_size = 1024 * 1024});
  EXPECT_GT(grown, 32 * 500) << "the goroutines really used their stacks";
  EXPECT_LT(after, grown / 4) << "deep stacks were not trimmed when their goroutines exited";
}

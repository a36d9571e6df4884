// The heap's object layout: objects fill their cells with no header, and what a header
// held lives in per-span side tables (src/gc/heap.hpp): the span's one type or a per-cell
// type table once two types share a span, and a per-cell state table for counted Ptrs,
// finalizers and heap-profile samples; the cell index of an address, by reciprocal.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gc/gc_test_util.hpp"
#include "gc/heap.hpp"
#include "gort/gc.hpp"
#include "gort/gort.hpp"
#include "gort/pprof.hpp"
#include "gort/time.hpp"

namespace gc = gort::gc;
using namespace std::chrono_literals;

namespace {

std::atomic<int> g_links_destroyed{0};
std::atomic<int> g_counted_destroyed{0};

// Two types of one size (so of one size class): one traced, one with a destructor and no
// Members. Allocated alternately they share spans, so each span needs its type table.
struct Link {
  gc::Member<Link> next;
  std::int64_t tag = 0;
  explicit Link(std::int64_t t) : tag(t) {}
  ~Link() { g_links_destroyed.fetch_add(1, std::memory_order_relaxed); }
  void trace(gc::Visitor& v) const { v.visit(next); }
};
struct Counted {
  std::int64_t a = 0, b = 0;
  ~Counted() { g_counted_destroyed.fetch_add(1, std::memory_order_relaxed); }
};
static_assert(sizeof(Link) == sizeof(Counted));

// 8 bytes: the smallest size class.
struct TinyLink {
  gc::Member<TinyLink> next;
  void trace(gc::Visitor& v) const { v.visit(next); }
};
static_assert(sizeof(TinyLink) == 8);

using gort::test::in_goroutine;

// Collects until done() holds or 20 collections passed (a stale stack word can keep an
// object for some cycles: stacks are scanned conservatively). With 5, under TSan, 7 of 600
// objects were still alive in 2 runs of 16 (CountedPtrsFinalizersAndSamplesShareOne-
// SpansStateTable); with 20, none in 20 runs.
template <class Done>
void collect_until(Done done) {
  for (int i = 0; i < 20 && !done(); ++i) gc::collect();
}

}  // namespace

constexpr int kPairs = 3000;  // objects of each type

TEST(GcLayout, TwoTypesInOneSpanKeepTheirOwnTraceAndDestructor) {
  gort::run([] {
    const int links_before = g_links_destroyed.load();
    const int counted_before = g_counted_destroyed.load();
    gc::Ptr<Link> head;
    in_goroutine([&head] {
      gc::Ptr<Link> chain;
      for (int i = 0; i < kPairs; ++i) {
        auto l = gc::make<Link>(i);
        l->next = chain;
        chain = l;
        gc::make<Counted>();  // garbage at once, in the cell after l's
      }
      head = chain;
    });
    collect_until([&] { return g_counted_destroyed.load() - counted_before >= kPairs; });
    EXPECT_EQ(g_counted_destroyed.load() - counted_before, kPairs);
    EXPECT_EQ(g_links_destroyed.load() - links_before, 0);
    in_goroutine([&head] {  // no stale copy of a Link* left on this stack
      std::int64_t expect = kPairs - 1;
      int length = 0;
      for (const Link* l = head.get(); l != nullptr; l = l->next.get(), --expect, ++length)
        ASSERT_EQ(l->tag, expect);
      EXPECT_EQ(length, kPairs);
      head = nullptr;
    });
    collect_until([&] { return g_links_destroyed.load() - links_before >= kPairs; });
    EXPECT_EQ(g_links_destroyed.load() - links_before, kPairs);
  });
}

TEST(GcLayout, ObjectsTakeNoMoreThanTheirSizeClass) {
  gort::run([] {
    constexpr std::uint64_t kTiny = 20000;
    const gc::Stats before = gc::stats();
    gc::Ptr<TinyLink> keep;
    for (std::uint64_t i = 0; i < kTiny; ++i) {
      auto t = gc::make<TinyLink>();
      t->next = keep;
      keep = t;
    }
    const gc::Stats after = gc::stats();
    // 8-byte objects in 8-byte cells (16 with the old header).
    EXPECT_EQ(after.mallocs - before.mallocs, kTiny);
    EXPECT_EQ(after.total_alloc - before.total_alloc, kTiny * 8);
    for (int i = 0; i < 2; ++i) gc::collect();
    std::uint64_t length = 0;
    for (const TinyLink* t = keep.get(); t != nullptr; t = t->next.get()) ++length;
    EXPECT_EQ(length, kTiny);
  });
}

// A cache counts the allocations from a span when the span leaves it (src/gc/alloc.cpp,
// uncache), and stats() adds those of the spans still cached: every allocation counts
// once, whether its span is cached, revoked by a cycle's end or refilled, on goroutines
// of two Ps and on a plain thread (its own cache), with stats() read meanwhile.
TEST(GcLayout, StatsCountEveryAllocationOnceWhileSpansComeAndGo) {
  struct Small {
    std::uint64_t w[2];
  };
  struct Medium {
    std::uint64_t w[25];
  };
  struct Big {
    std::uint64_t w[375];
  };
  constexpr std::uint64_t kEach = 30000;  // per allocator and size
  const int old = gc::set_percent(10);    // cycles end, and revoke caches, all along
  gc::Stats before, after;
  gort::run(
      [&] {
        before = gc::stats();
        std::atomic<bool> done{false};
        auto allocate = [] {
          for (std::uint64_t i = 0; i < kEach; ++i) {
            gc::make<Small>();
            gc::make<Medium>();
            if (i % 8 == 0) gc::make<Big>();
          }
        };
        std::thread plain(allocate);
        gort::WaitGroup wg;
        for (int g = 0; g < 3; ++g) {
          wg.add(1);
          gort::go([&] {
            allocate();
            wg.done();
          });
        }
        gort::go([&] {
          while (!done.load()) {
            (void)gc::stats();
            gort::sleep(100us);
          }
        });
        wg.wait();
        plain.join();
        done = true;
        after = gc::stats();
      },
      gort::Options{.procs = 2});
  gc::set_percent(old);
  constexpr std::uint64_t kObjects = 4 * (2 * kEach + kEach / 8);
  EXPECT_EQ(after.mallocs - before.mallocs, kObjects);
  const std::uint64_t requested =
      4 * kEach * (sizeof(std::uint64_t) * (2 + 25) + sizeof(std::uint64_t) * 375 / 8);
  EXPECT_GE(after.total_alloc - before.total_alloc, requested);
  EXPECT_LE(after.total_alloc - before.total_alloc, requested + requested / 8);
  EXPECT_GT(after.num_gc, before.num_gc);
}

TEST(GcLayout, CountedPtrsFinalizersAndSamplesShareOneSpansStateTable) {
  static std::atomic<int> finalized{0};
  gort::run([] {
    constexpr int kObjects = 600;
    const int previous_rate = gort::pprof::set_memprofile_rate(1);  // sample every object
    const int links_before = g_links_destroyed.load();
    std::vector<gc::Ptr<Link>> held;  // counted Ptrs: outside any goroutine stack
    in_goroutine([&held] {
      for (int i = 0; i < kObjects; ++i) {
        auto l = gc::make<Link>(i);
        if (i % 3 == 0) held.push_back(l);
        if (i % 3 == 1) gc::set_finalizer(l, [](Link*) { finalized.fetch_add(1); });
      }
    });
    collect_until([&] { return finalized.load() >= kObjects / 3; });
    for (int i = 0; i < 100 && finalized.load() < kObjects / 3; ++i)
      std::this_thread::sleep_for(5ms);
    EXPECT_EQ(finalized.load(), kObjects / 3);
    ASSERT_EQ(held.size(), static_cast<std::size_t>(kObjects / 3));
    in_goroutine([&held] {  // no stale copy of a Link* left on this stack
      for (int i = 0; i < kObjects / 3; ++i) ASSERT_EQ(held[i]->tag, 3 * i);
    });
    // Every object but the held ones goes: the plain ones at the first collection, the
    // finalized ones after their finalizers ran.
    collect_until(
        [&] { return g_links_destroyed.load() - links_before >= kObjects - kObjects / 3; });
    EXPECT_EQ(g_links_destroyed.load() - links_before, kObjects - kObjects / 3);
    in_goroutine([&held] { held.clear(); });  // the last Ptr's object stays off this stack
    collect_until([&] { return g_links_destroyed.load() - links_before >= kObjects; });
    EXPECT_EQ(g_links_destroyed.load() - links_before, kObjects);
    gort::pprof::set_memprofile_rate(previous_rate);
  });
}

// Span::index_of multiplies by a reciprocal instead of dividing by the cell size: it must
// give the division's answer for every byte of every span of every size class.
TEST(GcLayout, CellIndexByReciprocalMatchesDivisionInEverySizeClass) {
  namespace detail = gort::gc::detail;
  const detail::SizeClassTable& t = detail::size_classes();
  ASSERT_GT(t.count, 0);
  detail::Span s;
  s.base = std::uintptr_t{1} << 40;
  for (int sc = 0; sc < t.count; ++sc) {
    const detail::SizeClass& k = t.classes[sc];
    s.cell = k.cell;
    s.index_magic = detail::cell_index_magic(k.cell);
    const std::uint64_t span_bytes = std::uint64_t{k.pages} * detail::kPageSize;
    std::uint64_t wrong = 0;
    for (std::uint64_t off = 0; off < span_bytes; ++off)
      if (s.index_of(s.base + off) != off / k.cell) ++wrong;
    EXPECT_EQ(wrong, 0u) << "cell " << k.cell << ", " << k.pages << " pages";
  }
}

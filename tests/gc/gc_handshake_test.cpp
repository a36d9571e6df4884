// The handshake's two parts (mutator.cpp): publishing a phase, which is the pause, and
// waiting for the busy sections that were running, which holds nobody but the collector.
// A thread stuck inside a section (here on purpose; in real life a thread the OS
// descheduled mid-allocation) lengthens the wait, not the pause, and does not stop other
// threads from starting to use the heap meanwhile.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gc/internal.hpp"
#include "gort/gc.hpp"

namespace gc = gort::gc;
namespace detail = gort::gc::detail;

namespace {

using namespace std::chrono_literals;

struct Leaf {
  long value = 0;
};

// A thread that sits inside a busy section for `hold`, as one descheduled there would.
class StuckSection {
 public:
  explicit StuckSection(std::chrono::milliseconds hold)
      : thread_([this, hold] {
          detail::MutatorState* ms = detail::mutator();  // registers the thread
          {
            detail::Busy busy(ms);
            inside_.store(true);
            std::this_thread::sleep_for(hold);
            left_.store(true);
          }
        }) {
    while (!inside_.load()) std::this_thread::yield();
  }
  ~StuckSection() { thread_.join(); }
  bool left() const { return left_.load(); }

 private:
  std::atomic<bool> inside_{false};
  std::atomic<bool> left_{false};
  std::thread thread_;
};

std::uint64_t last_pause_ns(const gc::Stats& s) {
  return s.pause_ns[(s.num_gc + 255) % 256];
}

TEST(GcHandshake, AStuckSectionLengthensTheWaitNotThePause) {
  gc::collect();  // settle: nothing of an earlier cycle in the numbers below
  const gc::Stats before = gc::stats();
  {
    StuckSection stuck(300ms);
    gc::collect();  // its mark start waits for the stuck section
    EXPECT_TRUE(stuck.left()) << "the cycle ended while a section that saw the old phase ran";
  }
  const gc::Stats after = gc::stats();
  ASSERT_EQ(after.num_gc, before.num_gc + 1);
  const std::uint64_t wait = after.handshake_wait_total_ns - before.handshake_wait_total_ns;
  const std::uint64_t pause = last_pause_ns(after);
  EXPECT_GE(wait, 200'000'000u) << "the collector did not wait for the section";
  EXPECT_GE(after.handshake_wait_max_ns, wait);
  // The pause is the two phase publications (membarriers): far below the wait, even on a loaded
  // machine or under a sanitizer.
  EXPECT_LT(pause, 100'000'000u) << "the wait was counted as pause";
  EXPECT_EQ(after.pause_total_ns - before.pause_total_ns, pause);
}

TEST(GcHandshake, ThreadsStartUsingTheHeapWhileTheCollectorWaits) {
  gc::collect();
  StuckSection stuck(1500ms);
  std::thread collector([] { gc::collect(); });
  std::this_thread::sleep_for(100ms);  // the cycle reaches its wait for the stuck section
  // A new thread registers and allocates (the registry is not locked during the wait).
  std::atomic<bool> allocated{false};
  std::thread newcomer([&allocated] {
    gc::Ptr<Leaf> p = gc::make<Leaf>();
    p->value = 42;
    allocated.store(p->value == 42);
  });
  newcomer.join();
  EXPECT_TRUE(allocated.load());
  EXPECT_FALSE(stuck.left()) << "the new thread waited for the stuck section";
  collector.join();
}

}  // namespace

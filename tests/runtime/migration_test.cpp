// Goroutines migrate between threads. errno is goroutine-local (saved and restored by the
// runtime) and thread_locals read through an out-of-line accessor name the *current*
// thread's variable. Accessors are noinline, as runtime.hpp tells users to do.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "gort/gort.hpp"
#include "os/os.hpp"

namespace {
thread_local int t_thread_tag = 0;
std::atomic<int> g_next_tag{1};

__attribute__((noinline)) int thread_tag() {
  if (t_thread_tag == 0) t_thread_tag = g_next_tag.fetch_add(1);
  return t_thread_tag;
}
__attribute__((noinline)) int kernel_tid() {
  return static_cast<int>(syscall(SYS_gettid));
}
__attribute__((noinline)) void set_errno(int v) {
  errno = v;
}
__attribute__((noinline)) int get_errno() {
  return errno;
}

// Parks and is readied by a goroutine that may run on another P: a migration chance.
void hop() {
  gort::WaitGroup wg;
  wg.add(1);
  gort::go([&] { wg.done(); });
  wg.wait();
}
}  // namespace

TEST(Migration, ErrnoAndThreadLocalsFollowTheRules) {
  gort::run(
      [] {
        std::atomic<int> migrations{0}, errno_wrong{0}, tag_wrong{0};
        gort::WaitGroup wg;
        for (int g = 0; g < 8; ++g) {
          wg.add(1);
          gort::go([&, g] {
            const int my_errno = 1000 + g;
            set_errno(my_errno);
            // 300 hops, and more until some migrations were seen: on an idle machine a
            // run of 300 can stay on one thread (3 runs in 40).
            for (int i = 0; i < 300 || (migrations.load() < 8 && i < 100'000); ++i) {
              const int tid_before = kernel_tid();
              const int tag_before = thread_tag();
              hop();
              if (kernel_tid() != tid_before) {
                migrations.fetch_add(1);
                if (thread_tag() == tag_before) tag_wrong.fetch_add(1);
              }
              if (get_errno() != my_errno) errno_wrong.fetch_add(1);
              set_errno(my_errno);
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_GT(migrations.load(), 0) << "the test needs goroutines to move between threads";
        EXPECT_EQ(errno_wrong.load(), 0);
        EXPECT_EQ(tag_wrong.load(), 0);
      },
      gort::Options{.procs = 2});
}

// The runtime runs system calls on goroutine stacks (a contended lock waits on a futex,
// go() may map and guard a new stack slab); one that fails harmlessly must not leave its
// errno in the goroutine's (found by the test above, rarely, under load: futex EAGAIN).
TEST(Migration, RuntimeSystemCallsLeaveErrnoAlone) {
  std::atomic<std::uint32_t> word{1};
  set_errno(1234);
  gort::os::futex_wait(&word, 0);  // value differs: EAGAIN inside
  EXPECT_EQ(get_errno(), 1234);
  gort::os::futex_wait(&word, 1, 1000);  // times out: ETIMEDOUT inside
  EXPECT_EQ(get_errno(), 1234);
  gort::os::futex_wake(&word, 1);
  EXPECT_EQ(get_errno(), 1234);
  const std::size_t size = 16 * gort::os::page_size();
  void* p = gort::os::reserve_lazy(size);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(get_errno(), 1234);
  EXPECT_TRUE(gort::os::install_guard(p, gort::os::page_size()));
  EXPECT_EQ(get_errno(), 1234);
  gort::os::decommit(static_cast<char*>(p) + gort::os::page_size(), gort::os::page_size());
  gort::os::release(p, size);
  EXPECT_EQ(get_errno(), 1234);
}

#include <gtest/gtest.h>

#include <atomic>

#include "gort/gort.hpp"

TEST(Run, ReturnsMainResult) {
  EXPECT_EQ(gort::run([] { return 7; }), 7);
  EXPECT_EQ(gort::run([] {}), 0);
}

TEST(Run, SpawnsAndJoins) {
  std::atomic<int> n{0};
  int rc = gort::run(
      [&] {
        gort::WaitGroup wg;
        for (int i = 0; i < 1000; ++i) {
          wg.add(1);
          gort::go([&] {
            n.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
        return n.load() == 1000 ? 0 : 1;
      },
      gort::Options{.procs = 2});
  EXPECT_EQ(rc, 0);
}

// Built against the installed package by tools/test.sh.
#include <gort/gort.hpp>

#include <atomic>
#include <cstdio>

int main() {
  std::atomic<int> sum{0};
  const int rc = gort::run([&] {
    gort::WaitGroup wg;
    for (int i = 1; i <= 100; ++i) {
      wg.add(1);
      gort::go([&, i] {
        sum += i;
        wg.done();
      });
    }
    wg.wait();
    return sum.load() == 5050 ? 0 : 1;
  });
  std::printf("consumer: sum=%d rc=%d\n", sum.load(), rc);
  return rc;
}

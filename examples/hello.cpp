// The smallest gort program: a worker pool over WaitGroup (README's example).
#include <gort/gort.hpp>

#include <atomic>
#include <cstdio>

int main() {
  return gort::run([] {
    std::atomic<long> sum{0};
    gort::WaitGroup wg;
    for (int w = 0; w < 8; ++w) {
      wg.add(1);
      gort::go([&sum, &wg, w] {
        for (int i = w; i < 1000; i += 8) sum += i;
        wg.done();
      });
    }
    wg.wait();
    std::printf("sum = %ld (goroutine %lu, %d Ps)\n", sum.load(),
                static_cast<unsigned long>(gort::goid()), gort::gomaxprocs());
    return sum == 499500 ? 0 : 1;
  });
}

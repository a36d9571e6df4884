// Helpers shared by the collector's tests.
#pragma once

#include "gort/gort.hpp"

namespace gort::test {

// Runs f in a goroutine and waits for it to exit: what f left on its stack is gone (a
// stale pointer on a live stack would keep objects alive: stacks are scanned
// conservatively).
template <class F>
void in_goroutine(F f) {
  gort::WaitGroup wg;
  wg.add(1);
  gort::go([&] {
    f();
    wg.done();
  });
  wg.wait();
}

}  // namespace gort::test

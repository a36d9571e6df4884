// Property tests (rapidcheck) for channels.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <deque>

#include "gort/gort.hpp"

// A buffered channel behaves like a bounded FIFO under any sequence of non-blocking
// sends and receives (select with default makes them non-blocking).
RC_GTEST_PROP(ChanProperty, BufferedChannelIsABoundedFifo, ()) {
  const auto cap = *rc::gen::inRange<std::size_t>(1, 9);
  const auto ops = *rc::gen::container<std::vector<bool>>(rc::gen::arbitrary<bool>());
  gort::run([&] {
    auto ch = gort::make_chan<int>(cap);
    std::deque<int> model;
    int next = 0;
    for (bool is_send : ops) {
      if (is_send) {
        const bool sent =
            gort::select(gort::on_send(ch, next, [] {}), gort::on_default([] {})) == 0;
        RC_ASSERT(sent == (model.size() < cap));
        if (sent) model.push_back(next);
        ++next;
      } else {
        std::optional<int> got;
        const bool received =
            gort::select(gort::on_recv(ch, [&](std::optional<int> v) { got = v; }),
                         gort::on_default([] {})) == 0;
        RC_ASSERT(received == !model.empty());
        if (received) {
          RC_ASSERT(got == model.front());
          model.pop_front();
        }
      }
      RC_ASSERT(ch.len() == model.size());
    }
  });
}

// With random numbers of producers and consumers and a random capacity, every item sent
// is received exactly once.
RC_GTEST_PROP(ChanProperty, EveryItemReceivedExactlyOnce, ()) {
  const int producers = *rc::gen::inRange(1, 6);
  const int consumers = *rc::gen::inRange(1, 6);
  const auto cap = *rc::gen::inRange<std::size_t>(0, 5);
  const int per = *rc::gen::inRange(0, 300);
  std::vector<int> seen(static_cast<std::size_t>(producers * per));
  gort::run(
      [&] {
        auto ch = gort::make_chan<int>(cap);
        auto counts = gort::make_chan<std::vector<int>>(static_cast<std::size_t>(consumers));
        gort::WaitGroup wg;
        for (int p = 0; p < producers; ++p) {
          wg.add(1);
          gort::go([&, p] {
            for (int i = 0; i < per; ++i) ch.send(p * per + i);
            wg.done();
          });
        }
        for (int c = 0; c < consumers; ++c)
          gort::go([&] {
            std::vector<int> mine;
            for (int v : ch) mine.push_back(v);
            counts.send(std::move(mine));
          });
        wg.wait();
        ch.close();
        for (int c = 0; c < consumers; ++c) {
          const std::optional<std::vector<int>> got = counts.recv();  // keep it alive
          for (int v : *got) seen[static_cast<std::size_t>(v)]++;
        }
      },
      gort::Options{.procs = 2});
  for (int s : seen) RC_ASSERT(s == 1);
}

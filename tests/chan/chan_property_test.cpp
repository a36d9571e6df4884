// Property tests (rapidcheck) for channels.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <atomic>
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

// Buffered channels of trivially copyable elements run on a lock-free ring with a locked
// slow path (src/chan/chan.cpp). Producers send with plain sends or selects over two such
// channels, consumers receive with plain receives or selects; a closer closes both
// channels at a random moment while producers may still be sending, so sends racing with
// close panic. Procs 1, 2 or 8. Every send that returned is received exactly once, none that
// panicked is, each consumer sees each producer's items on one channel in order, and everyone ends
// (no lost wake-up leaves a goroutine asleep: the run would hang).
RC_GTEST_PROP(ChanProperty, LockFreeBufferedExactlyOnceInOrderUnderSelectAndClose, ()) {
  const int producers = *rc::gen::inRange(1, 5);
  const int consumers = *rc::gen::inRange(1, 5);
  const auto cap = *rc::gen::inRange<std::size_t>(1, 9);
  const int per = *rc::gen::inRange(0, 400);
  const bool close_early = *rc::gen::arbitrary<bool>();
  const int close_after = *rc::gen::inRange(0, producers * per + 1);
  const int procs = *rc::gen::element(1, 2, 8);
  const auto use_select = *rc::gen::container<std::vector<bool>>(
      static_cast<std::size_t>(producers + consumers), rc::gen::arbitrary<bool>());
  struct Item {
    int producer;
    int index;
  };
  // Per producer: which indices were sent successfully; per consumer: what it got.
  std::vector<std::vector<int>> sent(static_cast<std::size_t>(producers));
  std::vector<std::vector<Item>> got(static_cast<std::size_t>(consumers));
  bool order_ok = true;
  gort::run(
      [&] {
        auto a = gort::make_chan<Item>(cap), b = gort::make_chan<Item>(cap);
        std::atomic<int> sends{0};
        auto close_both = [&] {
          a.close();
          b.close();
        };
        gort::WaitGroup prod_wg, cons_wg, closed_wg;
        closed_wg.add(1);
        gort::Mutex close_mu;
        bool closed = false;
        auto close_once = [&] {
          close_mu.lock();
          if (!closed) {
            closed = true;
            close_both();
            closed_wg.done();
          }
          close_mu.unlock();
        };
        for (int p = 0; p < producers; ++p) {
          prod_wg.add(1);
          gort::go([&, p] {
            const bool sel = use_select[static_cast<std::size_t>(p)];
            try {
              for (int i = 0; i < per; ++i) {
                const Item it{p, i};
                if (sel) {
                  gort::select(gort::on_send(a, it, [] {}), gort::on_send(b, it, [] {}));
                } else {
                  (i % 2 == 0 ? a : b).send(it);
                }
                sent[static_cast<std::size_t>(p)].push_back(i);
                if (close_early && sends.fetch_add(1) + 1 == close_after) close_once();
                if (i % 64 == 63) gort::yield();
              }
            } catch (const gort::Panic&) {
              // send on closed channel: this item was not sent; stop
            }
            prod_wg.done();
          });
        }
        for (int c = 0; c < consumers; ++c) {
          cons_wg.add(1);
          gort::go([&, c] {
            std::vector<int> last_a(static_cast<std::size_t>(producers), -1);
            std::vector<int> last_b(static_cast<std::size_t>(producers), -1);
            auto take = [&](const Item& it, std::vector<int>& last) {
              if (it.index <= last[static_cast<std::size_t>(it.producer)]) order_ok = false;
              last[static_cast<std::size_t>(it.producer)] = it.index;
              got[static_cast<std::size_t>(c)].push_back(it);
            };
            // The last consumer always selects over both channels, so neither channel is
            // ever left without a reader while plain consumers block on the other.
            if (c == consumers - 1 || use_select[static_cast<std::size_t>(producers + c)]) {
              gort::Chan<Item> ca = a, cb = b;
              while (ca || cb) {
                gort::select(gort::on_recv(ca,
                                           [&](std::optional<Item> v) {
                                             if (v) {
                                               take(*v, last_a);
                                             } else {
                                               ca = gort::Chan<Item>();
                                             }
                                           }),
                             gort::on_recv(cb, [&](std::optional<Item> v) {
                               if (v) {
                                 take(*v, last_b);
                               } else {
                                 cb = gort::Chan<Item>();
                               }
                             }));
              }
            } else {
              // One channel, chosen by parity, until it is closed and drained.
              const bool on_a = c % 2 == 0;
              for (const Item& it : on_a ? a : b) take(it, on_a ? last_a : last_b);
            }
            cons_wg.done();
          });
        }
        prod_wg.wait();
        close_once();
        closed_wg.wait();
        cons_wg.wait();
      },
      gort::Options{.procs = procs});
  RC_ASSERT(order_ok);
  std::vector<std::vector<int>> received(static_cast<std::size_t>(producers));
  for (const auto& g : got)
    for (const Item& it : g) received[static_cast<std::size_t>(it.producer)].push_back(it.index);
  for (int p = 0; p < producers; ++p) {
    auto& r = received[static_cast<std::size_t>(p)];
    std::sort(r.begin(), r.end());
    RC_ASSERT(r == sent[static_cast<std::size_t>(p)]);
  }
}

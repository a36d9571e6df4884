// Property test of marking on the Ps: for a random graph of collected nodes (shared
// nodes, cycles, self-loops) and a random set of Ptr roots, one gc::collect() on 1 to 4 Ps
// (idle Ps mark together, sharing work through the global list, src/gc/worker.cpp)
// destroys exactly the nodes that no root reaches. The graph is built by a goroutine that
// exits before the collection, so no stack holds a node (conservative scanning would keep
// one alive), and the roots live in a std::vector of Ptr (counted roots, not scanned).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <atomic>
#include <vector>

#include "gort/gc.hpp"
#include "gort/gort.hpp"
#include "test_util.hpp"

namespace gc = gort::gc;

namespace {

constexpr int kFanOut = 3;

struct GraphNode {
  GraphNode(int i, std::atomic<bool>* d) : id(i), destroyed(d) {}
  ~GraphNode() { destroyed[id].store(true, std::memory_order_relaxed); }
  void trace(gc::Visitor& v) const {
    for (const auto& m : out) v.visit(m);
  }
  gc::Member<GraphNode> out[kFanOut];
  int id;
  std::atomic<bool>* destroyed;  // this case's flags (kept: a destructor may run late)
};

struct Graph {
  int nodes = 0;
  std::vector<std::vector<int>> edges;  // per node, up to kFanOut targets
  std::vector<int> roots;
};

std::vector<bool> reachable(const Graph& g) {
  std::vector<bool> seen(static_cast<std::size_t>(g.nodes), false);
  std::vector<int> stack(g.roots.begin(), g.roots.end());
  while (!stack.empty()) {
    const int n = stack.back();
    stack.pop_back();
    if (seen[static_cast<std::size_t>(n)]) continue;
    seen[static_cast<std::size_t>(n)] = true;
    for (int t : g.edges[static_cast<std::size_t>(n)]) stack.push_back(t);
  }
  return seen;
}

// Makes the graph's nodes; returns Ptrs to its roots. Runs on a goroutine that then exits.
std::vector<gc::Ptr<GraphNode>> build(const Graph& g, std::atomic<bool>* destroyed) {
  std::vector<gc::Ptr<GraphNode>> all;
  all.reserve(static_cast<std::size_t>(g.nodes));
  for (int i = 0; i < g.nodes; ++i) all.push_back(gc::make<GraphNode>(i, destroyed));
  for (int i = 0; i < g.nodes; ++i) {
    const auto& targets = g.edges[static_cast<std::size_t>(i)];
    for (std::size_t k = 0; k < targets.size(); ++k)
      all[static_cast<std::size_t>(i)]->out[k] = all[static_cast<std::size_t>(targets[k])];
  }
  std::vector<gc::Ptr<GraphNode>> roots;
  for (int r : g.roots) roots.push_back(all[static_cast<std::size_t>(r)]);
  return roots;
}

}  // namespace

RC_GTEST_PROP(GcMarkProperty, ACollectionDestroysExactlyTheUnreachableNodes, ()) {
  Graph g;
  g.nodes = *rc::gen::inRange(1, gort::test::kTsan ? 400 : 3000);
  for (int i = 0; i < g.nodes; ++i)
    g.edges.push_back(*rc::gen::container<std::vector<int>>(
        static_cast<std::size_t>(*rc::gen::inRange(0, kFanOut + 1)), rc::gen::inRange(0, g.nodes)));
  g.roots = *rc::gen::container<std::vector<int>>(static_cast<std::size_t>(*rc::gen::inRange(0, 8)),
                                                  rc::gen::inRange(0, g.nodes));
  const int procs = *rc::gen::inRange(1, 5);
  // Never freed (a node kept by a stale word could be destroyed in a later case's cycle),
  // but reachable from here, so that LeakSanitizer does not report it.
  static auto* all_flags = new std::vector<std::atomic<bool>*>();
  auto* destroyed = new std::atomic<bool>[static_cast<std::size_t>(g.nodes)]();
  all_flags->push_back(destroyed);
  const std::vector<bool> live = reachable(g);
  std::vector<int> wrong_dead, wrong_alive;
  gort::run(
      [&] {
        std::vector<gc::Ptr<GraphNode>> roots;
        gort::WaitGroup wg;
        wg.add(1);
        gort::go([&] {
          roots = build(g, destroyed);
          wg.done();
        });
        wg.wait();
        gc::collect();
        for (int i = 0; i < g.nodes; ++i) {
          const bool dead = destroyed[i].load(std::memory_order_relaxed);
          if (live[static_cast<std::size_t>(i)] && dead) wrong_dead.push_back(i);
          if (!live[static_cast<std::size_t>(i)] && !dead) wrong_alive.push_back(i);
        }
        roots.clear();
      },
      gort::Options{.procs = procs});
  RC_ASSERT(wrong_dead.empty());   // a reachable node was freed
  RC_ASSERT(wrong_alive.empty());  // an unreachable node survived the cycle
}

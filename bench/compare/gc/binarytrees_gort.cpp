// binarytrees, gort version (bench/compare/gc.sh): the Benchmarks Game binary-trees
// program, plain sequential version, on gort's collected heap. It measures allocation and
// collection of many short-lived small objects (two-reference nodes) next to one
// long-lived tree.
//
// Fairness: the same algorithm as go/gc/binarytrees/main.go, binarytrees_boehm.cpp and
// binarytrees_newdelete.cpp: one mutator goroutine, depths one after the other, each tree
// built bottom-up (children before their parent) and checked by counting its nodes, so all
// four allocate exactly the same nodes in the same order. Nodes are gc::make<Node>() with
// two gc::Member<Node> and a trace(); the recursion holds gc::Ptr and raw pointers on the
// goroutine stack (scanned conservatively), as Go holds *Node. Only the collector may use
// other threads. No tuning: GOGC and GOMAXPROCS come from the environment, as in Go.
//
// Usage: compare_gort_binarytrees [depth] (default 21). Check lines on stdout in the
// standard format; at exit, on stderr:
//   GCSTATS num_gc=<n> pause_max_ns=<ns> pause_total_ns=<ns> stack_stop_max_ns=<ns>
//           handshake_wait_max_ns=<ns> mark_fractional_ns=<ns> mark_idle_ns=<ns>
// from gc::stats() (the last four: -1 if Stats does not have them).
#include <gort/gc.hpp>
#include <gort/gort.hpp>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

namespace {

namespace gc = gort::gc;

struct Node {
  gc::Member<Node> left, right;

  Node() = default;
  Node(const gc::Ptr<Node>& l, const gc::Ptr<Node>& r) : left(l), right(r) {}
  void trace(gc::Visitor& v) const {
    v.visit(left);
    v.visit(right);
  }
};

gc::Ptr<Node> bottom_up_tree(int depth) {
  if (depth <= 0) return gc::make<Node>();
  gc::Ptr<Node> l = bottom_up_tree(depth - 1);
  gc::Ptr<Node> r = bottom_up_tree(depth - 1);
  return gc::make<Node>(l, r);
}

long item_check(const Node* n) {
  if (!n->left) return 1;
  return 1 + item_check(n->left.get()) + item_check(n->right.get());
}

constexpr int kMinDepth = 4;

// Fields later versions of gc::Stats added (the longest stop of one goroutine for its
// stack scan, the collector's longest handshake wait): the value, or -1 when this gort's
// Stats has no such field, so that the program also builds against older commits.
#define GORT_STAT_OR_NONE(stats, field)        \
  [](const auto& st) -> long long {            \
    if constexpr (requires { st.field; }) {    \
      return static_cast<long long>(st.field); \
    } else {                                   \
      return -1;                               \
    }                                          \
  }(stats)

}  // namespace

int main(int argc, char** argv) {
  int n = 21;
  if (argc > 1) {
    char* end = nullptr;
    long v = std::strtol(argv[1], &end, 10);
    if (*end != '\0' || v < 0 || v > 30) {
      std::fprintf(stderr, "usage: %s [depth]\n", argv[0]);
      return 2;
    }
    n = static_cast<int>(v);
  }
  return gort::run([n] {
    const int max_depth = n < kMinDepth + 2 ? kMinDepth + 2 : n;
    const int stretch_depth = max_depth + 1;
    std::printf("stretch tree of depth %d\t check: %ld\n", stretch_depth,
                item_check(bottom_up_tree(stretch_depth).get()));

    gc::Ptr<Node> long_lived_tree = bottom_up_tree(max_depth);

    for (int depth = kMinDepth; depth <= max_depth; depth += 2) {
      const long iterations = 1L << (max_depth - depth + kMinDepth);
      long check = 0;
      for (long i = 0; i < iterations; ++i) check += item_check(bottom_up_tree(depth).get());
      std::printf("%ld\t trees of depth %d\t check: %ld\n", iterations, depth, check);
    }
    std::printf("long lived tree of depth %d\t check: %ld\n", max_depth,
                item_check(long_lived_tree.get()));
    std::fflush(stdout);

    const gc::Stats s = gc::stats();
    std::fprintf(stderr,
                 "GCSTATS num_gc=%" PRIu64 " pause_max_ns=%" PRIu64 " pause_total_ns=%" PRIu64
                 " stack_stop_max_ns=%lld handshake_wait_max_ns=%lld mark_fractional_ns=%lld"
                 " mark_idle_ns=%lld\n",
                 s.num_gc, s.pause_max_ns, s.pause_total_ns,
                 GORT_STAT_OR_NONE(s, stack_stop_max_ns),
                 GORT_STAT_OR_NONE(s, handshake_wait_max_ns),
                 GORT_STAT_OR_NONE(s, mark_fractional_ns), GORT_STAT_OR_NONE(s, mark_idle_ns));
  });
}

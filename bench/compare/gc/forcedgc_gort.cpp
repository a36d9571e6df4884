// forcedgc, gort version (bench/compare/gc.sh, part "forcedgc"; Go's side is
// go/gc/forcedgc/main.go): the time of one forced collection (gc::collect: mark and
// sweep) of a live binary tree of depth 20 (2,097,151 nodes of two gc::Member, 16 bytes
// each, no header) with nothing else running. Every P is idle, so the Ps mark it together
// (src/gc/worker.cpp); run with GOMAXPROCS=1 and GOMAXPROCS=2, the ratio is the marking's
// parallel speedup. GODEBUG=gcworkers=0 makes the collector thread mark alone.
//
// Usage: compare_gort_forcedgc [depth [collections]] (defaults 20 and 20). Prints
//   RESULT ms_per_gc <ms>
// and exits non-zero if the tree lost a node.
#include <gort/gc.hpp>
#include <gort/gort.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

namespace gc = gort::gc;

struct Node {
  gc::Member<Node> left, right;
  void trace(gc::Visitor& v) const {
    v.visit(left);
    v.visit(right);
  }
};

gc::Ptr<Node> tree(int depth) {
  gc::Ptr<Node> n = gc::make<Node>();
  if (depth > 0) {
    n->left = tree(depth - 1);
    n->right = tree(depth - 1);
  }
  return n;
}

long count(const Node* n) {
  return n == nullptr ? 0 : 1 + count(n->left.get()) + count(n->right.get());
}

int arg(int argc, char** argv, int i, int def, int max) {
  if (argc <= i) return def;
  char* end = nullptr;
  const long v = std::strtol(argv[i], &end, 10);
  if (*end != '\0' || v < 0 || v > max) {
    std::fprintf(stderr, "usage: %s [depth [collections]]\n", argv[0]);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  const int depth = arg(argc, argv, 1, 20, 26);
  const int rounds = arg(argc, argv, 2, 20, 1 << 20);
  return gort::run([depth, rounds] {
    gc::Ptr<Node> root = tree(depth);
    gc::collect();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) gc::collect();
    const std::chrono::duration<double, std::milli> all = std::chrono::steady_clock::now() - start;
    const long want = (1L << (depth + 1)) - 1;
    if (const long got = count(root.get()); got != want) {
      std::fprintf(stderr, "tree has %ld nodes, want %ld\n", got, want);
      return 1;
    }
    std::printf("RESULT ms_per_gc %.2f\n", all.count() / (rounds > 0 ? rounds : 1));
    return 0;
  });
}

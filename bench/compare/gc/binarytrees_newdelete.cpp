// binarytrees, plain new/delete version (bench/compare/gc.sh): the Benchmarks Game
// binary-trees program, plain sequential version, with manual memory management
// (std::unique_ptr children, glibc malloc underneath). The baseline without a collector:
// what allocating and freeing the same nodes costs when the program knows when each dies.
//
// Fairness: the same algorithm as go/gc/binarytrees/main.go, binarytrees_gort.cpp and
// binarytrees_boehm.cpp: one thread, depths one after the other, each tree built
// bottom-up (children before their parent) and checked by counting its nodes, so all four
// allocate exactly the same nodes in the same order. Each short-lived tree is freed (a
// recursive delete) as soon as it has been checked, which the collected versions leave
// to their collector. No memory pool: one new and one delete per node.
//
// Usage: compare_newdelete_binarytrees [depth] (default 21). Check lines on stdout in
// the standard format. No GC statistics (no collector).
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace {

struct Node {
  std::unique_ptr<Node> left, right;
};

std::unique_ptr<Node> bottom_up_tree(int depth) {
  if (depth <= 0) return std::make_unique<Node>();
  std::unique_ptr<Node> l = bottom_up_tree(depth - 1);
  std::unique_ptr<Node> r = bottom_up_tree(depth - 1);
  auto n = std::make_unique<Node>();
  n->left = std::move(l);
  n->right = std::move(r);
  return n;
}

long item_check(const Node* n) {
  if (!n->left) return 1;
  return 1 + item_check(n->left.get()) + item_check(n->right.get());
}

constexpr int kMinDepth = 4;

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
  const int max_depth = n < kMinDepth + 2 ? kMinDepth + 2 : n;
  const int stretch_depth = max_depth + 1;
  std::printf("stretch tree of depth %d\t check: %ld\n", stretch_depth,
              item_check(bottom_up_tree(stretch_depth).get()));

  std::unique_ptr<Node> long_lived_tree = bottom_up_tree(max_depth);

  for (int depth = kMinDepth; depth <= max_depth; depth += 2) {
    const long iterations = 1L << (max_depth - depth + kMinDepth);
    long check = 0;
    for (long i = 0; i < iterations; ++i) check += item_check(bottom_up_tree(depth).get());
    std::printf("%ld\t trees of depth %d\t check: %ld\n", iterations, depth, check);
  }
  std::printf("long lived tree of depth %d\t check: %ld\n", max_depth,
              item_check(long_lived_tree.get()));
  return 0;
}

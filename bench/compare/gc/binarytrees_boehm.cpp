// binarytrees, Boehm GC version (bench/compare/gc.sh): the Benchmarks Game binary-trees
// program, plain sequential version, on the Boehm-Demers-Weiser conservative collector
// (libgc, GC_MALLOC). It measures allocation and collection of many short-lived small
// objects (two-pointer nodes) next to one long-lived tree.
//
// Fairness: the same algorithm as go/gc/binarytrees/main.go, binarytrees_gort.cpp and
// binarytrees_newdelete.cpp: one mutator thread, depths one after the other, each tree
// built bottom-up (children before their parent) and checked by counting its nodes, so all
// four allocate exactly the same nodes in the same order. Boehm runs with its defaults
// (non-incremental, parallel marking on as many threads as the library chooses; GC_NPROCS
// and the other GC_* environment variables apply); nothing is tuned.
//
// Usage: compare_boehm_binarytrees [depth] (default 21). Check lines on stdout in the
// standard format; at exit, on stderr:
//   GCSTATS num_gc=<n> pause_max_ns=<ns> pause_total_ns=<ns> stw_max_ns=<ns> markers=<n>
// A Boehm collection stops the mutator from GC_EVENT_START to GC_EVENT_END (the mutator
// is the thread that triggered it, inside GC_MALLOC), so that is the pause counted here;
// stw_max_ns is the longest stopped-world interval within a collection (world stopped
// to world restarted), the part other threads would wait for.
// GC_THREADS: the library is the threaded build (and declares GC_get_parallel only then).
#define GC_THREADS 1
#include <gc.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

struct Node {
  Node* left;
  Node* right;
};

Node* bottom_up_tree(int depth) {
  Node* l = nullptr;
  Node* r = nullptr;
  if (depth > 0) {
    l = bottom_up_tree(depth - 1);
    r = bottom_up_tree(depth - 1);
  }
  auto* n = static_cast<Node*>(GC_MALLOC(sizeof(Node)));  // zero-filled
  if (n == nullptr) std::abort();
  n->left = l;
  n->right = r;
  return n;
}

long item_check(const Node* n) {
  if (n->left == nullptr) return 1;
  return 1 + item_check(n->left) + item_check(n->right);
}

constexpr int kMinDepth = 4;

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Collection events arrive with the allocation lock held, one collection at a time.
std::uint64_t g_start, g_stop, g_pause_max, g_pause_total, g_stw_max;

void on_event(GC_EventType e) {
  switch (e) {
    case GC_EVENT_START:
      g_start = now_ns();
      break;
    case GC_EVENT_END: {
      const std::uint64_t d = now_ns() - g_start;
      g_pause_total += d;
      if (d > g_pause_max) g_pause_max = d;
      break;
    }
    case GC_EVENT_PRE_STOP_WORLD:
      g_stop = now_ns();
      break;
    case GC_EVENT_POST_START_WORLD: {
      const std::uint64_t d = now_ns() - g_stop;
      if (d > g_stw_max) g_stw_max = d;
      break;
    }
    default:
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  GC_INIT();
  GC_set_on_collection_event(on_event);
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
              item_check(bottom_up_tree(stretch_depth)));

  Node* long_lived_tree = bottom_up_tree(max_depth);

  for (int depth = kMinDepth; depth <= max_depth; depth += 2) {
    const long iterations = 1L << (max_depth - depth + kMinDepth);
    long check = 0;
    for (long i = 0; i < iterations; ++i) check += item_check(bottom_up_tree(depth));
    std::printf("%ld\t trees of depth %d\t check: %ld\n", iterations, depth, check);
  }
  std::printf("long lived tree of depth %d\t check: %ld\n", max_depth, item_check(long_lived_tree));
  std::fflush(stdout);

  std::fprintf(stderr,
               "GCSTATS num_gc=%lu pause_max_ns=%lu pause_total_ns=%lu stw_max_ns=%lu "
               "markers=%d\n",
               static_cast<unsigned long>(GC_get_gc_no()), static_cast<unsigned long>(g_pause_max),
               static_cast<unsigned long>(g_pause_total), static_cast<unsigned long>(g_stw_max),
               GC_get_parallel());
  return 0;
}

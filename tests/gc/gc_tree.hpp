// A complete binary tree of collected nodes, for the GC tests that need a live heap of a
// known shape: tree(depth) holds 2^(depth+1) - 1 nodes of two Members each.
#pragma once

#include "gort/gc.hpp"

namespace gort::test {

struct TreeNode {
  gc::Member<TreeNode> left, right;
  void trace(gc::Visitor& v) const {
    v.visit(left);
    v.visit(right);
  }
};

inline gc::Ptr<TreeNode> tree(int depth) {
  gc::Ptr<TreeNode> n = gc::make<TreeNode>();
  if (depth > 0) {
    n->left = tree(depth - 1);
    n->right = tree(depth - 1);
  }
  return n;
}

inline long count(const TreeNode* n) {
  return n == nullptr ? 0 : 1 + count(n->left.get()) + count(n->right.get());
}

}  // namespace gort::test

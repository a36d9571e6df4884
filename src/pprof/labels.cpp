// Goroutine labels. A G points at an interned, immutable label list: the CPU profiler's
// signal handler copies that pointer into a sample without any synchronisation beyond the
// pointer itself, and the list must still exist when the sample is turned into a profile.
// Interned lists are never freed; a program uses few distinct label sets (Go's own advice
// for labels), and identical sets share one pointer, which also makes samples with equal
// labels merge by pointer comparison.
#include <algorithm>
#include <mutex>
#include <set>

#include "gort/pprof.hpp"
#include "pprof/profile_builder.hpp"
#include "runtime/sched.hpp"

namespace gort::pprof {

namespace detail {

const LabelList* intern_labels(LabelList labels) {
  if (labels.empty()) return nullptr;
  std::sort(labels.begin(), labels.end());
  static std::mutex mu;
  static std::set<LabelList>* interned = new std::set<LabelList>();  // never destroyed
  std::lock_guard<std::mutex> l(mu);
  return &*interned->insert(std::move(labels)).first;
}

}  // namespace detail

void set_goroutine_labels(const LabelSet& labels) {
  runtime::G* g = runtime::current_g();
  if (g == nullptr) return;  // not a goroutine: nothing to label
  g->labels = detail::intern_labels(labels);
}

LabelSet goroutine_labels() {
  const runtime::G* g = runtime::current_g();
  if (g == nullptr || g->labels == nullptr) return {};
  return *static_cast<const detail::LabelList*>(g->labels);
}

}  // namespace gort::pprof

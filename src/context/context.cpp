// Contexts, after Go's context package.
//
// A Context is a shared_ptr to an immutable-shaped node: a *cancel* node (with_cancel,
// with_deadline: a done channel, an error, children, maybe a timer) or a *value* node
// (with_value: one key/value pair). The background context is the null node. Every node
// keeps its parent alive (values and deadlines are looked up through the chain) and
// knows its nearest cancel node (itself, or an ancestor's), which answers done() and err().
//
// Cancellation. A cancel node registers with its nearest cancel ancestor, which keeps it
// as a *weak* reference: cancelling the ancestor cancels every child still alive, while a
// child nobody references any more is simply freed (and unregisters itself). Go must keep
// the child until cancel is called or the parent is done; without a collector, C++ would
// leak it. cancel() sets the error and detaches the children under the node's lock, then,
// with no lock held, closes done, cancels the children, unregisters from the ancestor and
// stops the timer.
//
// Locks. ContextNode::mu_ is a runtime lock, not a gort::Mutex: cancel also runs in a
// timer's fire(), on the scheduler's own stack, where a goroutine lock could not park.
// Order: a node's mu_, then timer locks (arming a deadline's timer). mu_ is never held
// while taking another node's mu_ or while closing a channel, so cancellation cascades
// through any depth without lock-order cycles.
#include "gort/context.hpp"

#include <string>
#include <unordered_map>

#include "gort/runtime.hpp"
#include "runtime/lock.hpp"
#include "runtime/sched.hpp"
#include "runtime/timer.hpp"

namespace gort {

namespace {

class ContextCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "context"; }
  std::string message(int ev) const override {
    switch (static_cast<ContextError>(ev)) {
      case ContextError::canceled:
        return "context canceled";
      case ContextError::deadline_exceeded:
        return "context deadline exceeded";
    }
    return "unknown context error";
  }
};

std::int64_t to_nanotime(Time t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

const std::error_category& context_category() noexcept {
  static const ContextCategory category;
  return category;
}

namespace detail {

class ContextTimer;

class ContextNode {
 public:
  enum class Kind { kCancel, kValue };

  ContextNode(Kind kind, std::shared_ptr<ContextNode> parent)
      : kind_(kind), parent_(std::move(parent)) {
    if (kind_ == Kind::kCancel) {
      canceller_ = this;
      done_ = make_chan<std::monostate>();
    } else {
      canceller_ = parent_ != nullptr ? parent_->canceller_ : nullptr;
    }
    if (parent_ != nullptr) deadline_ = parent_->deadline_;
  }
  ~ContextNode();
  ContextNode(const ContextNode&) = delete;
  ContextNode& operator=(const ContextNode&) = delete;

  static const std::shared_ptr<ContextNode>& node_of(const Context& c) { return c.node_; }
  static Context context_of(std::shared_ptr<ContextNode> n) { return Context(std::move(n)); }
  static CancelFunc cancel_func_of(std::shared_ptr<ContextNode> n) {
    return CancelFunc(std::move(n));
  }

  static std::pair<Context, CancelFunc> make_cancel(const Context& parent,
                                                    std::optional<Time> deadline);
  static Context make_value(const Context& parent, const void* key,
                            std::shared_ptr<const void> value);

  void cancel(std::error_code why, bool unregister);

  const ContextNode* canceller() const noexcept { return canceller_; }
  const Chan<std::monostate>& done() const noexcept { return done_; }
  std::error_code err() const {
    runtime::LockGuard l(mu_);
    return err_;
  }
  const std::optional<Time>& deadline() const noexcept { return deadline_; }
  const void* find_value(const void* key) const noexcept {
    for (const ContextNode* n = this; n != nullptr; n = n->parent_.get())
      if (n->kind_ == Kind::kValue && n->key_ == key) return n->value_.get();
    return nullptr;
  }

 private:
  void register_with_ancestor(const std::shared_ptr<ContextNode>& self);
  void unregister() GORT_EXCLUDES(mu_);
  void arm_deadline(const std::shared_ptr<ContextNode>& self, Time t);

  const Kind kind_;
  const std::shared_ptr<ContextNode> parent_;
  const ContextNode* canceller_ = nullptr;  // nearest cancel node: this, an ancestor, none
  std::optional<Time> deadline_;            // effective deadline (own or inherited)
  // Value nodes.
  const void* key_ = nullptr;
  std::shared_ptr<const void> value_;
  // Cancel nodes.
  Chan<std::monostate> done_;
  ContextNode* registered_with_ = nullptr;  // set once, before the node is shared
  mutable runtime::Lock mu_;
  std::error_code err_ GORT_GUARDED_BY(mu_);
  std::unordered_map<ContextNode*, std::weak_ptr<ContextNode>> children_ GORT_GUARDED_BY(mu_);
  ContextTimer* timer_ GORT_GUARDED_BY(mu_) = nullptr;
};

// The deadline timer: holds its context weakly, so an abandoned context is freed at once
// (its destructor stops the timer) instead of living until the deadline.
class ContextTimer final : public runtime::TimerCore {
 public:
  explicit ContextTimer(std::weak_ptr<ContextNode> n)
      : TimerCore(/*counted=*/true), node_(std::move(n)) {}
  void fire(std::int64_t) override {
    if (std::shared_ptr<ContextNode> n = node_.lock())
      n->cancel(ContextError::deadline_exceeded, true);
  }

 private:
  ~ContextTimer() override = default;
  std::weak_ptr<ContextNode> node_;
};

ContextNode::~ContextNode() GORT_NO_THREAD_SAFETY_ANALYSIS {
  // Last owner gone: nobody else can reach this node (the timer and the ancestor hold it
  // weakly), so its fields need no lock.
  if (kind_ != Kind::kCancel) return;
  unregister();
  if (timer_ != nullptr) {
    runtime::timer_disarm(timer_);
    timer_->release();
  }
}

void ContextNode::unregister() {
  if (registered_with_ == nullptr) return;
  runtime::LockGuard l(registered_with_->mu_);
  registered_with_->children_.erase(this);
}

void ContextNode::register_with_ancestor(const std::shared_ptr<ContextNode>& self) {
  // canceller_ of the parent: a const view; registering mutates its child set under its
  // lock, which is what the lock is for.
  auto* ancestor = const_cast<ContextNode*>(parent_ != nullptr ? parent_->canceller_ : nullptr);
  if (ancestor == nullptr) return;  // background: never cancelled
  std::error_code parent_err;
  {
    runtime::LockGuard l(ancestor->mu_);
    parent_err = ancestor->err_;
    if (!parent_err) {
      ancestor->children_.emplace(this, self);
      registered_with_ = ancestor;
    }
  }
  if (parent_err) cancel(parent_err, false);
}

void ContextNode::cancel(std::error_code why, bool unregister_from_parent) {
  std::unordered_map<ContextNode*, std::weak_ptr<ContextNode>> children;
  ContextTimer* timer = nullptr;
  {
    runtime::LockGuard l(mu_);
    if (err_) return;
    err_ = why;
    children.swap(children_);
    timer = std::exchange(timer_, nullptr);
  }
  done_.close();  // err_ is set first: whoever sees done closed sees the error
  for (auto& entry : children)
    if (std::shared_ptr<ContextNode> child = entry.second.lock()) child->cancel(why, false);
  if (unregister_from_parent) unregister();
  if (timer != nullptr) {
    runtime::timer_disarm(timer);
    timer->release();
  }
}

void ContextNode::arm_deadline(const std::shared_ptr<ContextNode>& self, Time t) {
  const std::int64_t when = to_nanotime(t);
  if (when <= os::nanotime()) {
    cancel(ContextError::deadline_exceeded, true);
    return;
  }
  if (runtime::current_sched() == nullptr)
    throw Panic("gort::with_deadline/with_timeout used outside gort::run");
  runtime::LockGuard l(mu_);
  if (err_) return;  // the parent was cancelled meanwhile
  timer_ = new ContextTimer(self);
  runtime::timer_arm(timer_, when, 0);
}

std::pair<Context, CancelFunc> ContextNode::make_cancel(const Context& parent,
                                                        std::optional<Time> deadline) {
  auto node = std::make_shared<ContextNode>(Kind::kCancel, node_of(parent));
  if (deadline) node->deadline_ = deadline;
  node->register_with_ancestor(node);
  if (deadline) node->arm_deadline(node, *deadline);
  return {context_of(node), cancel_func_of(node)};
}

Context ContextNode::make_value(const Context& parent, const void* key,
                                std::shared_ptr<const void> value) {
  auto node = std::make_shared<ContextNode>(Kind::kValue, node_of(parent));
  node->key_ = key;
  node->value_ = std::move(value);
  return context_of(std::move(node));
}

}  // namespace detail

using detail::ContextNode;

// ---- Context ------------------------------------------------------------------------

const Chan<std::monostate>& Context::done() const noexcept {
  static const Chan<std::monostate> never;  // the nil channel
  const ContextNode* c = node_ != nullptr ? node_->canceller() : nullptr;
  return c != nullptr ? c->done() : never;
}

std::error_code Context::err() const {
  const ContextNode* c = node_ != nullptr ? node_->canceller() : nullptr;
  return c != nullptr ? c->err() : std::error_code();
}

std::optional<Time> Context::deadline() const {
  return node_ != nullptr ? node_->deadline() : std::nullopt;
}

const void* Context::find_value(const void* key) const noexcept {
  return node_ != nullptr ? node_->find_value(key) : nullptr;
}

void CancelFunc::operator()() const {
  if (node_ != nullptr) node_->cancel(ContextError::canceled, true);
}

Context background() {
  return Context();
}

Context todo() {
  return Context();
}

std::pair<Context, CancelFunc> with_cancel(const Context& parent) {
  return ContextNode::make_cancel(parent, std::nullopt);
}

std::pair<Context, CancelFunc> with_deadline(const Context& parent, Time t) {
  // The parent's deadline is already sooner: it will cancel the child in time.
  if (std::optional<Time> d = parent.deadline(); d && *d <= t) return with_cancel(parent);
  return ContextNode::make_cancel(parent, t);
}

std::pair<Context, CancelFunc> with_timeout(const Context& parent, std::chrono::nanoseconds d) {
  const Time t0 = now();
  const auto room = Time::max() - t0;  // a huge timeout saturates instead of overflowing
  return with_deadline(
      parent, d >= room ? Time::max() : t0 + std::chrono::duration_cast<Time::duration>(d));
}

Context with_value_erased(const Context& parent, const void* key,
                          std::shared_ptr<const void> value) {
  return ContextNode::make_value(parent, key, std::move(value));
}

}  // namespace gort

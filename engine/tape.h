// Reverse-mode automatic differentiation over tensors (Stan Math's chain() design at the
// granularity of fused operations). An operation computes its output now and records one node
// whose backward() adds the output's gradient, pulled back, into its inputs' gradients. Nodes and
// the tensors they save live in the tape's arena; rewind() between steps recycles both.
#pragma once

#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "engine/arena.h"

namespace pv {

// A tensor on the tape: `size` values and, unless it is a constant (grad == nullptr), as many
// gradient accumulators. A Var is a view: it never owns its memory.
template <class T>
struct Var {
  T* value = nullptr;
  T* grad = nullptr;
  int64_t size = 0;

  bool needs_grad() const { return grad != nullptr; }
  Var slice(int64_t offset, int64_t n) const {
    return {value + offset, grad ? grad + offset : nullptr, n};
  }
  T scalar() const { return value[0]; }
};

template <class T>
struct Node {
  virtual void backward() = 0;
  // Nodes live in the arena and are never destroyed: they hold only views and numbers.
};

template <class T>
class Tape {
 public:
  explicit Tape(size_t arena_block_bytes = size_t(1) << 20) : arena_(arena_block_bytes) {}
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // A fresh tensor whose gradient starts at zero (values uninitialised).
  Var<T> variable(int64_t n) {
    Var<T> v{arena_.allocate_array<T>(n), arena_.allocate_array<T>(n), n};
    std::memset(v.grad, 0, sizeof(T) * size_t(n));
    return v;
  }
  // A tensor that receives no gradient (data, fixed hyper-parameters, noise draws).
  Var<T> constant(int64_t n) { return {arena_.allocate_array<T>(n), nullptr, n}; }
  Var<T> constant(int64_t n, T fill) {
    Var<T> v = constant(n);
    for (int64_t i = 0; i < n; ++i) v.value[i] = fill;
    return v;
  }
  // Wraps buffers owned by the caller (model parameters and their gradients).
  static Var<T> external(T* values, T* grads, int64_t n) { return {values, grads, n}; }

  template <class NodeT, class... Args>
  NodeT* record(Args&&... args) {
    static_assert(std::is_trivially_destructible_v<NodeT>, "tape nodes are never destroyed");
    void* p = arena_.allocate(sizeof(NodeT), alignof(NodeT));
    NodeT* node = new (p) NodeT(std::forward<Args>(args)...);
    nodes_.push_back(node);
    return node;
  }

  // Seeds d(loss)/d(loss) = 1 and runs every node's backward in reverse recording order.
  void backward(const Var<T>& loss) {
    loss.grad[0] += T(1);
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) (*it)->backward();
  }

  // Forgets the recorded step; memory is kept for the next one.
  void rewind() {
    nodes_.clear();
    arena_.rewind();
  }

  Arena& arena() { return arena_; }
  size_t node_count() const { return nodes_.size(); }

 private:
  Arena arena_;
  std::vector<Node<T>*> nodes_;
};

}  // namespace pv

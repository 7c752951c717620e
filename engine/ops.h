// Generic tape operations on the CPU: element-wise maps, broadcasting arithmetic, reductions and
// the prior log-densities. The model's fused cell x gene operation lives with the model; these
// are the glue around it. Each op computes its output eagerly and records one node.
#pragma once

#include <cmath>

#include "engine/error.h"
#include "engine/tape.h"
#include "kernels/dynamics.h"
#include "kernels/math.h"

namespace pv::ops {

namespace detail {

// Element-wise maps over at least this many elements run on every thread (each element is
// independent, so the results do not depend on the number of threads).
constexpr int64_t kParallelElements = 4096;

inline void check_broadcast(int64_t a, int64_t b, const char* op) {
  if (a != b && a != 1 && b != 1)
    fail(PV_ERR_INTERNAL, std::string(op) + ": sizes " + std::to_string(a) + " and " +
                              std::to_string(b) + " do not broadcast");
}

// y = f(x) element-wise; backward: x.grad += y.grad * f'(x, y).
template <class T, class F>
struct UnaryNode : Node<T> {
  Var<T> x, y;
  UnaryNode(Var<T> x_, Var<T> y_) : x(x_), y(y_) {}
  void backward() override {
    if (!x.needs_grad()) return;
#pragma omp parallel for schedule(static) if (x.size >= kParallelElements)
    for (int64_t i = 0; i < x.size; ++i) x.grad[i] += y.grad[i] * F::derivative(x.value[i], y.value[i]);
  }
};

template <class T, class F>
Var<T> unary(Tape<T>& tape, const Var<T>& x) {
  Var<T> y = tape.variable(x.size);
#pragma omp parallel for schedule(static) if (x.size >= kParallelElements)
  for (int64_t i = 0; i < x.size; ++i) y.value[i] = F::value(x.value[i]);
  tape.template record<UnaryNode<T, F>>(x, y);
  return y;
}

struct ExpFn {
  template <class T> static T value(T x) { return std::exp(x); }
  template <class T> static T derivative(T, T y) { return y; }
};
struct LogFn {
  template <class T> static T value(T x) { return std::log(x); }
  template <class T> static T derivative(T x, T) { return T(1) / x; }
};
struct SoftplusFn {
  template <class T> static T value(T x) { return pv::softplus(x); }
  template <class T> static T derivative(T x, T) { return pv::sigmoid(x); }
};
struct SquareFn {
  template <class T> static T value(T x) { return x * x; }
  template <class T> static T derivative(T x, T) { return T(2) * x; }
};

// z = f(a, b) with size-1 broadcasting on either side.
template <class T, class F>
struct BinaryNode : Node<T> {
  Var<T> a, b, z;
  BinaryNode(Var<T> a_, Var<T> b_, Var<T> z_) : a(a_), b(b_), z(z_) {}
  void backward() override {
    for (int64_t i = 0; i < z.size; ++i) {
      const int64_t ia = a.size == 1 ? 0 : i, ib = b.size == 1 ? 0 : i;
      T da, db;
      F::derivatives(a.value[ia], b.value[ib], &da, &db);
      if (a.needs_grad()) a.grad[ia] += z.grad[i] * da;
      if (b.needs_grad()) b.grad[ib] += z.grad[i] * db;
    }
  }
};

template <class T, class F>
Var<T> binary(Tape<T>& tape, const Var<T>& a, const Var<T>& b, const char* name) {
  check_broadcast(a.size, b.size, name);
  const int64_t n = a.size > b.size ? a.size : b.size;
  Var<T> z = tape.variable(n);
  for (int64_t i = 0; i < n; ++i) z.value[i] = F::value(a.value[a.size == 1 ? 0 : i], b.value[b.size == 1 ? 0 : i]);
  tape.template record<BinaryNode<T, F>>(a, b, z);
  return z;
}

struct AddFn {
  template <class T> static T value(T a, T b) { return a + b; }
  template <class T> static void derivatives(T, T, T* da, T* db) { *da = T(1); *db = T(1); }
};
struct SubFn {
  template <class T> static T value(T a, T b) { return a - b; }
  template <class T> static void derivatives(T, T, T* da, T* db) { *da = T(1); *db = T(-1); }
};
struct MulFn {
  template <class T> static T value(T a, T b) { return a * b; }
  template <class T> static void derivatives(T a, T b, T* da, T* db) { *da = b; *db = a; }
};
struct DivFn {
  template <class T> static T value(T a, T b) { return a / b; }
  template <class T> static void derivatives(T a, T b, T* da, T* db) { *da = T(1) / b; *db = -a / (b * b); }
};

template <class T>
struct SumNode : Node<T> {
  Var<T> x, y;
  T weight;
  SumNode(Var<T> x_, Var<T> y_, T w) : x(x_), y(y_), weight(w) {}
  void backward() override {
    if (!x.needs_grad()) return;
    const T g = y.grad[0] * weight;
    for (int64_t i = 0; i < x.size; ++i) x.grad[i] += g;
  }
};

// sum_i log density(x_i; loc_i, scale_i) for a density with named partials (NormalLogPdf).
template <class T, class Density>
struct LogDensitySumNode : Node<T> {
  Var<T> x, loc, scale, y;
  LogDensitySumNode(Var<T> x_, Var<T> l, Var<T> s, Var<T> y_) : x(x_), loc(l), scale(s), y(y_) {}
  void backward() override {
    const T g = y.grad[0];
    for (int64_t i = 0; i < x.size; ++i) {
      const int64_t il = loc.size == 1 ? 0 : i, is = scale.size == 1 ? 0 : i;
      const auto r = Density::eval(x.value[i], loc.value[il], scale.value[is]);
      if (x.needs_grad()) x.grad[i] += g * r.d_x;
      if (loc.needs_grad()) loc.grad[il] += g * r.d_loc;
      if (scale.needs_grad()) scale.grad[is] += g * r.d_scale;
    }
  }
};

struct NormalDensity {
  template <class T> static NormalLogPdf<T> eval(T x, T loc, T scale) { return normal_log_pdf(x, loc, scale); }
};
struct LogNormalDensity {
  template <class T> static NormalLogPdf<T> eval(T x, T loc, T scale) { return lognormal_log_pdf(x, loc, scale); }
};

template <class T, class Density>
Var<T> log_density_sum(Tape<T>& tape, const Var<T>& x, const Var<T>& loc, const Var<T>& scale, const char* name) {
  check_broadcast(x.size, loc.size, name);
  check_broadcast(x.size, scale.size, name);
  Var<T> y = tape.variable(1);
  T total = T(0);
  for (int64_t i = 0; i < x.size; ++i)
    total += Density::eval(x.value[i], loc.value[loc.size == 1 ? 0 : i], scale.value[scale.size == 1 ? 0 : i]).value;
  y.value[0] = total;
  tape.template record<LogDensitySumNode<T, Density>>(x, loc, scale, y);
  return y;
}

// (u, s) = mrna_dynamics(inputs) element-wise; each input is size n or 1 (broadcast).
template <class T>
struct DynamicsNode : Node<T> {
  Var<T> in[kDynInputs];
  Var<T> u, s;
  DynamicsNode(const Var<T> (&inputs)[kDynInputs], Var<T> u_, Var<T> s_) : u(u_), s(s_) {
    for (int k = 0; k < kDynInputs; ++k) in[k] = inputs[k];
  }
  void backward() override {
    for (int64_t i = 0; i < u.size; ++i) {
      T x[kDynInputs];
      for (int k = 0; k < kDynInputs; ++k) x[k] = in[k].value[in[k].size == 1 ? 0 : i];
      const DynamicsWithGrad<T> d = mrna_dynamics_with_grad(x[0], x[1], x[2], x[3], x[4], x[5]);
      for (int k = 0; k < kDynInputs; ++k)
        if (in[k].needs_grad())
          in[k].grad[in[k].size == 1 ? 0 : i] += u.grad[i] * d.du[k] + s.grad[i] * d.ds[k];
    }
  }
};

}  // namespace detail

template <class T> Var<T> exp(Tape<T>& t, const Var<T>& x) { return detail::unary<T, detail::ExpFn>(t, x); }
template <class T> Var<T> log(Tape<T>& t, const Var<T>& x) { return detail::unary<T, detail::LogFn>(t, x); }
template <class T> Var<T> softplus(Tape<T>& t, const Var<T>& x) { return detail::unary<T, detail::SoftplusFn>(t, x); }
template <class T> Var<T> square(Tape<T>& t, const Var<T>& x) { return detail::unary<T, detail::SquareFn>(t, x); }

template <class T> Var<T> add(Tape<T>& t, const Var<T>& a, const Var<T>& b) { return detail::binary<T, detail::AddFn>(t, a, b, "add"); }
template <class T> Var<T> sub(Tape<T>& t, const Var<T>& a, const Var<T>& b) { return detail::binary<T, detail::SubFn>(t, a, b, "sub"); }
template <class T> Var<T> mul(Tape<T>& t, const Var<T>& a, const Var<T>& b) { return detail::binary<T, detail::MulFn>(t, a, b, "mul"); }
template <class T> Var<T> div(Tape<T>& t, const Var<T>& a, const Var<T>& b) { return detail::binary<T, detail::DivFn>(t, a, b, "div"); }

// weight * sum_i x_i, as a size-1 tensor.
template <class T>
Var<T> sum(Tape<T>& tape, const Var<T>& x, T weight = T(1)) {
  Var<T> y = tape.variable(1);
  T total = T(0);
  for (int64_t i = 0; i < x.size; ++i) total += x.value[i];
  y.value[0] = weight * total;
  tape.template record<detail::SumNode<T>>(x, y, weight);
  return y;
}

template <class T>
Var<T> normal_log_prob_sum(Tape<T>& t, const Var<T>& x, const Var<T>& loc, const Var<T>& scale) {
  return detail::log_density_sum<T, detail::NormalDensity>(t, x, loc, scale, "normal_log_prob_sum");
}
template <class T>
Var<T> lognormal_log_prob_sum(Tape<T>& t, const Var<T>& x, const Var<T>& loc, const Var<T>& scale) {
  return detail::log_density_sum<T, detail::LogNormalDensity>(t, x, loc, scale, "lognormal_log_prob_sum");
}

namespace detail {
template <class T>
struct GatherNode : Node<T> {
  Var<T> x, y;
  const int64_t* index;
  GatherNode(Var<T> x_, Var<T> y_, const int64_t* i) : x(x_), y(y_), index(i) {}
  void backward() override {
    if (!x.needs_grad()) return;
    for (int64_t i = 0; i < y.size; ++i) x.grad[index[i]] += y.grad[i];
  }
};
}  // namespace detail

// y[i] = x[index[i]]; the index array must outlive the step (arena or caller-owned).
template <class T>
Var<T> gather(Tape<T>& tape, const Var<T>& x, const int64_t* index, int64_t n) {
  Var<T> y = tape.variable(n);
  for (int64_t i = 0; i < n; ++i) y.value[i] = x.value[index[i]];
  tape.template record<detail::GatherNode<T>>(x, y, index);
  return y;
}

template <class T>
struct DynamicsVars {
  Var<T> u, s;
};

// The transcription dynamics as one node: inputs in the order tau, u0, s0, alpha, beta, gamma.
template <class T>
DynamicsVars<T> mrna_dynamics(Tape<T>& tape, const Var<T>& tau, const Var<T>& u0, const Var<T>& s0,
                              const Var<T>& alpha, const Var<T>& beta, const Var<T>& gamma) {
  const Var<T> in[kDynInputs] = {tau, u0, s0, alpha, beta, gamma};
  int64_t n = 1;
  for (const Var<T>& v : in) {
    detail::check_broadcast(n, v.size, "mrna_dynamics");
    if (v.size > n) n = v.size;
  }
  DynamicsVars<T> out{tape.variable(n), tape.variable(n)};
  for (int64_t i = 0; i < n; ++i) {
    T x[kDynInputs];
    for (int k = 0; k < kDynInputs; ++k) x[k] = in[k].value[in[k].size == 1 ? 0 : i];
    const Dynamics<T> d = pv::mrna_dynamics(x[0], x[1], x[2], x[3], x[4], x[5]);
    out.u.value[i] = d.u;
    out.s.value[i] = d.s;
  }
  tape.template record<detail::DynamicsNode<T>>(in, out.u, out.s);
  return out;
}

}  // namespace pv::ops

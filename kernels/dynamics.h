// The analytic solution of du/dt = alpha - beta u, ds/dt = beta u - gamma s (MODEL.md section 2),
// in one form that is smooth and accurate through gamma == beta and finite at extreme inputs.
//
// With phi(x) = (1 - e^-x) / x (phi(0) = 1):
//   u(tau) = u0 e^{-beta tau} + alpha tau phi(beta tau)
//   s(tau) = s0 e^{-gamma tau} + alpha tau phi(gamma tau) - (alpha - beta u0) tau E(beta, gamma, tau)
// where E(b, g, tau) = (e^{-b tau} - e^{-g tau}) / ((g - b) tau) = e^{-min(b,g) tau} phi(|g - b| tau)
// is symmetric in (b, g), equals e^{-b tau} at b == g (Li et al. 2021, eq. 2.12), and never
// forms an infinite exponential. phi only ever sees non-negative arguments.
#pragma once

#include <cmath>

#include "kernels/pv_hd.h"

namespace pv {

// Series terms for phi and phi' on [0, 1): enough that truncation is below the type's rounding.
template <class T>
PV_HD constexpr int decay_series_terms() {
  return sizeof(T) == sizeof(float) ? 10 : 18;
}

// phi(x) = (1 - e^-x) / x for x >= 0.
template <class T>
PV_HD T decay_fraction(T x) {
  using std::expm1;
  if (x < T(1)) {
    // 1 - x/2 (1 - x/3 (1 - x/4 (...)))
    T p = T(1);
    for (int m = decay_series_terms<T>() + 1; m >= 2; --m) p = T(1) - x / T(m) * p;
    return p;
  }
  return -expm1(-x) / x;
}

// phi'(x) = (e^-x (1 + x) - 1) / x^2 for x >= 0; phi'(0) = -1/2.
template <class T>
PV_HD T decay_fraction_derivative(T x) {
  using std::exp;
  if (x < T(1)) {
    // -1/2 sum_n (n+1)(-x)^n 2/(n+2)!, nested with term ratios -x (n+2) / ((n+1)(n+3)).
    T p = T(1);
    for (int n = decay_series_terms<T>() - 1; n >= 0; --n)
      p = T(1) - x * T(n + 2) / (T(n + 1) * T(n + 3)) * p;
    return T(-0.5) * p;
  }
  return (exp(-x) * (T(1) + x) - T(1)) / (x * x);
}

template <class T>
struct DecayDifference {
  T value, d_b, d_g, d_tau;
};

// E(b, g, tau) above with its partial derivatives; continuous across b == g.
template <class T>
PV_HD DecayDifference<T> decay_difference(T b, T g, T tau) {
  using std::exp;
  const bool b_low = b <= g;
  const T lo = b_low ? b : g;
  const T gap = b_low ? g - b : b - g;
  const T e_lo = exp(-lo * tau);
  const T value = e_lo * decay_fraction(gap * tau);
  const T e_dphi = e_lo * decay_fraction_derivative(gap * tau);
  const T d_lo = -tau * value - tau * e_dphi;
  const T d_hi = tau * e_dphi;
  const T d_tau = -lo * value + gap * e_dphi;
  return b_low ? DecayDifference<T>{value, d_lo, d_hi, d_tau}
               : DecayDifference<T>{value, d_hi, d_lo, d_tau};
}

// Indices of the six inputs in the derivative arrays.
enum DynamicsInput { kDynTau = 0, kDynU0, kDynS0, kDynAlpha, kDynBeta, kDynGamma, kDynInputs };

template <class T>
struct Dynamics {
  T u, s;
};

template <class T>
struct DynamicsWithGrad {
  T u, s;
  T du[kDynInputs];  // du / d(tau, u0, s0, alpha, beta, gamma)
  T ds[kDynInputs];
};

template <class T>
PV_HD Dynamics<T> mrna_dynamics(T tau, T u0, T s0, T alpha, T beta, T gamma) {
  using std::exp;
  const T eu = exp(-beta * tau);
  const T es = exp(-gamma * tau);
  const T u = u0 * eu + alpha * tau * decay_fraction(beta * tau);
  const T s = s0 * es + alpha * tau * decay_fraction(gamma * tau) -
              (alpha - beta * u0) * tau * decay_difference(beta, gamma, tau).value;
  return {u, s};
}

template <class T>
PV_HD DynamicsWithGrad<T> mrna_dynamics_with_grad(T tau, T u0, T s0, T alpha, T beta, T gamma) {
  using std::exp;
  DynamicsWithGrad<T> r;
  const T eu = exp(-beta * tau);
  const T es = exp(-gamma * tau);
  const T phi_b = decay_fraction(beta * tau);
  const T phi_g = decay_fraction(gamma * tau);
  const DecayDifference<T> e = decay_difference(beta, gamma, tau);
  const T k = alpha - beta * u0;

  r.u = u0 * eu + alpha * tau * phi_b;
  r.du[kDynTau] = k * eu;
  r.du[kDynU0] = eu;
  r.du[kDynS0] = T(0);
  r.du[kDynAlpha] = tau * phi_b;
  r.du[kDynBeta] = -tau * u0 * eu + alpha * tau * tau * decay_fraction_derivative(beta * tau);
  r.du[kDynGamma] = T(0);

  r.s = s0 * es + alpha * tau * phi_g - k * tau * e.value;
  r.ds[kDynTau] = -gamma * s0 * es + alpha * es - k * (e.value + tau * e.d_tau);
  r.ds[kDynU0] = beta * tau * e.value;
  r.ds[kDynS0] = es;
  r.ds[kDynAlpha] = tau * phi_g - tau * e.value;
  r.ds[kDynBeta] = u0 * tau * e.value - k * tau * e.d_b;
  r.ds[kDynGamma] =
      -s0 * tau * es + alpha * tau * tau * decay_fraction_derivative(gamma * tau) - k * tau * e.d_g;
  return r;
}

}  // namespace pv

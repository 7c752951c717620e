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

// phi and phi' switch to their Taylor series below this argument, where the closed forms lose
// digits to cancellation; the series length keeps truncation below the type's rounding.
template <class T>
PV_HD constexpr T decay_series_limit() {
  return sizeof(T) == sizeof(float) ? T(1) : T(0.05);
}
template <class T>
PV_HD constexpr int decay_series_terms() {
  return sizeof(T) == sizeof(float) ? 11 : 9;
}

template <class T>
struct Decay {
  T e;     // e^-x
  T phi;   // (1 - e^-x) / x, phi(0) = 1
  T dphi;  // phi'(x) = (e^-x (1 + x) - 1) / x^2, phi'(0) = -1/2
};

// e^-x, phi(x) and phi'(x) for x >= 0 from a single exponential.
template <class T>
PV_HD Decay<T> decay(T x) {
  using std::exp;
  if (x < decay_series_limit<T>()) {
    // phi = 1 - x/2 (1 - x/3 (1 - x/4 (...))); phi' = -1/2 sum_n (n+1)(-x)^n 2/(n+2)! nested
    // with term ratios -x (n+2) / ((n+1)(n+3)). Constant divisors fold at compile time.
    T p = T(1), q = T(1);
    for (int m = decay_series_terms<T>() + 1; m >= 2; --m) p = T(1) - x * (T(1) / T(m)) * p;
    for (int n = decay_series_terms<T>() - 1; n >= 0; --n)
      q = T(1) - x * (T(n + 2) / (T(n + 1) * T(n + 3))) * q;
    return {T(1) - x * p, p, T(-0.5) * q};
  }
  const T e = exp(-x);
  return {e, (T(1) - e) / x, (e * (T(1) + x) - T(1)) / (x * x)};
}

template <class T>
PV_HD T decay_fraction(T x) {
  return decay(x).phi;
}

template <class T>
PV_HD T decay_fraction_derivative(T x) {
  return decay(x).dphi;
}

template <class T>
struct DecayDifference {
  T value, d_b, d_g, d_tau;
};

// E(b, g, tau) above with its partial derivatives; continuous across b == g. e_b = e^{-b tau} and
// e_g = e^{-g tau} are passed in, already known to the caller.
template <class T>
PV_HD DecayDifference<T> decay_difference(T b, T g, T tau, T e_b, T e_g) {
  const bool b_low = b <= g;
  const T lo = b_low ? b : g;
  const T gap = b_low ? g - b : b - g;
  const T e_lo = b_low ? e_b : e_g;
  const Decay<T> d = decay(gap * tau);
  const T value = e_lo * d.phi;
  const T e_dphi = e_lo * d.dphi;
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
  const Decay<T> db = decay(beta * tau), dg = decay(gamma * tau);
  const T u = u0 * db.e + alpha * tau * db.phi;
  const T s = s0 * dg.e + alpha * tau * dg.phi -
              (alpha - beta * u0) * tau * decay_difference(beta, gamma, tau, db.e, dg.e).value;
  return {u, s};
}

template <class T>
PV_HD DynamicsWithGrad<T> mrna_dynamics_with_grad(T tau, T u0, T s0, T alpha, T beta, T gamma) {
  DynamicsWithGrad<T> r;
  const Decay<T> db = decay(beta * tau), dg = decay(gamma * tau);
  const T eu = db.e, es = dg.e;
  const DecayDifference<T> e = decay_difference(beta, gamma, tau, eu, es);
  const T k = alpha - beta * u0;

  r.u = u0 * eu + alpha * tau * db.phi;
  r.du[kDynTau] = k * eu;
  r.du[kDynU0] = eu;
  r.du[kDynS0] = T(0);
  r.du[kDynAlpha] = tau * db.phi;
  r.du[kDynBeta] = -tau * u0 * eu + alpha * tau * tau * db.dphi;
  r.du[kDynGamma] = T(0);

  r.s = s0 * es + alpha * tau * dg.phi - k * tau * e.value;
  r.ds[kDynTau] = -gamma * s0 * es + alpha * es - k * (e.value + tau * e.d_tau);
  r.ds[kDynU0] = beta * tau * e.value;
  r.ds[kDynS0] = es;
  r.ds[kDynAlpha] = tau * dg.phi - tau * e.value;
  r.ds[kDynBeta] = u0 * tau * e.value - k * tau * e.d_b;
  r.ds[kDynGamma] = -s0 * tau * es + alpha * tau * tau * dg.dphi - k * tau * e.d_g;
  return r;
}

}  // namespace pv

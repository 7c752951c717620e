// Scalar special functions and log-densities, each with its analytic derivatives. Written once for
// both backends; T is float or double.
#pragma once

#include <cmath>

#include "kernels/pv_hd.h"

namespace pv {

template <class T>
struct Constants {
  static constexpr T log_2pi = T(1.8378770664093454835606594728112);
  static constexpr T two_pi = T(6.2831853071795864769252867665590);
};

// log(1 + e^x) without overflow; its derivative is sigmoid(x).
template <class T>
PV_HD T softplus(T x) {
  using std::exp; using std::fabs; using std::log1p;
  return (x > T(0) ? x : T(0)) + log1p(exp(-fabs(x)));
}

template <class T>
PV_HD T sigmoid(T x) {
  using std::exp;
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

template <class T>
struct SoftplusSigmoid {
  T softplus, sigmoid;
};

// softplus(x) and sigmoid(x) = softplus'(x) from one exponential. Note log sigmoid(x) =
// x - softplus(x) and log sigmoid(-x) = -softplus(x).
template <class T>
PV_HD SoftplusSigmoid<T> softplus_and_sigmoid(T x) {
  using std::exp; using std::fabs; using std::log1p;
  const T e = exp(-fabs(x));
  const T inv = T(1) / (T(1) + e);
  return {(x > T(0) ? x : T(0)) + log1p(e), x >= T(0) ? inv : e * inv};
}

// log(sigmoid(x)) = -softplus(-x); its derivative is sigmoid(-x).
template <class T>
PV_HD T log_sigmoid(T x) {
  return -softplus(-x);
}

template <class T>
struct LogSumExp2 {
  T value;
  T d_a;  // = exp(a - value), the weight of a
  T d_b;
};

// log(e^a + e^b) and its two partial derivatives (a softmax over the pair).
template <class T>
PV_HD LogSumExp2<T> logsumexp2(T a, T b) {
  using std::exp; using std::log1p; using std::isinf;
  if (isinf(a) && isinf(b) && a < T(0) && b < T(0)) return {a, T(0.5), T(0.5)};
  const T hi = a > b ? a : b;
  const T lo = a > b ? b : a;
  const T e = exp(lo - hi);
  const T value = hi + log1p(e);
  const T w_hi = T(1) / (T(1) + e);
  const T w_lo = e * w_hi;
  return a > b ? LogSumExp2<T>{value, w_hi, w_lo} : LogSumExp2<T>{value, w_lo, w_hi};
}

template <class T>
struct NormalLogPdf {
  T value, d_x, d_loc, d_scale;
};

template <class T>
PV_HD NormalLogPdf<T> normal_log_pdf(T x, T loc, T scale) {
  using std::log;
  const T z = (x - loc) / scale;
  const T value = T(-0.5) * z * z - log(scale) - T(0.5) * Constants<T>::log_2pi;
  const T d_x = -z / scale;
  return {value, d_x, -d_x, (z * z - T(1)) / scale};
}

// LogNormal(loc, scale) density of x > 0: Normal(log x; loc, scale) - log x.
template <class T>
PV_HD NormalLogPdf<T> lognormal_log_pdf(T x, T loc, T scale) {
  using std::log;
  const T log_x = log(x);
  NormalLogPdf<T> r = normal_log_pdf(log_x, loc, scale);
  r.value -= log_x;
  r.d_x = (r.d_x - T(1)) / x;
  return r;
}

template <class T>
struct PoissonLogPmf {
  T value, d_rate;
};

// log Poisson(k; rate), k a non-negative integer count held in T.
template <class T>
PV_HD PoissonLogPmf<T> poisson_log_pmf(T k, T rate) {
  using std::lgamma; using std::log;
  if (k == T(0)) return {-rate, T(-1)};
  return {k * log(rate) - rate - lgamma(k + T(1)), k / rate - T(1)};
}

// Digamma (psi) for x > 0: recurrence up to x >= 10, then the asymptotic series.
template <class T>
PV_HD T digamma(T x) {
  using std::log;
  T shift = T(0);
  while (x < T(10)) {
    shift -= T(1) / x;
    x += T(1);
  }
  const T r = T(1) / x;
  const T r2 = r * r;
  const T series =
      r2 * (T(1) / 12 - r2 * (T(1) / 120 - r2 * (T(1) / 252 - r2 * (T(1) / 240 - r2 * (T(1) / 132)))));
  return shift + log(x) - T(0.5) * r - series;
}

template <class T>
struct NegBinomialLogPmf {
  T value, d_total_count, d_logits;
};

// log NB(k; total_count, logits) in Pyro/PyTorch's parametrisation (mean = total_count e^logits):
// lgamma(k + r) - lgamma(r) - lgamma(k + 1) + r log sigmoid(-l) + k log sigmoid(l).
template <class T>
PV_HD NegBinomialLogPmf<T> negbinomial_log_pmf(T k, T total_count, T logits) {
  using std::lgamma;
  const T ls_neg = log_sigmoid(-logits);
  const T ls_pos = log_sigmoid(logits);
  T value = total_count * ls_neg + k * ls_pos;
  T d_total = ls_neg;
  if (k != T(0)) {
    value += lgamma(k + total_count) - lgamma(total_count) - lgamma(k + T(1));
    d_total += digamma(k + total_count) - digamma(total_count);
  }
  const T d_logits = -total_count * sigmoid(logits) + k * sigmoid(-logits);
  return {value, d_total, d_logits};
}

template <class T>
struct NegBinomialMeanLogPmf {
  T value, d_mean, d_log_dispersion;
};

// The model's negative binomial: total_count = e^r, logits = log(mean) - log(e^r + eps).
template <class T>
PV_HD NegBinomialMeanLogPmf<T> negbinomial_mean_log_pmf(T k, T mean, T log_dispersion, T eps) {
  using std::exp; using std::log;
  const T total = exp(log_dispersion);
  const T logits = log(mean) - log(total + eps);
  const NegBinomialLogPmf<T> nb = negbinomial_log_pmf(k, total, logits);
  const T d_logits_d_r = -total / (total + eps);
  return {nb.value, nb.d_logits / mean, nb.d_total_count * total + nb.d_logits * d_logits_d_r};
}

}  // namespace pv

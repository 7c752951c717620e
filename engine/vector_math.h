// Float exp/log/log1p written as plain branch-free arithmetic, so that inside an `omp simd` loop
// GCC inlines and vectorises them. glibc's vector routines (libmvec) are calls: each one makes the
// loop spill every live vector register, and its log1pf costs about three expf. These cover only
// the ranges the fast likelihood needs, to about 2 ulp (tests/test_math.cpp measures them).
#pragma once

#include <cstdint>

namespace pv {
namespace vmath {

// Bit casts without memcpy, for the same reason as min_f below.
__attribute__((always_inline)) inline int32_t bits_of(float x) { return __builtin_bit_cast(int32_t, x); }
__attribute__((always_inline)) inline float float_of(int32_t i) { return __builtin_bit_cast(float, i); }

// min and max by value: std::min/max bind references, and a local whose address is taken becomes a
// per-lane array inside an `omp simd` loop, which can leave the whole loop scalar.
__attribute__((always_inline)) inline float min_f(float a, float b) { return b < a ? b : a; }
__attribute__((always_inline)) inline float max_f(float a, float b) { return a < b ? b : a; }

// max(x, 0) for any x, and min or max of x >= 0 with a constant c > 0, taken on the bit patterns:
// among non-negative floats the integer order is the float order, and a negative float is a
// negative integer. A float `a < b ? a : b` is not a min to GCC without -ffinite-math-only: it
// becomes a branch, GCC carries the constant side through everything computed from it (all of an
// exponential's reduction), and if-conversion then selects each of those values (four selects and
// four constants per exponential); an integer min or max is one instruction.
__attribute__((always_inline)) inline float relu(float x) {
  const int32_t b = bits_of(x);
  return float_of(b < 0 ? 0 : b);
}
__attribute__((always_inline)) inline float min_nonnegative(float x, float c) {
  const int32_t a = bits_of(x), b = bits_of(c);
  return float_of(a < b ? a : b);
}
__attribute__((always_inline)) inline float max_nonnegative(float x, float c) {
  const int32_t a = bits_of(x), b = bits_of(c);
  return float_of(a < b ? b : a);
}

// The shared work of e^-x for x >= 0, with x clamped at 80 (e^-80 = 1.8e-35, still a normal float
// and as good as 0 here): Cody-Waite reduction -x = n ln2 + r with |r| <= ln2/2, then Taylor to r^7
// (error 5e-9) by Horner, stopping two steps short: e^-x = (p1 r + 1) 2^n, p1 = p2 r + 1.
struct ExpReduced {
  float n, r, p1, p2, scale;  // scale = 2^n
};
__attribute__((always_inline)) inline ExpReduced exp_neg_reduced(float x) {
  const float y = -min_nonnegative(x, 80.0f);
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  const float shifted = y * 1.44269504f + kShift;
  const float n = shifted - kShift;
  const float r = (y - n * 0.693145752f) - n * 1.42860677e-6f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  const float p2 = p * r + 0.5f, p1 = p2 * r + 1.0f;
  const int32_t n_int = bits_of(shifted) - bits_of(kShift);
  return {n, r, p1, p2, float_of((n_int + 127) << 23)};
}

// e^-x for x >= 0 (clamped at 80).
__attribute__((always_inline)) inline float exp_neg(float x) {
  const ExpReduced t = exp_neg_reduced(x);
  return (t.p1 * t.r + 1.0f) * t.scale;
}

// e^-x with phi(x) = (1 - e^-x)/x and phi'(x), for x >= 0, from one exponential. Below ln2/2 the
// reduction leaves r = -x exactly, and the Horner steps of e^r are then phi's own series:
// (e^r - 1)/r = phi(x) and (e^r - 1 - r)/r^2 - (e^r - 1)/r = phi'(x), with no cancellation.
// Above it the closed forms, (1 - e)/x and (e - phi)/x, lose at most about 1e-6 relative.
struct ExpPhi {
  float e, phi, dphi;
};
__attribute__((always_inline)) inline ExpPhi exp_neg_phi(float x) {
  const ExpReduced t = exp_neg_reduced(x);
  const float e = (t.p1 * t.r + 1.0f) * t.scale;
  const float inv_x = 1.0f / max_nonnegative(x, 1e-30f);
  const float phi_c = (1.0f - e) * inv_x, dphi_c = (e - phi_c) * inv_x;
  const bool reduced = t.n == 0.0f;
  return {e, reduced ? t.p1 : phi_c, reduced ? t.p2 - t.p1 : dphi_c};
}

// 2 atanh(s) = log((1 + s) / (1 - s)) as 2s (1 + s^2/3 + ... + s^12/13), for |s| <= 1/3 (error 1e-8).
__attribute__((always_inline)) inline float two_atanh(float s) {
  const float s2 = s * s;
  float p = 1.0f / 13;
  p = p * s2 + 1.0f / 11;
  p = p * s2 + 1.0f / 9;
  p = p * s2 + 1.0f / 7;
  p = p * s2 + 1.0f / 5;
  p = p * s2 + 1.0f / 3;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

// log(x) for a positive normal float: x = 2^e m with m in [sqrt(1/2), sqrt(2)), then
// log(m) = 2 atanh((m - 1)/(m + 1)).
__attribute__((always_inline)) inline float log_positive(float x) {
  const int32_t bits = bits_of(x);
  const int32_t above = bits - 0x3f3504f3;  // 0x3f3504f3 = sqrt(1/2)
  const int32_t e = above >> 23;            // arithmetic shift: the exponent relative to sqrt(1/2)
  const float m = float_of(bits - (e << 23));
  const float log_m = two_atanh((m - 1.0f) / (m + 1.0f));
  const float fe = float(e);
  return fe * 0.693145752f + (fe * 1.42860677e-6f + log_m);
}

// log(1 + x) = 2 atanh(x / (2 + x)), accurate even for tiny x, and 1 / (1 + x), for x in [0, 1],
// with one division between them: a softplus and its sigmoid, or a two-term logsumexp and its weights.
struct Log1pReciprocal {
  float log1p, reciprocal;
};
__attribute__((always_inline)) inline Log1pReciprocal log1p_reciprocal_unit(float x) {
  const float r = 1.0f / ((1.0f + x) * (2.0f + x));
  return {two_atanh(x * (1.0f + x) * r), (2.0f + x) * r};
}

// Below this argument phi(gap tau) and phi' come from their series (to x^4: error 4e-10 at the
// threshold); above it from the closed forms, whose float cancellation is then about 1e-6 relative at worst.
constexpr float kSeriesBelow = 0.05f;

// phi(x) = (1 - e^-x)/x and phi'(x) by their Taylor series, for |x| < kSeriesBelow.
__attribute__((always_inline)) inline float phi_series(float x) {
  return 1.0f - x * (0.5f - x * (1.0f / 6 - x * (1.0f / 24 - x * (1.0f / 120))));
}
__attribute__((always_inline)) inline float dphi_series(float x) {
  return -0.5f + x * (1.0f / 3 - x * (0.125f - x * (1.0f / 30 - x * (1.0f / 144))));
}

// tau E, for E = (e^-beta tau - e^-gamma tau) / ((gamma - beta) tau) (kernels/dynamics.h's E,
// written without ordering the rates), and tau dE/dbeta, tau dE/dgamma, from eu = e^-beta tau,
// es = e^-gamma tau and inv_gap = 1 / (gamma - beta), a per-gene constant: then the closed forms
// need no division. With y = (gamma - beta) tau of either sign, E = eu phi(y); for small |y| phi(y)
// and phi'(y) come from their series, where the closed forms would cancel.
struct GapDecay {
  float tau_E, tau_dE_dbeta, tau_dE_dgamma;
};
__attribute__((always_inline)) inline GapDecay gap_decay(float tau, float beta, float gamma, float inv_gap, float eu,
                                                         float es) {
  const float y = (gamma - beta) * tau;
  const bool small = y < kSeriesBelow && y > -kSeriesBelow;
  // Series: tau dE/dbeta = -tau^2 (E + eu phi'(y)), tau dE/dgamma = tau^2 eu phi'(y).
  const float tau_E_s = tau * eu * phi_series(y), tau2_e_dphi = tau * tau * eu * dphi_series(y);
  // Closed: tau E = (eu - es) / (gamma - beta), tau dE/dbeta = (tau E - tau eu) / (gamma - beta),
  // tau dE/dgamma = (tau es - tau E) / (gamma - beta).
  const float tau_E_c = (eu - es) * inv_gap;
  return {small ? tau_E_s : tau_E_c, small ? -(tau * tau_E_s + tau2_e_dphi) : (tau_E_c - tau * eu) * inv_gap,
          small ? tau2_e_dphi : (tau * es - tau_E_c) * inv_gap};
}

// 1 / (gamma - beta) for gap_decay; 0 where the rates are equal (gap_decay then takes its series).
__attribute__((always_inline)) inline float inverse_gap(double beta, double gamma) {
  return gamma == beta ? 0.0f : float(1.0 / (gamma - beta));
}

}  // namespace vmath
}  // namespace pv

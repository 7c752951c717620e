// The velocity projection's per-entry formulas (shared/spec/STATISTICS.md), written once for the CPU
// statistics and the CUDA kernels. T is float or double.
#pragma once

#include <cmath>
#include <cstdint>
#include <string.h>

#include "kernels/pv_hd.h"

namespace pv {

constexpr double kTransitionScale = 10.0;  // scVelo velocity_embedding's default `scale`

// pi_ij: the dot of the centred displacement and the centred velocity over their norms, 0 when a
// norm is 0, clipped to [-1, 1] against rounding.
template <class T>
PV_HD T pearson_cosine(T dot, T displacement_norm, T velocity_norm) {
  const T norms = displacement_norm * velocity_norm;
  if (!(norms > T(0))) return T(0);
  const T c = dot / norms;
  return c < T(-1) ? T(-1) : (c > T(1) ? T(1) : c);
}

// The squared norm of a centred displacement from its sum and sum of squares over `genes`; 0 when
// it is rounding noise next to the rows' own squared norms (then the cosine is 0, as for X_j = X_i).
template <class T>
PV_HD T centred_squared_norm(T sum, T squares, T genes, T row_squares_i, T row_squares_j) {
  const T squared = squares - sum * sum / genes;
  return squared <= T(1e-12) * (row_squares_i + row_squares_j) ? T(0) : squared;
}

// A bit cast that host and device code both accept (memcpy: no aliasing, and GCC vectorises it).
template <class To, class From>
PV_HD To bit_cast_hd(From x) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast_hd: sizes differ");
  To out;
  memcpy(&out, &x, sizeof out);
  return out;
}

// e^x - 1 for 0 <= x <= 700, to about 2 ulp of expm1, as straight-line arithmetic (no call, no
// branch), so that the CPU statistics vectorise it over a cell's entries and every backend and
// the graph path compute the same weight. x = n ln2 + r, n rounded to nearest (|r| <= ln2/2; for
// x < ln2/2 n = 0 and r = x exactly); e^r - 1 by its Taylor series to r^13 (truncation 1e-17
// relative); then e^x - 1 = 2^n (e^r - 1) + (2^n - 1), where both products are exact and n = 0
// leaves e^r - 1 untouched, so small x loses nothing to cancellation.
PV_HD double exp_minus_one(double x) {
  constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer in the low bits
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;  // fdlibm's split
  const double shifted = x * 1.44269504088896338700e+00 + kShift;
  const double n = shifted - kShift;
  const double r = (x - n * kLn2Hi) - n * kLn2Lo;  // n kLn2Hi is exact: kLn2Hi has 32 significant bits
  double q = 1.0 / 6227020800.0;                  // 1/13!
  q = q * r + 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  const double em1 = r + (r * r) * q;
  const double scale = bit_cast_hd<double>((bit_cast_hd<int64_t>(shifted) - bit_cast_hd<int64_t>(kShift) + 1023) << 52);  // 2^n
  return scale * em1 + (scale - 1.0);
}

// scVelo's signed transition weight of a cosine: e^(10 pi) - 1, and -(e^(10 |pi|) - 1) below 0.
template <class T>
PV_HD T transition_weight(T pi) {
  const T x = T(kTransitionScale) * (pi < T(0) ? -pi : pi), weight = T(exp_minus_one(double(x)));
  return pi < T(0) ? -weight : weight;
}

// One component of an embedded velocity, sum_j (p_j - mean p) dE_j with p_j = w_j / A, from the
// row's sums: weighted = sum w_j dE_j, directions = sum dE_j, weights = sum w_j over the `count`
// entries with w_j != 0, and A = sum |w_j| + the self-transition weight.
template <class T>
PV_HD T embedded_component(T weighted, T directions, T weights, T count, T absolute) {
  return (weighted - weights / count * directions) / absolute;
}

// One row of the 2-D embedded velocity, summed over the row's entries in order: the sums of
// embedded_component, the self-transition added at the end.
template <class T>
struct EmbeddingRowSums {
  T absolute = 0, weights = 0, count = 0, weighted_x = 0, weighted_y = 0, directions_x = 0, directions_y = 0;

  // An entry with cosine pi towards the unit direction (dx, dy) of E_j - E_i ((0, 0) when E_j = E_i).
  PV_HD void add(T pi, T dx, T dy) { add_weight(transition_weight(pi), dx, dy); }

  // The same entry given its transition weight.
  PV_HD void add_weight(T weight, T dx, T dy) {
    if (weight == T(0)) return;  // not an entry of the sparse transition matrix
    absolute += weight < T(0) ? -weight : weight;
    weights += weight, count += T(1);
    weighted_x += weight * dx, weighted_y += weight * dy;
    directions_x += dx, directions_y += dy;
  }

  // The embedded velocity (not autoscaled) given s_i; NaN for a row without entries.
  PV_HD void finish(T self_transition, T* out) const {
    if (count == T(0)) {
      out[0] = out[1] = T(NAN);
      return;
    }
    const T total = absolute + transition_weight(self_transition);
    out[0] = embedded_component(weighted_x, directions_x, weights, count, total);
    out[1] = embedded_component(weighted_y, directions_y, weights, count, total);
  }
};

}  // namespace pv

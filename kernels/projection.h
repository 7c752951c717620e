// The velocity projection's per-entry formulas (shared/spec/STATISTICS.md), written once for the CPU
// statistics and the CUDA kernels. T is float or double.
#pragma once

#include <cmath>

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

// e^x - 1 for x >= 0: expm1 below 1/2, where e^x - 1 would cancel; above, the subtraction
// loses under two bits and exp takes half expm1's time (glibc, measured).
template <class T>
PV_HD T exp_minus_one(T x) {
  using std::exp;
  using std::expm1;
  return x < T(0.5) ? expm1(x) : exp(x) - T(1);
}

// scVelo's signed transition weight of a cosine: e^(10 pi) - 1, and -(e^(10 |pi|) - 1) below 0.
template <class T>
PV_HD T transition_weight(T pi) {
  return pi >= T(0) ? exp_minus_one(T(kTransitionScale) * pi) : -exp_minus_one(-T(kTransitionScale) * pi);
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
  PV_HD void add(T pi, T dx, T dy) {
    const T weight = transition_weight(pi);
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

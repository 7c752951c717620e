// Central finite differences in double precision, for checking analytic derivatives.
#pragma once

#include <cmath>

namespace pv::testing {

template <class F>
double central_difference(F f, double x, double relative_step = 1e-6) {
  const double h = relative_step * (std::fabs(x) > 1.0 ? std::fabs(x) : 1.0);
  return (f(x + h) - f(x - h)) / (2.0 * h);
}

// |a - b| <= atol + rtol |b|
inline bool close(double a, double b, double rtol, double atol) {
  return std::fabs(a - b) <= atol + rtol * std::fabs(b);
}

}  // namespace pv::testing

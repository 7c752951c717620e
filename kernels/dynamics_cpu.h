// CPU launchers for the element-wise dynamics kernel.
#pragma once

#include <cstdint>

namespace pv::cpu {

void mrna_dynamics(int64_t n, const double* tau, const double* u0, const double* s0,
                   const double* alpha, const double* beta, const double* gamma, double* u_out,
                   double* s_out);

}  // namespace pv::cpu

#include "kernels/dynamics_cpu.h"

#include "kernels/dynamics.h"

namespace pv::cpu {

void mrna_dynamics(int64_t n, const double* tau, const double* u0, const double* s0,
                   const double* alpha, const double* beta, const double* gamma, double* u_out,
                   double* s_out) {
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; ++i) {
    const Dynamics<double> d = pv::mrna_dynamics(tau[i], u0[i], s0[i], alpha[i], beta[i], gamma[i]);
    u_out[i] = d.u;
    s_out[i] = d.s;
  }
}

}  // namespace pv::cpu

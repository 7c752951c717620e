/* The public header compiles as strict C99, and a C program can call the library. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pvengine.h"

int main(void) {
  const double tau = 2.0, u0 = 1.0, s0 = 0.5, alpha = 0.5, beta = 0.4, gamma = 0.3;
  double u = 0.0, s = 0.0;
  const double negative = -1.0;
  pv_status status;
  if (pv_version_number() != PV_VERSION_NUMBER) {
    fprintf(stderr, "header/library version mismatch\n");
    return 1;
  }
  status = pv_mrna_dynamics(1, &tau, &u0, &s0, &alpha, &beta, &gamma, &u, &s);
  if (status != PV_OK || fabs(u - 1.1377) > 5e-5 || fabs(s - 0.9269) > 5e-5) {
    fprintf(stderr, "golden value wrong: status %d, (%f, %f)\n", (int)status, u, s);
    return 1;
  }
  status = pv_mrna_dynamics(1, &tau, &u0, &s0, &alpha, &negative, &gamma, &u, &s);
  if (status != PV_ERR_INVALID_ARGUMENT || strstr(pv_last_error(), "beta[0]") == NULL) {
    fprintf(stderr, "negative beta not refused: status %d, message '%s'\n", (int)status, pv_last_error());
    return 1;
  }
  if (strcmp(pv_status_string(PV_ERR_INVALID_ARGUMENT), "invalid argument") != 0) return 1;
  printf("%s\nC header test passed\n", pv_build_info());
  return 0;
}

// One element of Pyro's ClippedAdam (MODEL.md section 5), shared by both backends' fused loops.
#pragma once

#include <cmath>

#include "kernels/pv_hd.h"

namespace pv {

// Per-step scalars: lr already decayed, and the bias-corrected step size.
template <class T>
struct AdamStepCoefficients {
  T step_size;  // lr * sqrt(1 - beta2^t) / (1 - beta1^t)
  T beta1, beta2, eps, clip;
};

// Clamps the gradient to [-clip, clip] (NaN -> 0), updates the moments and the parameter.
template <class T>
PV_HD void clipped_adam_update(T* param, T grad, T* m, T* v, const AdamStepCoefficients<T>& c) {
  using std::sqrt;
  if (grad != grad) grad = T(0);
  grad = grad > c.clip ? c.clip : (grad < -c.clip ? -c.clip : grad);
  *m = c.beta1 * *m + (T(1) - c.beta1) * grad;
  *v = c.beta2 * *v + (T(1) - c.beta2) * grad * grad;
  *param -= c.step_size * *m / (sqrt(*v) + c.eps);
}

}  // namespace pv

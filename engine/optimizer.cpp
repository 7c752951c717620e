#include "engine/optimizer.h"

#include <cmath>
#include <string>

#include "engine/error.h"
#include "kernels/adam.h"

namespace pv {

ClippedAdam::ClippedAdam(int64_t size, const ClippedAdamOptions& options)
    : options_(options), m_(size_t(size), 0.0), v_(size_t(size), 0.0), lr_(options.lr) {
  require(size >= 0, PV_ERR_INVALID_ARGUMENT, "ClippedAdam: negative parameter count");
  require(options.lr > 0 && std::isfinite(options.lr), PV_ERR_INVALID_ARGUMENT,
          "lr is " + std::to_string(options.lr) + " (must be > 0)");
  require(options.lr_decay > 0 && options.lr_decay <= 1, PV_ERR_INVALID_ARGUMENT,
          "lr decay is " + std::to_string(options.lr_decay) + " (must be in (0, 1])");
  require(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
          PV_ERR_INVALID_ARGUMENT, "Adam betas must lie in [0, 1)");
  require(options.eps > 0 && options.clip > 0, PV_ERR_INVALID_ARGUMENT,
          "Adam eps and clip must be > 0");
}

void ClippedAdam::step(double* params, const double* grads) {
  lr_ *= options_.lr_decay;
  ++steps_;
  const double bias1 = 1.0 - std::pow(options_.beta1, double(steps_));
  const double bias2 = 1.0 - std::pow(options_.beta2, double(steps_));
  const AdamStepCoefficients<double> c{lr_ * std::sqrt(bias2) / bias1, options_.beta1,
                                       options_.beta2, options_.eps, options_.clip};
  const int64_t n = size();
  double* m = m_.data();
  double* v = v_.data();
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) clipped_adam_update(&params[i], grads[i], &m[i], &v[i], c);
}

}  // namespace pv

// Pyro's ClippedAdam over one flat parameter buffer (MODEL.md section 5). The optimiser knows
// nothing about the model: it sees parameters and gradients of the loss to minimise.
#pragma once

#include <cstdint>
#include <vector>

namespace pv {

struct ClippedAdamOptions {
  double lr = 0.01;
  double lr_decay = 1.0;  // lr *= lr_decay before every step
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double clip = 10.0;  // element-wise clamp of the gradient
};

class ClippedAdam {
 public:
  ClippedAdam(int64_t size, const ClippedAdamOptions& options);

  // params -= Adam step for grads (the loss gradient); grads are read, not modified.
  void step(double* params, const double* grads);

  int64_t size() const { return int64_t(m_.size()); }
  int64_t steps_taken() const { return steps_; }
  double current_lr() const { return lr_; }
  const ClippedAdamOptions& options() const { return options_; }

  // State for saving and restoring a run.
  std::vector<double>& first_moment() { return m_; }
  std::vector<double>& second_moment() { return v_; }
  void restore(int64_t steps, double lr) { steps_ = steps; lr_ = lr; }

 private:
  ClippedAdamOptions options_;
  std::vector<double> m_, v_;
  int64_t steps_ = 0;
  double lr_;
};

}  // namespace pv

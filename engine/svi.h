// Stochastic variational inference: the reference's three training entry points (MODEL.md
// section 5) over a VelocityModel, with ClippedAdam, the patience rule, working early stopping on
// a validation ELBO, a progress callback that can cancel, and NaN detection.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/optimizer.h"

namespace pv {

enum class TrainMode {
  kFullBatch,   // train_faster
  kMiniBatch,   // train_faster_with_batch: shuffled minibatches each epoch
  kValidated,   // train: minibatches of a training split, validation ELBO, early stopping
};

struct TrainOptions {
  TrainMode mode = TrainMode::kFullBatch;
  int64_t max_epochs = 5000;
  double lr = 0.01;
  double lr_decay = -1;        // per step; < 0: 0.1^(1 / max_epochs), the reference's choice
  int64_t batch_size = 0;      // minibatch modes; 0 = 256
  double improvement = 1e-3;   // patience rule: minimum relative improvement per log_every epochs
  int patience = 45;
  int64_t log_every = 100;
  double train_size = 0.995;   // kValidated
  double valid_size = 0.005;
  bool early_stopping = true;  // kValidated: stop when the validation loss stops improving
  int early_stopping_patience = 45;
  uint64_t seed = 0;           // shuffling and the split; the model's seed drives the draws
};

struct TrainProgress {
  int64_t epoch, max_epochs;
  double loss;              // -ELBO / (cells x genes x 2) of this epoch
  double validation_loss;   // NaN when there is none
};
// Called after every epoch; return false to cancel (training then throws PV_ERR_CANCELLED
// after leaving the model at its last completed epoch).
using ProgressCallback = std::function<bool(const TrainProgress&)>;

struct TrainResult {
  std::vector<double> loss;             // one per epoch
  std::vector<double> validation_loss;  // kValidated: one per epoch
  int64_t epochs = 0;
  std::string stop_reason;              // "max_epochs", "patience", "early_stopping"
  std::vector<int64_t> train_cells, validation_cells;
};

class Trainer {
 public:
  Trainer(VelocityModel& model, const TrainOptions& options);
  TrainResult run(const ProgressCallback& progress = {});
  // What run() has done so far; complete after it returns, and after it throws (cancelled, NaN)
  // it holds the epochs that finished, whose updates the model keeps.
  const TrainResult& result() const { return result_; }
  const ClippedAdam& optimizer() const { return adam_; }
  ClippedAdam& optimizer() { return adam_; }

 private:
  double step(const std::vector<int64_t>& batch, bool locals_only);

  VelocityModel& model_;
  TrainOptions options_;
  ClippedAdam adam_;
  std::vector<double> grads_;
  uint64_t draws_ = 0;
  TrainResult result_;
};

// The option checks the entry points share (epochs, sizes, rates), with messages naming them.
void validate(const TrainOptions& options, int64_t cells);

}  // namespace pv

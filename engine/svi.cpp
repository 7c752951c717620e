#include "engine/svi.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/error.h"
#include "kernels/sampling.h"

namespace pv {
namespace {

enum : uint32_t { kShuffle = 40, kSplit = 41 };

ClippedAdamOptions adam_options(const TrainOptions& o) {
  ClippedAdamOptions a;
  a.lr = o.lr;
  a.lr_decay = o.lr_decay < 0 ? std::pow(0.1, 1.0 / double(std::max<int64_t>(1, o.max_epochs))) : o.lr_decay;
  return a;
}

// Fisher-Yates with a counter-based stream: the same order for a seed and epoch everywhere.
void shuffle(std::vector<int64_t>* v, uint64_t seed, uint32_t kind, uint64_t round) {
  CounterStream rng(seed, kind, round);
  for (int64_t i = int64_t(v->size()) - 1; i > 0; --i) {
    const int64_t j = int64_t(rng.uniform() * double(i + 1));
    std::swap((*v)[i], (*v)[std::min(j, i)]);
  }
}

std::vector<std::vector<int64_t>> minibatches(std::vector<int64_t> cells, int64_t size, uint64_t seed, uint64_t epoch) {
  shuffle(&cells, seed, kShuffle, epoch);
  std::vector<std::vector<int64_t>> out;
  for (size_t at = 0; at < cells.size(); at += size_t(size))
    out.emplace_back(cells.begin() + int64_t(at), cells.begin() + int64_t(std::min(cells.size(), at + size_t(size))));
  return out;
}

}  // namespace

void validate(const TrainOptions& o, int64_t cells) {
  require(o.max_epochs > 0, PV_ERR_INVALID_ARGUMENT, "max_epochs is " + std::to_string(o.max_epochs) + " (must be > 0)");
  require(o.lr > 0 && std::isfinite(o.lr), PV_ERR_INVALID_ARGUMENT, "lr must be > 0");
  // A batch_size above the number of cells means one batch of them all, as in the reference's loader.
  require(o.batch_size >= 0, PV_ERR_INVALID_ARGUMENT, "batch_size must be > 0");
  (void)cells;
  require(o.log_every > 0 && o.patience > 0, PV_ERR_INVALID_ARGUMENT, "log_every and patience must be > 0");
  if (o.mode == TrainMode::kValidated) {
    require(o.train_size > 0 && o.train_size <= 1 && o.valid_size >= 0 && o.train_size + o.valid_size <= 1 + 1e-9,
            PV_ERR_INVALID_ARGUMENT, "train_size must be in (0, 1], valid_size >= 0, and their sum <= 1");
  }
}

Trainer::Trainer(VelocityModel& model, const TrainOptions& options)
    : model_(model), options_(options), adam_(model.layout().total, adam_options(options)) {
  validate(options_, model_.layout().cells);
}

double Trainer::step(const std::vector<int64_t>& batch, bool locals_only) {
  const double loss = model_.loss(batch, draws_++, &grads_);
  if (!std::isfinite(loss))
    fail(PV_ERR_NUMERIC, "the loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at step " +
                             std::to_string(draws_) + "; try a smaller lr or check the counts");
  if (locals_only) {
    // Validation cells fit their own cell-level parameters but teach the shared ones nothing.
    const ParamLayout& l = model_.layout();
    std::fill(grads_.begin(), grads_.begin() + l.cell_loc, 0.0);
    std::fill(grads_.begin() + l.cell_raw + kCellSites * l.cells, grads_.end(), 0.0);
  }
  adam_.step(model_.params().data(), grads_.data());
  return loss;
}

TrainResult Trainer::run(const ProgressCallback& progress) {
  const ParamLayout& l = model_.layout();
  const double normaliser = double(l.cells) * double(l.genes) * 2.0;
  const int64_t batch_size = options_.batch_size > 0 ? options_.batch_size : std::min<int64_t>(256, l.cells);
  result_ = TrainResult();
  TrainResult& result = result_;

  std::vector<int64_t> all(static_cast<size_t>(l.cells));
  std::iota(all.begin(), all.end(), 0);
  if (options_.mode == TrainMode::kValidated) {
    std::vector<int64_t> order = all;
    shuffle(&order, options_.seed, kSplit, 0);
    int64_t n_valid = int64_t(std::floor(options_.valid_size * double(l.cells)));
    if (options_.valid_size > 0 && n_valid == 0) n_valid = 1;  // a requested split gets at least one cell
    n_valid = std::min(n_valid, l.cells - 1);
    const int64_t n_train = std::clamp<int64_t>(int64_t(std::floor(options_.train_size * double(l.cells))), 1, l.cells - n_valid);
    result.train_cells.assign(order.begin(), order.begin() + n_train);
    result.validation_cells.assign(order.begin() + n_train, order.begin() + n_train + n_valid);
    std::sort(result.validation_cells.begin(), result.validation_cells.end());
  } else {
    result.train_cells = all;
  }

  double previous = std::numeric_limits<double>::quiet_NaN();
  double best_validation = std::numeric_limits<double>::infinity();
  int patience = options_.patience, stale = 0;
  result.stop_reason = "max_epochs";
  for (int64_t epoch = 0; epoch < options_.max_epochs; ++epoch) {
    double loss = 0;
    if (options_.mode == TrainMode::kFullBatch) {
      loss = step({}, false);
    } else {
      const auto batches = minibatches(result.train_cells, std::min<int64_t>(batch_size, int64_t(result.train_cells.size())),
                                       options_.seed, uint64_t(epoch));
      for (const auto& b : batches) loss += step(b, false) / double(batches.size());
    }
    loss /= normaliser;
    result.loss.push_back(loss);
    result.epochs = epoch + 1;

    double validation = std::numeric_limits<double>::quiet_NaN();
    if (!result.validation_cells.empty()) {
      validation = step(result.validation_cells, true) / normaliser;
      result.validation_loss.push_back(validation);
    }
    if (progress && !progress({epoch, options_.max_epochs, loss, validation}))
      fail(PV_ERR_CANCELLED, "training cancelled by the progress callback after epoch " + std::to_string(epoch + 1));

    if (options_.mode == TrainMode::kValidated) {
      if (options_.early_stopping && !result.validation_cells.empty()) {
        if (validation < best_validation) {
          best_validation = validation;
          stale = 0;
        } else if (++stale >= options_.early_stopping_patience) {
          result.stop_reason = "early_stopping";
          break;
        }
      }
      continue;
    }
    // The patience rule of train_faster and train_faster_with_batch.
    if (epoch % options_.log_every == 0) {
      if (epoch > 0) {
        if (previous - loss < previous * options_.improvement) --patience;
        else patience = options_.patience;
      }
      previous = loss;
      if (patience <= 0) {
        result.stop_reason = "patience";
        break;
      }
    }
  }
  return result;
}

}  // namespace pv

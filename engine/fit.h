// A model bound to its dataset and settings, with its training history: what a pv_model handle,
// the command line and the bindings hold. Saving and loading go through io::SavedModel.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/posterior.h"
#include "engine/settings.h"
#include "engine/svi.h"
#include "io/anndata.h"
#include "io/model_file.h"

namespace pv {

class Fit {
 public:
  Fit(std::shared_ptr<const io::AnnData> data, const Settings& settings);

  // Trains from the current parameters with a fresh optimiser (as the reference does on every
  // call); the epoch losses are appended to the history.
  TrainResult train(const TrainOptions& options, const ProgressCallback& progress = {});

  const Settings& settings() const { return settings_; }
  VelocityModel& model() { return *model_; }
  const VelocityModel& model() const { return *model_; }
  const std::vector<double>& loss_history() const { return loss_history_; }
  const std::vector<double>& validation_loss_history() const { return validation_loss_history_; }

  io::SavedModel to_saved() const;
  // Rebuilds a fit on `data`, which must have the genes (same names, same order) and the cells
  // the model was fitted to; anything else is refused with a message saying what differs.
  static std::unique_ptr<Fit> from_saved(const io::SavedModel& saved, std::shared_ptr<const io::AnnData> data);

 private:
  Settings settings_;
  std::unique_ptr<VelocityModel> model_;
  std::vector<double> loss_history_, validation_loss_history_;
};

}  // namespace pv

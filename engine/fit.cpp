#include "engine/fit.h"

#include "engine/backend.h"
#include "engine/error.h"
#include "pv_build_config.h"

namespace pv {

Fit::Fit(std::shared_ptr<const io::AnnData> data, const Settings& settings) : settings_(settings) {
  model_ = std::make_unique<VelocityModel>(make_model_data(std::move(data)), settings.model, settings.seed);
}

TrainResult Fit::train(const TrainOptions& options, const ProgressCallback& progress) {
  // The CUDA trainer is not there yet: "auto" trains on the CPU, an explicit "cuda" says so.
  if (resolve_device(settings_.device) == Device::kCuda && settings_.device == "cuda")
    fail(PV_ERR_UNSUPPORTED, "training on CUDA is not implemented yet; use device cpu or auto");
  Trainer trainer(*model_, options);
  TrainResult result = trainer.run(progress);
  loss_history_.insert(loss_history_.end(), result.loss.begin(), result.loss.end());
  validation_loss_history_.insert(validation_loss_history_.end(), result.validation_loss.begin(), result.validation_loss.end());
  return result;
}

io::SavedModel Fit::to_saved() const {
  io::SavedModel s;
  s.version = PV_VERSION_STRING;
  s.options = model_options_to_text(settings_.model);
  s.seed = settings_.seed;
  s.params = model_->params();
  const io::AnnData& d = *model_->data().anndata;
  s.genes = d.var.index;
  s.cells = d.obs.index;
  s.loss_history = loss_history_;
  s.validation_loss_history = validation_loss_history_;
  return s;
}

std::unique_ptr<Fit> Fit::from_saved(const io::SavedModel& saved, std::shared_ptr<const io::AnnData> data) {
  require(data != nullptr, PV_ERR_INVALID_ARGUMENT, "loading a model needs the dataset it was fitted to");
  const std::vector<std::string>& genes = data->var.index;
  if (genes.size() != saved.genes.size())
    fail(PV_ERR_INVALID_ARGUMENT, "the model was fitted to " + std::to_string(saved.genes.size()) + " genes, the data has " +
                                      std::to_string(genes.size()));
  for (size_t g = 0; g < genes.size(); ++g)
    if (genes[g] != saved.genes[g])
      fail(PV_ERR_INVALID_ARGUMENT, "gene " + std::to_string(g) + " of the data is '" + genes[g] + "' but the model's is '" +
                                        saved.genes[g] + "': the genes must be the same, in the same order");
  const std::vector<std::string>& cells = data->obs.index;
  if (!saved.cells.empty() && !cells.empty()) {
    if (cells.size() != saved.cells.size())
      fail(PV_ERR_INVALID_ARGUMENT, "the model was fitted to " + std::to_string(saved.cells.size()) + " cells, the data has " +
                                        std::to_string(cells.size()));
    for (size_t c = 0; c < cells.size(); ++c)
      if (cells[c] != saved.cells[c])
        fail(PV_ERR_INVALID_ARGUMENT, "cell " + std::to_string(c) + " of the data is '" + cells[c] + "' but the model's is '" +
                                          saved.cells[c] + "'");
  }
  Settings settings;
  settings.model = model_options_from_text(saved.options);
  settings.seed = saved.seed;
  auto fit = std::make_unique<Fit>(std::move(data), settings);
  require(int64_t(saved.params.size()) == fit->model().layout().total, PV_ERR_FORMAT,
          "the saved parameters (" + std::to_string(saved.params.size()) + ") do not fit this data's layout (" +
              std::to_string(fit->model().layout().total) + ")");
  fit->model().params() = saved.params;
  fit->loss_history_ = saved.loss_history;
  fit->validation_loss_history_ = saved.validation_loss_history;
  return fit;
}

}  // namespace pv

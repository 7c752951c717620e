#include "engine/fit.h"

#include "engine/backend.h"
#include "engine/error.h"
#include "pv_build_config.h"

namespace pv {
namespace {

// An in-memory dataset may have no names; the h5ad writer then writes "0".."n-1", and so do we.
std::vector<std::string> names_or_default(const std::vector<std::string>& names, int64_t n) {
  if (!names.empty()) return names;
  std::vector<std::string> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = std::to_string(i);
  return out;
}

}  // namespace

Fit::Fit(std::shared_ptr<const io::AnnData> data, const Settings& settings) : settings_(settings) {
  model_ = std::make_unique<VelocityModel>(make_model_data(std::move(data)), settings.model, settings.seed);
  // "cuda" insists (and says why it cannot); "auto" takes the GPU when there is one and the
  // options are ones its kernel covers.
  if (resolve_device(settings.device) == Device::kCuda) {
    const bool covered = DeviceLikelihood::covers(settings.model);
    if (settings.device == "cuda" && !covered)
      fail(PV_ERR_UNSUPPORTED, "the CUDA backend covers the Poisson likelihood with k summed out; use device cpu for these options");
    if (covered) model_->use_device(DeviceLikelihood::create(model_->data().counts));
  }
}

TrainResult Fit::train(const TrainOptions& options, const ProgressCallback& progress) {
  Trainer trainer(*model_, options);
  // The history gets every epoch that finished, also when the run is cancelled or fails.
  struct Record {
    Fit& fit;
    const Trainer& trainer;
    ~Record() {
      const TrainResult& r = trainer.result();
      fit.loss_history_.insert(fit.loss_history_.end(), r.loss.begin(), r.loss.end());
      fit.validation_loss_history_.insert(fit.validation_loss_history_.end(), r.validation_loss.begin(), r.validation_loss.end());
    }
  } record{*this, trainer};
  return trainer.run(progress);
}

io::SavedModel Fit::to_saved() const {
  io::SavedModel s;
  s.version = PV_VERSION_STRING;
  s.options = model_options_to_text(settings_.model);
  s.seed = settings_.seed;
  s.params = model_->params();
  const io::AnnData& d = *model_->data().anndata;
  s.genes = names_or_default(d.var.index, model_->layout().genes);
  s.cells = names_or_default(d.obs.index, model_->layout().cells);
  s.loss_history = loss_history_;
  s.validation_loss_history = validation_loss_history_;
  return s;
}

std::unique_ptr<Fit> Fit::from_saved(const io::SavedModel& saved, std::shared_ptr<const io::AnnData> data) {
  require(data != nullptr, PV_ERR_INVALID_ARGUMENT, "loading a model needs the dataset it was fitted to");
  const auto layer = data->layers.find("spliced");
  require(layer != data->layers.end(), PV_ERR_INVALID_ARGUMENT, "the dataset has no spliced layer");
  const std::vector<std::string> genes = names_or_default(data->var.index, layer->second.cols);
  if (genes.size() != saved.genes.size())
    fail(PV_ERR_INVALID_ARGUMENT, "the model was fitted to " + std::to_string(saved.genes.size()) + " genes, the data has " +
                                      std::to_string(genes.size()));
  for (size_t g = 0; g < genes.size(); ++g)
    if (genes[g] != saved.genes[g])
      fail(PV_ERR_INVALID_ARGUMENT, "gene " + std::to_string(g) + " of the data is '" + genes[g] + "' but the model's is '" +
                                        saved.genes[g] + "': the genes must be the same, in the same order");
  const std::vector<std::string> cells = names_or_default(data->obs.index, layer->second.rows);
  {
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

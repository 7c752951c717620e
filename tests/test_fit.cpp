#include <doctest/doctest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>

#include "engine/error.h"
#include "engine/fit.h"
#include "engine/settings.h"
#include "engine/simulator.h"
#include "io/model_file.h"
#include "pv_build_config.h"

namespace {

std::shared_ptr<pv::io::AnnData> simulated(int64_t cells, int64_t genes) {
  pv::SimulationOptions o;
  o.cells = cells;
  o.genes = genes;
  o.seed = 8;
  o.pca_components = 2;
  return std::make_shared<pv::io::AnnData>(pv::simulate(o));
}

std::string temp_path(const char* name) {
  return "/tmp/pvengine_test_fit_" + std::to_string(getpid()) + "_" + name;
}

template <class F>
pv_status status_of(F f, std::string* message = nullptr) {
  try {
    f();
  } catch (const pv::Error& e) {
    if (message) *message = e.what();
    return e.status();
  }
  return PV_OK;
}

}  // namespace

#if PV_HDF5
TEST_CASE("save -> load -> sample equals sample before save; the history and options survive") {
  auto data = simulated(80, 10);
  pv::Settings settings;
  settings.model.likelihood = pv::Likelihood::kNegativeBinomial;
  settings.model.add_offset = true;
  settings.seed = 21;
  pv::Fit fit(data, settings);
  pv::TrainOptions t;
  t.max_epochs = 20;
  fit.train(t);
  pv::PosteriorOptions p;
  p.num_samples = 3;
  p.seed = 5;
  const auto before = pv::generate_posterior_samples(fit.model(), p);

  const std::string path = temp_path("model.h5");
  pv::io::save_model_file(path, fit.to_saved());
  const std::unique_ptr<pv::Fit> loaded = pv::Fit::from_saved(pv::io::load_model_file(path), data);
  const auto after = pv::generate_posterior_samples(loaded->model(), p);
  for (const auto& [key, array] : before) CHECK_MESSAGE(after.at(key).values == array.values, key);
  CHECK(loaded->loss_history() == fit.loss_history());
  CHECK(loaded->model().options().likelihood == pv::Likelihood::kNegativeBinomial);
  CHECK(loaded->model().options().add_offset);
  CHECK(loaded->settings().seed == 21);
  // Training continues from the loaded parameters and extends the history.
  t.max_epochs = 3;
  loaded->train(t);
  CHECK(loaded->loss_history().size() == 23);
  std::remove(path.c_str());
}

TEST_CASE("loading onto other genes or cells is refused with a message saying what differs") {
  auto data = simulated(40, 6);
  pv::Fit fit(data, pv::Settings{});
  const pv::io::SavedModel saved = fit.to_saved();
  std::string message;
  CHECK(status_of([&] { pv::Fit::from_saved(saved, simulated(40, 7)); }, &message) == PV_ERR_INVALID_ARGUMENT);
  CHECK(message.find("6 genes") != std::string::npos);
  auto renamed = simulated(40, 6);
  renamed->var.index[3] = "Sox9";
  CHECK(status_of([&] { pv::Fit::from_saved(saved, renamed); }, &message) == PV_ERR_INVALID_ARGUMENT);
  CHECK(message.find("Sox9") != std::string::npos);
  CHECK(status_of([&] { pv::Fit::from_saved(saved, simulated(41, 6)); }, &message) == PV_ERR_INVALID_ARGUMENT);
  CHECK(message.find("cells") != std::string::npos);
}

TEST_CASE("model files: missing, not HDF5, not a model") {
  std::string message;
  CHECK(status_of([&] { pv::io::load_model_file("/nonexistent/model.h5"); }, &message) == PV_ERR_IO);
  const std::string text = temp_path("text.h5");
  FILE* f = std::fopen(text.c_str(), "w");
  std::fputs("not hdf5\n", f);
  std::fclose(f);
  CHECK(status_of([&] { pv::io::load_model_file(text); }, &message) == PV_ERR_FORMAT);
  std::remove(text.c_str());
  CHECK(status_of([&] { pv::io::save_model_file("/nonexistent-dir/model.h5", pv::io::SavedModel{}); }, &message) == PV_ERR_IO);
}
#endif

TEST_CASE("settings: every PyroVelocity parameter of the seed has a key; unimplemented values are refused by name") {
  const std::pair<const char*, const char*> defaults[] = {
      {"input_type", "raw"}, {"shared_time", "True"}, {"model_type", "auto"}, {"guide_type", "auto"},
      {"likelihood", "Poisson"}, {"t_scale_on", "False"}, {"plate_size", "2"}, {"latent_factor", "none"},
      {"latent_factor_operation", "selection"}, {"inducing_point_size", "0"}, {"latent_factor_size", "0"},
      {"include_prior", "False"}, {"use_gpu", "auto"}, {"init", "False"}, {"num_aux_cells", "0"},
      {"only_cell_times", "True"}, {"decoder_on", "False"}, {"add_offset", "False"},
      {"correct_library_size", "True"}, {"cell_specific_kinetics", "None"}, {"kinetics_num", "None"}};
  pv::Settings s;
  for (const auto& [key, value] : defaults) {
    CAPTURE(key);
    CHECK(status_of([&] { pv::apply_setting(&s, key, value); }) == PV_OK);
  }
  CHECK(pv::setting_keys().size() >= 21);
  const std::pair<const char*, const char*> unsupported[] = {
      {"shared_time", "False"}, {"input_type", "knn"}, {"t_scale_on", "True"}, {"latent_factor", "linear"},
      {"decoder_on", "True"}, {"cell_specific_kinetics", "'linear'"}, {"num_aux_cells", "10"}, {"use_gpu", "3"},
      {"correct_library_size", "upper_quantile"}};
  for (const auto& [key, value] : unsupported) {
    std::string message;
    CAPTURE(key);
    CHECK(status_of([&] { pv::apply_setting(&s, key, value); }, &message) == PV_ERR_UNSUPPORTED);
    CHECK(message.find(key) != std::string::npos);
  }
  CHECK(status_of([&] { pv::apply_setting(&s, "likelihood", "Gaussian"); }) == PV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { pv::apply_setting(&s, "no_such_option", "1"); }) == PV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { pv::apply_setting(&s, "include_prior", "maybe"); }) == PV_ERR_INVALID_ARGUMENT);

  pv::ModelOptions o;
  o.likelihood = pv::Likelihood::kNegativeBinomial;
  o.include_prior = o.add_offset = true;
  o.state = pv::StateMode::kSampled;
  o.entropy = pv::EntropyMode::kSample;
  o.guide_rank = 4;
  const pv::ModelOptions back = pv::model_options_from_text(pv::model_options_to_text(o));
  CHECK(back.likelihood == o.likelihood);
  CHECK(back.include_prior);
  CHECK(back.add_offset);
  CHECK(back.state == pv::StateMode::kSampled);
  CHECK(back.entropy == pv::EntropyMode::kSample);
  CHECK(back.guide_rank == 4);
}

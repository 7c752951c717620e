// The C ABI of options, models and posterior samples.
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings_c/include/pvengine.h"
#include "bindings_c/src/dataset_handle.h"
#include "bindings_c/src/guard.h"
#include "engine/checks.h"
#include "engine/fit.h"
#include "engine/statistics.h"
#include "io/model_file.h"

struct pv_options {
  std::vector<std::pair<std::string, std::string>> entries;
};

struct pv_model {
  std::unique_ptr<pv::Fit> fit;
};

struct pv_posterior {
  std::map<std::string, pv::Array> arrays;
  std::vector<std::string> keys;
};

struct pv_statistics {
  struct Entry {
    int32_t ndim = 1;
    int64_t shape[3] = {1, 1, 1};
    std::vector<double> values;
  };
  std::map<std::string, Entry> entries;
  std::vector<std::string> keys;
};

namespace {

std::shared_ptr<const pv::io::AnnData> dataset_of(const pv_dataset* data) {
  pv::check_not_null(data, "data");
  return data->data;
}

double number(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    const double x = std::stod(value, &used);
    if (used == value.size()) return x;
  } catch (const std::exception&) {
  }
  pv::fail(PV_ERR_INVALID_ARGUMENT, "option " + key + ": '" + value + "' is not a number");
}

int64_t integer(const std::string& key, const std::string& value) {
  const double x = number(key, value);
  pv::require(x == std::floor(x) && std::fabs(x) < 9e15, PV_ERR_INVALID_ARGUMENT,
              "option " + key + ": '" + value + "' is not an integer");
  return int64_t(x);
}

bool boolean(const std::string& key, const std::string& value) {
  if (value == "True" || value == "true" || value == "1") return true;
  if (value == "False" || value == "false" || value == "0") return false;
  pv::fail(PV_ERR_INVALID_ARGUMENT, "option " + key + ": '" + value + "' is not a boolean");
}

pv::TrainOptions train_options(const pv_options* options) {
  pv::TrainOptions t;
  bool improvement_set = false;
  std::string method = "train_faster";
  if (options)
    for (const auto& [key, value] : options->entries)
      if (key == "method") method = value;
  if (method == "train") {
    t.mode = pv::TrainMode::kValidated;
    t.max_epochs = 100;
    t.lr = 1e-3;
    t.lr_decay = 0.9999;
    t.batch_size = 0;  // the trainer's default: 256, or every training cell when there are fewer
  } else if (method == "train_faster_with_batch") {
    t.mode = pv::TrainMode::kMiniBatch;
    t.improvement = 0.0;
  } else if (method != "train_faster") {
    pv::fail(PV_ERR_INVALID_ARGUMENT, "training method '" + method + "' (expected train, train_faster or train_faster_with_batch)");
  }
  if (!options) return t;
  for (const auto& [key, value] : options->entries) {
    if (key == "method") continue;
    else if (key == "max_epochs") t.max_epochs = integer(key, value);
    else if (key == "lr") t.lr = number(key, value);
    else if (key == "lr_decay") t.lr_decay = number(key, value);
    else if (key == "batch_size") t.batch_size = value == "None" ? 0 : integer(key, value);
    else if (key == "train_size") t.train_size = number(key, value);
    else if (key == "valid_size") t.valid_size = number(key, value);
    else if (key == "improvement") t.improvement = number(key, value), improvement_set = true;
    else if (key == "patience") t.patience = int(integer(key, value));
    else if (key == "log_every") t.log_every = integer(key, value);
    else if (key == "early_stopping") t.early_stopping = boolean(key, value);
    else if (key == "early_stopping_patience") t.early_stopping_patience = int(integer(key, value));
    else if (key == "seed") t.seed = uint64_t(integer(key, value));
    else pv::fail(PV_ERR_INVALID_ARGUMENT, "unknown training option '" + key + "'");
  }
  (void)improvement_set;
  return t;
}

pv::StatisticsOptions statistics_options(const pv_options* options, uint64_t* seed) {
  pv::StatisticsOptions o;
  if (!options) return o;
  for (const auto& [key, value] : options->entries) {
    if (key == "vector_field_basis" || key == "basis") {
      pv::require(!value.empty(), PV_ERR_INVALID_ARGUMENT, "statistics option " + key + " is empty");
      o.basis = value;
    } else if (key == "n_neighbors") {
      o.neighbours = integer(key, value);
      pv::require(o.neighbours >= 2, PV_ERR_INVALID_ARGUMENT, "statistics option n_neighbors must be >= 2, got " + value);
    } else if (key == "seed") {
      *seed = uint64_t(integer(key, value));
    } else if (key == "device") {
      o.device = pv::resolve_device(value);
    } else if (key == "ncpus_use") {
      pv::require(integer(key, value) >= 1, PV_ERR_INVALID_ARGUMENT, "statistics option ncpus_use must be >= 1, got " + value);
    } else {
      pv::fail(PV_ERR_INVALID_ARGUMENT, "unknown statistics option '" + key + "' (expected vector_field_basis, n_neighbors, seed, device or ncpus_use)");
    }
  }
  return o;
}

void add_entry(pv_statistics* out, const std::string& key, std::vector<int64_t> shape, std::vector<double> values) {
  pv_statistics::Entry entry;
  entry.ndim = int32_t(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) entry.shape[i] = shape[i];
  entry.values = std::move(values);
  out->entries[key] = std::move(entry);
  out->keys.push_back(key);
}

std::unique_ptr<pv_statistics> to_handle(const pv::PosteriorStatistics& statistics) {
  auto out = std::make_unique<pv_statistics>();
  for (const auto& [key, array] : statistics.arrays)
    add_entry(out.get(), key, array.shape, std::vector<double>(array.values.begin(), array.values.end()));
  const pv::GeneRanking& ranking = statistics.gene_ranking;
  const int64_t genes = int64_t(ranking.mean_mae.size());
  add_entry(out.get(), "mean_mae", {genes}, ranking.mean_mae);
  add_entry(out.get(), "time_correlation", {genes}, ranking.time_correlation);
  add_entry(out.get(), "mean_mae_rank", {genes}, ranking.mean_mae_rank);
  add_entry(out.get(), "time_correlation_rank", {genes}, ranking.time_correlation_rank);
  add_entry(out.get(), "genes", {int64_t(ranking.genes.size())}, std::vector<double>(ranking.genes.begin(), ranking.genes.end()));
  return out;
}

const pv_statistics::Entry& entry_of(const pv_statistics* statistics, const char* key) {
  pv::check_not_null(statistics, "statistics");
  pv::check_not_null(key, "key");
  const auto it = statistics->entries.find(key);
  if (it == statistics->entries.end()) pv::fail(PV_ERR_INVALID_ARGUMENT, std::string("no statistics key '") + key + "'");
  return it->second;
}

}  // namespace

extern "C" {

pv_status pv_options_create(pv_options** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(out, "out");
    *out = new pv_options();
  });
}

pv_status pv_options_set(pv_options* options, const char* key, const char* value) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(options, "options");
    pv::check_not_null(key, "key");
    pv::check_not_null(value, "value");
    for (auto& entry : options->entries)
      if (entry.first == key) {
        entry.second = value;
        return;
      }
    options->entries.emplace_back(key, value);
  });
}

void pv_options_free(pv_options* options) { delete options; }

pv_status pv_model_create(const pv_dataset* data, const pv_options* options, pv_model** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(out, "out");
    *out = nullptr;
    pv::Settings settings;
    if (options)
      for (const auto& [key, value] : options->entries) pv::apply_setting(&settings, key, value);
    auto model = std::make_unique<pv_model>();
    model->fit = std::make_unique<pv::Fit>(dataset_of(data), settings);
    *out = model.release();
  });
}

pv_status pv_model_train(pv_model* model, const pv_options* options, pv_progress_fn progress, void* user_data) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(model, "model");
    const pv::TrainOptions t = train_options(options);
    pv::ProgressCallback callback;
    if (progress)
      callback = [&](const pv::TrainProgress& p) {
        return progress(user_data, p.epoch, p.max_epochs, p.loss, p.validation_loss) == 0;
      };
    model->fit->train(t, callback);
  });
}

pv_status pv_model_loss_history(const pv_model* model, int32_t kind, double* out, int64_t capacity, int64_t* count) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(model, "model");
    pv::check_not_null(count, "count");
    pv::require(kind == 0 || kind == 1, PV_ERR_INVALID_ARGUMENT, "kind must be 0 (training) or 1 (validation)");
    const std::vector<double>& h = kind == 0 ? model->fit->loss_history() : model->fit->validation_loss_history();
    *count = int64_t(h.size());
    if (out)
      for (int64_t i = 0; i < std::min<int64_t>(capacity, int64_t(h.size())); ++i) out[i] = h[i];
  });
}

pv_status pv_model_save(const pv_model* model, const char* path) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(model, "model");
    pv::check_not_null(path, "path");
    pv::io::save_model_file(path, model->fit->to_saved());
  });
}

pv_status pv_model_load(const char* path, const pv_dataset* data, pv_model** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(path, "path");
    pv::check_not_null(out, "out");
    *out = nullptr;
    auto model = std::make_unique<pv_model>();
    model->fit = pv::Fit::from_saved(pv::io::load_model_file(path), dataset_of(data));
    *out = model.release();
  });
}

void pv_model_free(pv_model* model) { delete model; }

pv_status pv_model_sample(const pv_model* model, int64_t num_samples, uint64_t seed, const int64_t* cells, int64_t n_cells,
                          int64_t batch_size, pv_posterior** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(model, "model");
    pv::check_not_null(out, "out");
    *out = nullptr;
    pv::require(n_cells >= 0, PV_ERR_INVALID_ARGUMENT, "n_cells must be >= 0");
    if (n_cells > 0) pv::check_not_null(cells, "cells");
    pv::PosteriorOptions o;
    o.num_samples = num_samples;
    o.seed = seed;
    o.batch_size = batch_size;
    if (n_cells > 0) o.cells.assign(cells, cells + n_cells);
    auto posterior = std::make_unique<pv_posterior>();
    posterior->arrays = pv::generate_posterior_samples(model->fit->model(), o);
    for (const std::string& k : pv::gene_level_keys(model->fit->model().options())) posterior->keys.push_back(k);
    for (const char* k : {"cell_time", "u_read_depth", "s_read_depth", "cell_gene_state", "ut", "st", "u", "s"})
      posterior->keys.push_back(k);
    *out = posterior.release();
  });
}

int64_t pv_posterior_key_count(const pv_posterior* posterior) { return posterior ? int64_t(posterior->keys.size()) : 0; }

const char* pv_posterior_key(const pv_posterior* posterior, int64_t i) {
  if (!posterior || i < 0 || i >= int64_t(posterior->keys.size())) return nullptr;
  return posterior->keys[size_t(i)].c_str();
}

static const pv::Array& array_of(const pv_posterior* posterior, const char* key) {
  pv::check_not_null(posterior, "posterior");
  pv::check_not_null(key, "key");
  const auto it = posterior->arrays.find(key);
  if (it == posterior->arrays.end()) pv::fail(PV_ERR_INVALID_ARGUMENT, std::string("no posterior key '") + key + "'");
  return it->second;
}

pv_status pv_posterior_shape(const pv_posterior* posterior, const char* key, int64_t shape[3]) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(shape, "shape");
    const pv::Array& a = array_of(posterior, key);
    for (int i = 0; i < 3; ++i) shape[i] = a.shape[size_t(i)];
  });
}

pv_status pv_posterior_copy(const pv_posterior* posterior, const char* key, float* out, int64_t capacity) {
  return pv::guarded(__func__, [&] {
    const pv::Array& a = array_of(posterior, key);
    pv::check_not_null(out, "out");
    pv::require(capacity >= int64_t(a.values.size()), PV_ERR_INVALID_ARGUMENT,
                "capacity " + std::to_string(capacity) + " is less than the " + std::to_string(a.values.size()) + " values of " + key);
    std::memcpy(out, a.values.data(), a.values.size() * sizeof(float));
  });
}

void pv_posterior_free(pv_posterior* posterior) { delete posterior; }

pv_status pv_posterior_create(pv_posterior** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(out, "out");
    *out = new pv_posterior();
  });
}

pv_status pv_posterior_set(pv_posterior* posterior, const char* key, const int64_t shape[3], const float* values) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(posterior, "posterior");
    pv::check_not_null(key, "key");
    pv::check_not_null(shape, "shape");
    pv::require(*key != '\0', PV_ERR_INVALID_ARGUMENT, "key is empty");
    int64_t size = 1;
    for (int i = 0; i < 3; ++i) {
      pv::require(shape[i] >= 1 && shape[i] <= (int64_t(1) << 40), PV_ERR_INVALID_ARGUMENT,
                  "shape[" + std::to_string(i) + "] of '" + key + "' is " + std::to_string(shape[i]));
      pv::require(size <= (int64_t(1) << 48) / shape[i], PV_ERR_INVALID_ARGUMENT, std::string("'") + key + "' is too large");
      size *= shape[i];
    }
    pv::check_not_null(values, "values");
    pv::Array array;
    array.shape.assign(shape, shape + 3);
    array.values.assign(values, values + size);
    if (!posterior->arrays.count(key)) posterior->keys.push_back(key);
    posterior->arrays[key] = std::move(array);
  });
}

pv_status pv_statistics_compute(const pv_dataset* data, const pv_posterior* posterior, const pv_options* options,
                                pv_statistics** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(out, "out");
    *out = nullptr;
    const auto anndata = dataset_of(data);
    pv::check_not_null(posterior, "posterior");
    uint64_t seed = 0;
    pv::StatisticsOptions o = statistics_options(options, &seed);
    pv::prepare_statistics(*anndata, &o, seed);
    *out = to_handle(pv::compute_statistics(*anndata, posterior->arrays, o)).release();
  });
}

pv_status pv_model_statistics(const pv_model* model, int64_t num_samples, uint64_t seed, const pv_options* options,
                              pv_statistics** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(model, "model");
    pv::check_not_null(out, "out");
    *out = nullptr;
    pv::require(num_samples >= 1, PV_ERR_INVALID_ARGUMENT, "num_samples must be >= 1, got " + std::to_string(num_samples));
    uint64_t pca_seed = 0;
    pv::StatisticsOptions o = statistics_options(options, &pca_seed);
    const pv::VelocityModel& velocity_model = model->fit->model();
    pv::require(velocity_model.data().anndata != nullptr, PV_ERR_INTERNAL, "the model has no AnnData");
    pv::prepare_statistics(*velocity_model.data().anndata, &o, pca_seed);
    pv::PosteriorOptions posterior;
    posterior.num_samples = num_samples;
    posterior.seed = seed;
    *out = to_handle(pv::compute_statistics(velocity_model, posterior, o)).release();
  });
}

int64_t pv_statistics_key_count(const pv_statistics* statistics) { return statistics ? int64_t(statistics->keys.size()) : 0; }

const char* pv_statistics_key(const pv_statistics* statistics, int64_t i) {
  if (!statistics || i < 0 || i >= int64_t(statistics->keys.size())) return nullptr;
  return statistics->keys[size_t(i)].c_str();
}

pv_status pv_statistics_shape(const pv_statistics* statistics, const char* key, int32_t* ndim, int64_t shape[3]) {
  return pv::guarded(__func__, [&] {
    const pv_statistics::Entry& e = entry_of(statistics, key);
    pv::check_not_null(shape, "shape");
    if (ndim) *ndim = e.ndim;
    for (int i = 0; i < 3; ++i) shape[i] = e.shape[i];
  });
}

pv_status pv_statistics_copy(const pv_statistics* statistics, const char* key, double* out, int64_t capacity) {
  return pv::guarded(__func__, [&] {
    const pv_statistics::Entry& e = entry_of(statistics, key);
    pv::check_not_null(out, "out");
    pv::require(capacity >= int64_t(e.values.size()), PV_ERR_INVALID_ARGUMENT,
                "capacity " + std::to_string(capacity) + " is less than the " + std::to_string(e.values.size()) + " values of " + key);
    if (!e.values.empty()) std::memcpy(out, e.values.data(), e.values.size() * sizeof(double));
  });
}

void pv_statistics_free(pv_statistics* statistics) { delete statistics; }

}  // extern "C"

// pvengine fit: read counts, train, summarise the posterior, write the results back into a copy of
// the input (plus, optionally, the model and every posterior sample).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/backend.h"
#include "engine/correlation.h"
#include "engine/fit.h"
#include "engine/pca.h"
#include "engine/statistics.h"
#include "io/paths.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "io/model_file.h"
#include "io/posterior_file.h"
#include "pv_build_config.h"

namespace pv::cli {
namespace {

io::Column numeric_column(const std::string& name, const std::vector<double>& values) {
  io::Column c;
  c.name = name;
  c.numeric = values;
  return c;
}

io::UnsValue uns_string(const std::string& s) {
  io::UnsValue v;
  v.kind = io::UnsValue::Kind::kString;
  v.string = s;
  return v;
}

io::UnsValue uns_numbers(const std::vector<double>& x) {
  io::UnsValue v;
  v.kind = io::UnsValue::Kind::kNumberArray;
  v.numbers = x;
  return v;
}

io::UnsValue uns_integer(int64_t x) {
  io::UnsValue v;
  v.kind = io::UnsValue::Kind::kInteger;
  v.integer = x;
  return v;
}

const std::vector<double>* find_numeric(const io::DataFrame& frame, const std::string& name) {
  const io::Column* c = frame.find(name);
  return c && c->kind == io::Column::Kind::kNumeric ? &c->numeric : nullptr;
}

// When the input carries simulated ground truth, say how well it was recovered.
void report_recovery(const io::AnnData& data, PosteriorSummary& s) {
  const std::vector<double>* t = find_numeric(data.obs, "true_t");
  if (!t) return;
  std::printf("recovery of the simulated truth (Spearman correlation of posterior means):\n");
  std::printf("  cell time       %.4f\n", spearman(s.mean["cell_time"], *t));
  const std::vector<double>* beta = find_numeric(data.var, "true_beta");
  const std::vector<double>* gamma = find_numeric(data.var, "true_gamma");
  if (beta && gamma) {
    std::vector<double> ratio, truth;
    for (size_t g = 0; g < beta->size(); ++g) {
      ratio.push_back(s.mean["gamma"][g] / s.mean["beta"][g]);
      truth.push_back((*gamma)[g] / (*beta)[g]);
    }
    std::printf("  gamma / beta    %.4f\n", spearman(ratio, truth));
  }
  for (const char* site : {"alpha", "beta", "gamma", "switching"})
    if (const std::vector<double>* truth = find_numeric(data.var, std::string("true_") + site))
      std::printf("  %-15s %.4f\n", site, spearman(s.mean[site], *truth));
}

// The statistics' outputs of issue 6: obsm velocity_pyro_<basis>; obs fdri_pyro,
// embeds_magnitude_pyro (mean over samples), velocity_confidence_pyro (fraction of samples whose
// embedded angle lies within 45 degrees of the posterior-mean direction); var mean_mae_pyro,
// time_correlation_pyro; uns pyrovelocity/genes.
void add_statistics(const PosteriorStatistics& st, const io::AnnData& data, const std::string& basis, int64_t samples,
                    io::Additions* add, io::UnsValue* uns) {
  const Array& mean_field = st.arrays.at("vector_field_posterior_mean");
  const Array& angles = st.arrays.at("embeds_angle");
  const Array& magnitude = st.arrays.at("embeds_magnitude");
  const int64_t C = mean_field.shape[0];
  io::DenseMatrix<double> field{C, 2, std::vector<double>(mean_field.values.begin(), mean_field.values.end())};
  add->obsm["velocity_pyro_" + basis] = std::move(field);
  const Array& fdri = st.arrays.at("fdri");
  add->obs_columns.push_back(numeric_column("fdri_pyro", std::vector<double>(fdri.values.begin(), fdri.values.end())));
  std::vector<double> mean_magnitude(static_cast<size_t>(C), 0.0), confidence(static_cast<size_t>(C), 0.0);
  const double pi = 3.14159265358979323846;
  for (int64_t c = 0; c < C; ++c) {
    const double direction = std::atan2(double(mean_field.values[2 * c + 1]), double(mean_field.values[2 * c]));
    for (int64_t s = 0; s < samples; ++s) {
      mean_magnitude[c] += magnitude.values[s * C + c] / double(samples);
      double d = std::fabs(double(angles.values[s * C + c]) - direction);
      d = std::fmod(d, 2 * pi);
      if (d > pi) d = 2 * pi - d;
      confidence[c] += (d <= pi / 4 ? 1.0 : 0.0) / double(samples);
    }
    if (std::isnan(direction)) confidence[c] = std::numeric_limits<double>::quiet_NaN();
  }
  add->obs_columns.push_back(numeric_column("embeds_magnitude_pyro", mean_magnitude));
  add->obs_columns.push_back(numeric_column("velocity_confidence_pyro", confidence));
  add->var_columns.push_back(numeric_column("mean_mae_pyro", st.gene_ranking.mean_mae));
  add->var_columns.push_back(numeric_column("time_correlation_pyro", st.gene_ranking.time_correlation));
  io::UnsValue genes;
  genes.kind = io::UnsValue::Kind::kStringArray;
  for (int64_t g : st.gene_ranking.genes) genes.strings.push_back(g < int64_t(data.var.index.size()) ? data.var.index[g] : std::to_string(g));
  uns->dict["genes"] = genes;
}

// The kNN graph the statistics used, as scanpy's pp.neighbors stores it (obsp distances and
// UMAP connectivities, uns neighbors), so that scVelo and scanpy can use the result directly.
// Only when the input has no obsp/connectivities: a graph the user made is never replaced.
void add_neighbours(const PosteriorStatistics& st, const std::string& input, const io::AnnData& data, int64_t cells,
                    io::Additions* add) {
  if (st.knn.cells != cells) return;
  for (const io::ElementSummary& e : io::describe_h5ad(input).obsp)
    if (e.name == "connectivities") {
      std::printf("kept the input's obsp/connectivities (the statistics used their own %lld-neighbour graph)\n",
                  (long long)st.knn.k);
      return;
    }
  auto as_obsp = [cells](const CellGraph& g) {
    io::CountMatrix m;
    m.rows = m.cols = cells;
    m.sparse = true;
    m.indptr = g.indptr;
    m.indices = g.indices;
    m.data.assign(g.values.begin(), g.values.end());  // float32, as scanpy stores them
    return m;
  };
  add->obsp["distances"] = as_obsp(knn_distances(st.knn));
  add->obsp["connectivities"] = as_obsp(umap_connectivities(st.knn));
  io::UnsValue params, neighbours;
  params.kind = neighbours.kind = io::UnsValue::Kind::kDict;
  params.dict["n_neighbors"] = uns_integer(st.knn.k);
  params.dict["method"] = uns_string("umap");
  params.dict["metric"] = uns_string("euclidean");
  if (data.obsm.count("X_pca")) params.dict["use_rep"] = uns_string("X_pca");  // else a PCA of log expression
  neighbours.dict["params"] = params;
  neighbours.dict["connectivities_key"] = uns_string("connectivities");
  neighbours.dict["distances_key"] = uns_string("distances");
  add->uns["neighbors"] = neighbours;
}

}  // namespace

int run_fit(const std::vector<std::string>& args) {
  ArgParser parser("fit", "IN.h5ad -o OUT.h5ad [options]",
                   "Fit the Pyro-Velocity model to the raw spliced/unspliced counts of IN.h5ad and write a\n"
                   "copy with the results: obs cell_time_pyro(_std); var alpha/beta/gamma/t0/switching_pyro(_std);\n"
                   "layers velocity_pyro, ut_pyro, st_pyro (posterior means); uns pyrovelocity. IN is not modified.");
  parser.option("-o", "", "output .h5ad (required; must differ from the input)");
  parser.option("--epochs", "3000", "maximum training epochs");
  parser.option("--batch-size", "0", "cells per minibatch (0: full batch, train_faster)");
  parser.option("--samples", "30", "posterior samples");
  parser.option("--seed", "0", "random seed");
  parser.option("--model", "model1", "model1, or model2 (include_prior + add_offset, the paper's setting)");
  parser.option("--likelihood", "Poisson", "Poisson or NegativeBinomial");
  parser.option("--state", "marginal", "the discrete state k: marginal (exact sum) or sampled (as the reference)");
  parser.option("--entropy", "analytic", "guide entropy: analytic, or sample (the reference's -log q)");
  parser.option("--lr", "0.01", "Adam learning rate");
  parser.option("--improvement", "1e-4", "patience rule: minimum relative improvement per 100 epochs");
  parser.option("--device", "auto", "cpu, cuda or auto");
  parser.option("--spliced-layer", "auto", "layer of spliced counts (auto: raw_spliced, else spliced)");
  parser.option("--unspliced-layer", "auto", "layer of unspliced counts (auto: raw_unspliced, else unspliced)");
  parser.option("--save-model", "", "also save the fitted model to this file");
  parser.option("--posterior-out", "", "also write every posterior sample to this HDF5 file");
  parser.option("--basis", "umap", "embedding (obsm X_<basis>) for the velocity projection");
  parser.flag("--no-stats", "skip the posterior statistics (velocity in the embedding, fdri, gene ranking)");
  parser.flag("--allow-non-integer", "accept count layers with non-whole values");
  parser.flag("--quiet", "no progress line");
  if (!parser.parse(args)) return 0;
  if (parser.positionals().size() != 1) fail(PV_ERR_INVALID_ARGUMENT, "expected exactly one input file (see pvengine fit --help)");
  const std::string input = parser.positionals()[0], output = parser.get("-o");
  if (output.empty()) fail(PV_ERR_INVALID_ARGUMENT, "an output path is required (-o OUT.h5ad)");

  Settings settings;
  apply_setting(&settings, "likelihood", parser.get("--likelihood"));
  apply_setting(&settings, "seed", parser.get("--seed"));
  apply_setting(&settings, "state_mode", parser.get("--state"));
  apply_setting(&settings, "entropy", parser.get("--entropy"));
  const std::string model_name = parser.get("--model");
  if (model_name == "model2") {
    settings.model.include_prior = settings.model.add_offset = true;
  } else if (model_name != "model1") {
    fail(PV_ERR_INVALID_ARGUMENT, "--model must be model1 or model2, got '" + model_name + "'");
  }
  settings.device = parser.get("--device");
  resolve_device(settings.device);  // refuse a bad or unavailable device before reading anything

  TrainOptions train;
  train.max_epochs = parser.get_int("--epochs");
  train.batch_size = parser.get_int("--batch-size");
  train.mode = train.batch_size > 0 ? TrainMode::kMiniBatch : TrainMode::kFullBatch;
  train.lr = parser.get_double("--lr");
  train.improvement = train.mode == TrainMode::kMiniBatch ? 0.0 : parser.get_double("--improvement");
  train.seed = settings.seed;
  const long long samples = parser.get_int("--samples");
  if (samples <= 0) fail(PV_ERR_INVALID_ARGUMENT, "--samples must be > 0, got " + std::to_string(samples));
  if (train.max_epochs <= 0) fail(PV_ERR_INVALID_ARGUMENT, "--epochs must be > 0, got " + std::to_string(train.max_epochs));
  if (train.batch_size < 0) fail(PV_ERR_INVALID_ARGUMENT, "--batch-size must be >= 0");

  // Every output is checked before the (long) training: none may be the input or another output,
  // and each directory must be writable.
  std::vector<std::pair<std::string, std::string>> outputs = {{"-o", output}};
  for (const char* flag : {"--save-model", "--posterior-out"})
    if (!parser.get(flag).empty()) outputs.push_back({flag, parser.get(flag)});
  for (size_t i = 0; i < outputs.size(); ++i) {
    io::check_output_directory(outputs[i].second);
    if (std::ifstream(input).good()) io::check_not_same_file(input, outputs[i].second);
    for (size_t j = 0; j < i; ++j)
      if (std::ifstream(outputs[j].second).good() || outputs[j].second == outputs[i].second) {
        if (outputs[j].second == outputs[i].second)
          fail(PV_ERR_INVALID_ARGUMENT, outputs[i].first + " and " + outputs[j].first + " name the same file '" + outputs[i].second + "'");
        io::check_not_same_file(outputs[j].second, outputs[i].second);
      }
  }

  io::ReadOptions read;
  read.spliced_layer = parser.get("--spliced-layer");
  read.unspliced_layer = parser.get("--unspliced-layer");
  read.allow_non_integer = parser.has("--allow-non-integer");
  auto data = std::make_shared<io::AnnData>(io::read_h5ad(input, read));
  const int64_t C = data->layers.at("spliced").rows, G = data->layers.at("spliced").cols;
  if (train.batch_size > C)
    fail(PV_ERR_INVALID_ARGUMENT, "--batch-size " + std::to_string(train.batch_size) + " is larger than the number of cells (" +
                                      std::to_string(C) + ")");
  validate(train, C);
  std::printf("pvengine fit: %s (%lld cells x %lld genes), %s, %s likelihood, k %s, up to %lld epochs%s\n", input.c_str(),
              (long long)C, (long long)G, model_name.c_str(), likelihood_name(settings.model.likelihood),
              parser.get("--state").c_str(), (long long)train.max_epochs,
              train.mode == TrainMode::kMiniBatch ? (", batches of " + std::to_string(train.batch_size)).c_str() : ", full batch");

  // The statistics need obsm X_<basis> and the kNN space X_pca (computed here when absent), and
  // the PCA loadings for the pca_* outputs (from a PCA of log expression with as many components).
  const bool stats = !parser.has("--no-stats");
  StatisticsOptions stats_options;
  stats_options.basis = parser.get("--basis");
  stats_options.device = resolve_device(settings.device);  // the velocity graphs and their projection
  if (stats) {
    if (!data->obsm.count("X_" + stats_options.basis))
      fail(PV_ERR_INVALID_ARGUMENT, "obsm has no X_" + stats_options.basis + " for the velocity projection (choose --basis NAME, or --no-stats)");
    std::string note;
    prepare_statistics(*data, &stats_options, settings.seed, &note);
    if (!note.empty()) std::printf("%s\n", note.c_str());
  }

  Fit fit(data, settings);
  std::printf("device: %s\n", fit.model().on_device()               ? "cuda (float32 fused likelihood)"
                                : use_fast_likelihood(settings.model) ? "cpu (float32 likelihood vectorised over genes)"
                                                                      : "cpu (float64 reference likelihood)");
  const bool show = !parser.has("--quiet") && isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  const TrainResult result = fit.train(train, [&](const TrainProgress& p) {
    if (show && (p.epoch % 10 == 0 || p.epoch + 1 == p.max_epochs)) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double rate = double(p.epoch + 1) / seconds;
      std::fprintf(stderr, "\r  epoch %lld/%lld  loss %.5f  %.1f epochs/s  ETA %.0fs   ", (long long)p.epoch + 1,
                   (long long)p.max_epochs, p.loss, rate, double(p.max_epochs - p.epoch - 1) / rate);
    }
    return true;
  });
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (show) std::fprintf(stderr, "\n");
  std::printf("trained %lld epochs in %.1f s (stopped: %s), final loss %.5f\n", (long long)result.epochs, train_seconds,
              result.stop_reason.c_str(), result.loss.back());

  PosteriorOptions posterior;
  posterior.num_samples = samples;
  posterior.seed = settings.seed;
  // One pass over the samples gives both the summaries and the statistics.
  const auto sample_start = std::chrono::steady_clock::now();
  PosteriorSummary summary;
  PosteriorStatistics statistics;
  if (stats) {
    PosteriorSummariser summariser(fit.model(), posterior);
    statistics = compute_statistics(fit.model(), posterior, stats_options, &summariser);
    summary = summariser.finish();
    std::printf("drew %lld posterior samples and computed their summaries and statistics (velocity in X_%s, fdri, gene "
                "ranking) in %.1f s\n",
                samples, stats_options.basis.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - sample_start).count());
  } else {
    summary = summarise_posterior(fit.model(), posterior);
    std::printf("summarised %lld posterior samples in %.1f s\n", samples,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - sample_start).count());
  }
  report_recovery(*data, summary);

  io::Additions add;
  add.obs_columns.push_back(numeric_column("cell_time_pyro", summary.mean["cell_time"]));
  add.obs_columns.push_back(numeric_column("cell_time_pyro_std", summary.sd["cell_time"]));
  for (const char* site : {"alpha", "beta", "gamma", "t0", "switching"}) {
    add.var_columns.push_back(numeric_column(std::string(site) + "_pyro", summary.mean[site]));
    add.var_columns.push_back(numeric_column(std::string(site) + "_pyro_std", summary.sd[site]));
  }
  for (const auto& [key, layer] : {std::pair<const char*, const char*>{"velocity", "velocity_pyro"}, {"ut", "ut_pyro"}, {"st", "st_pyro"}}) {
    io::DenseMatrix<float> m{C, G, std::vector<float>(summary.mean[key].begin(), summary.mean[key].end())};
    add.layers[layer] = std::move(m);
  }
  io::UnsValue uns;
  uns.kind = io::UnsValue::Kind::kDict;
  if (stats) {
    add_statistics(statistics, *data, stats_options.basis, samples, &add, &uns);
    add_neighbours(statistics, input, *data, C, &add);
  }
  io::UnsValue options;
  options.kind = io::UnsValue::Kind::kDict;
  for (const auto& [key, value] : model_options_to_text(settings.model)) options.dict[key] = uns_string(value);
  options.dict["seed"] = uns_integer(int64_t(settings.seed));
  uns.dict["options"] = options;
  uns.dict["loss_history"] = uns_numbers(fit.loss_history());
  uns.dict["epochs"] = uns_integer(result.epochs);
  uns.dict["stop_reason"] = uns_string(result.stop_reason);
  uns.dict["num_samples"] = uns_integer(samples);
  uns.dict["version"] = uns_string(PV_VERSION_STRING);
  add.uns["pyrovelocity"] = uns;
  io::write_h5ad_with_additions(input, output, add);
  std::printf("wrote %s\n", output.c_str());

  if (!parser.get("--save-model").empty()) {
    io::save_model_file(parser.get("--save-model"), fit.to_saved());
    std::printf("saved the model to %s\n", parser.get("--save-model").c_str());
  }
  if (!parser.get("--posterior-out").empty()) {
    const auto arrays = generate_posterior_samples(fit.model(), posterior);
    std::map<std::string, io::NamedArray> named;
    for (const auto& [key, array] : arrays) named[key] = {array.shape, &array.values};
    for (const auto& [key, array] : statistics.arrays) named[key] = {array.shape, &array.values};
    io::write_posterior_file(parser.get("--posterior-out"), named, data->var.index, data->obs.index);
    std::printf("wrote every posterior sample to %s\n", parser.get("--posterior-out").c_str());
  }
  return 0;
}

}  // namespace pv::cli

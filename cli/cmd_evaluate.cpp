// pvengine evaluate RESULT.h5ad: the benchmark metrics CBDir and ICCoh of a fitted result
// (shared/spec/STATISTICS.md, "Benchmark metrics"), printed, and with -o stored in uns of a copy.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/metrics.h"
#include "engine/statistics.h"
#include "io/h5ad_layers.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"

namespace pv::cli {

namespace {

struct Clusters {
  std::vector<int32_t> codes;
  std::vector<std::string> categories;
};

// A categorical obs column as it is; a string column becomes one with its sorted distinct values.
Clusters read_clusters(const io::AnnData& data, const std::string& key, const std::string& path) {
  const io::Column* column = data.obs.find(key);
  if (!column) {
    std::string names;
    for (const io::Column& c : data.obs.columns) names += (names.empty() ? "" : ", ") + c.name;
    fail(PV_ERR_INVALID_ARGUMENT, path + ": obs has no column '" + key + "' (--cluster-key); obs columns: " +
                                      (names.empty() ? "none" : names));
  }
  Clusters clusters;
  if (column->kind == io::Column::Kind::kCategorical) {
    clusters.codes = column->codes;
    clusters.categories = column->categories;
  } else if (column->kind == io::Column::Kind::kString) {
    clusters.categories = column->strings;
    std::sort(clusters.categories.begin(), clusters.categories.end());
    clusters.categories.erase(std::unique(clusters.categories.begin(), clusters.categories.end()),
                              clusters.categories.end());
    for (const std::string& value : column->strings) {
      clusters.codes.push_back(static_cast<int32_t>(
          std::lower_bound(clusters.categories.begin(), clusters.categories.end(), value) -
          clusters.categories.begin()));
    }
  } else {
    fail(PV_ERR_INVALID_ARGUMENT, path + ": obs column '" + key + "' (--cluster-key) is numeric; it must be "
                                      "categorical or strings");
  }
  return clusters;
}

const io::DenseMatrix<double>& obsm_array(const io::AnnData& data, const std::string& key, int64_t min_cols,
                                          const std::string& path, const std::string& why) {
  const auto found = data.obsm.find(key);
  if (found == data.obsm.end()) {
    std::string names;
    for (const auto& entry : data.obsm) names += (names.empty() ? "" : ", ") + entry.first;
    fail(PV_ERR_INVALID_ARGUMENT, path + ": no obsm '" + key + "' (" + why + "); obsm keys: " +
                                      (names.empty() ? "none" : names));
  }
  if (found->second.cols < min_cols) {
    fail(PV_ERR_INVALID_ARGUMENT, path + ": obsm '" + key + "' has " + std::to_string(found->second.cols) +
                                      " columns; at least " + std::to_string(min_cols) + " are needed");
  }
  return found->second;
}

// The first two columns, row-major cells x 2.
std::vector<double> first_two_columns(const io::DenseMatrix<double>& m) {
  std::vector<double> out(static_cast<size_t>(m.rows * 2));
  for (int64_t i = 0; i < m.rows; ++i) {
    out[2 * i] = m.values[i * m.cols];
    out[2 * i + 1] = m.values[i * m.cols + 1];
  }
  return out;
}

// uns keys may not hold '/' (an HDF5 path separator).
std::string uns_key(std::string name) {
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

io::UnsValue uns_number(double value) {
  io::UnsValue v;
  v.kind = io::UnsValue::Kind::kNumber;
  v.number = value;
  return v;
}

std::string score_text(double score) {
  if (std::isnan(score)) return "nan";
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", score);
  return text;
}

}  // namespace

int run_evaluate(const std::vector<std::string>& args) {
  ArgParser parser("evaluate", "RESULT.h5ad --cluster-key KEY --transitions EDGES [options]",
                   "Benchmark metrics of a velocity result: cross-boundary direction correctness (CBDir) "
                   "of the embedded velocity (obsm velocity_pyro_<basis>) along known transitions, and "
                   "in-cluster coherence (ICCoh) of the gene-space velocity layer, with kNN on obsm X_pca. "
                   "EDGES: \"A>B, B>C\" (A>{B, C} for several targets) or the preset 'pancreas'. "
                   "With -o, writes a copy of RESULT with uns pyrovelocity_evaluation.");
  parser.option("--cluster-key", "clusters", "obs column holding the clusters");
  parser.option("--transitions", "", "known transitions, \"A>B, B>C\" or 'pancreas'");
  parser.option("--basis", "umap", "embedding: obsm X_<basis> and velocity_pyro_<basis>");
  parser.option("--velocity-key", "velocity_pyro", "layer with the gene-space velocity (for ICCoh)");
  parser.option("--neighbours", "30", "k of the kNN graph on X_pca, the cell itself included");
  parser.option("-o", "", "write a copy of RESULT with the scores in uns pyrovelocity_evaluation");
  if (!parser.parse(args)) return 0;
  if (parser.positionals().size() != 1) {
    fail(PV_ERR_INVALID_ARGUMENT, "evaluate takes one RESULT.h5ad (see pvengine evaluate --help)");
  }
  const std::string path = parser.positionals()[0];
  if (parser.get("--transitions").empty()) {
    fail(PV_ERR_INVALID_ARGUMENT, "evaluate needs --transitions (\"A>B, B>C\" or 'pancreas')");
  }
  const std::string basis = parser.get("--basis");
  const std::string velocity_key = parser.get("--velocity-key");
  const int64_t k = parser.get_int("--neighbours");

  io::ReadOptions options;
  options.allow_non_integer = true;  // only the obs, obsm and velocity layer are used
  const io::AnnData data = io::read_h5ad(path, options);
  const int64_t cells = static_cast<int64_t>(data.obs.index.size());
  const int64_t genes = static_cast<int64_t>(data.var.index.size());

  const Clusters clusters = read_clusters(data, parser.get("--cluster-key"), path);
  const std::vector<Transition> transitions = parse_transitions(parser.get("--transitions"), clusters.categories);
  const io::DenseMatrix<double>& pca = obsm_array(data, "X_pca", 1, path, "the kNN graph is built on it");
  const std::vector<double> embedding =
      first_two_columns(obsm_array(data, "X_" + basis, 2, path, "the embedding, --basis " + basis));
  const std::vector<double> velocity_embedded = first_two_columns(
      obsm_array(data, "velocity_pyro_" + basis, 2, path, "the embedded velocity that pvengine fit writes"));
  const io::DenseMatrix<float> velocity = io::read_dense_layer(path, velocity_key);
  if (velocity.rows != cells || velocity.cols != genes) {
    fail(PV_ERR_FORMAT, path + ": layers/" + velocity_key + " is " + std::to_string(velocity.rows) + " x " +
                            std::to_string(velocity.cols) + " but the data has " + std::to_string(cells) +
                            " cells and " + std::to_string(genes) + " genes");
  }
  if (k < 1 || k > cells) {
    fail(PV_ERR_INVALID_ARGUMENT, "--neighbours must be in [1, " + std::to_string(cells) + "] for this file, got " +
                                      std::to_string(k));
  }

  const Knn knn = knn_graph(pca.values.data(), cells, pca.cols, k);
  const std::vector<TransitionScore> cbdir = cross_boundary_direction(
      embedding.data(), velocity_embedded.data(), clusters.codes, clusters.categories, knn, transitions);
  const double cbdir_total = cross_boundary_direction_total(cbdir);
  const auto iccoh = in_cluster_coherence(velocity.values.data(), cells, genes, clusters.codes,
                                          clusters.categories, knn);
  const double iccoh_total = in_cluster_coherence_total(iccoh);

  std::vector<int64_t> cluster_cells(clusters.categories.size(), 0);
  for (int32_t c : clusters.codes) {
    if (c >= 0) ++cluster_cells[static_cast<size_t>(c)];
  }
  size_t width = 5;
  for (const TransitionScore& s : cbdir) width = std::max(width, s.from.size() + s.to.size() + 4);
  for (const std::string& name : clusters.categories) width = std::max(width, name.size());
  const int w = static_cast<int>(width);

  std::printf("file      %s  (%lld cells, kNN k = %lld on X_pca, basis %s, layer %s)\n", path.c_str(),
              static_cast<long long>(cells), static_cast<long long>(k), basis.c_str(), velocity_key.c_str());
  std::printf("\n%-*s  %8s  %8s\n", w, "CBDir edge", "cells", "score");
  for (const TransitionScore& s : cbdir) {
    std::printf("%-*s  %8lld  %8s\n", w, (s.from + " -> " + s.to).c_str(), static_cast<long long>(s.cells),
                score_text(s.score).c_str());
  }
  std::printf("%-*s  %8s  %8s\n", w, "CBDir total", "", score_text(cbdir_total).c_str());
  std::printf("\n%-*s  %8s  %8s\n", w, "ICCoh cluster", "cells", "score");
  for (size_t c = 0; c < iccoh.size(); ++c) {
    std::printf("%-*s  %8lld  %8s\n", w, iccoh[c].first.c_str(), static_cast<long long>(cluster_cells[c]),
                score_text(iccoh[c].second).c_str());
  }
  std::printf("%-*s  %8s  %8s\n", w, "ICCoh total", "", score_text(iccoh_total).c_str());

  const std::string output = parser.get("-o");
  if (!output.empty()) {
    io::UnsValue evaluation, cbdir_dict, iccoh_dict;
    for (const TransitionScore& s : cbdir) cbdir_dict.dict[uns_key(s.from + " -> " + s.to)] = uns_number(s.score);
    for (const auto& [name, score] : iccoh) iccoh_dict.dict[uns_key(name)] = uns_number(score);
    evaluation.dict["cbdir"] = cbdir_dict;
    evaluation.dict["cbdir_total"] = uns_number(cbdir_total);
    evaluation.dict["iccoh"] = iccoh_dict;
    evaluation.dict["iccoh_total"] = uns_number(iccoh_total);
    io::Additions additions;
    additions.uns["pyrovelocity_evaluation"] = evaluation;
    io::write_h5ad_with_additions(path, output, additions);
    std::printf("\nwrote %s (uns pyrovelocity_evaluation)\n", output.c_str());
  }
  return 0;
}

}  // namespace pv::cli

// Helper for tests/interop_anndata.py (not a doctest binary):
//   test_h5ad_interop_writer write OUT.h5ad      writes a sample AnnData with write_h5ad;
//   test_h5ad_interop_writer add IN.h5ad OUT.h5ad reads IN (an anndata-written file) and writes
//     OUT with additions derived from what it read, so Python can check both directions.
#include <cstdio>
#include <string>

#include "engine/error.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"

namespace {

using pv::io::Column;
using pv::io::UnsValue;

pv::io::AnnData sample() {
  pv::io::AnnData a;
  a.obs.index = {"cell_a", "cell_b", "c\xC3\xA9lula", "cell_d"};
  a.var.index = {"Gene1", "Gene2", "Gene3"};
  Column score;
  score.name = "score";
  score.numeric = {0.1, -2.5, 3.0, 1.0 / 3.0};
  Column n_counts;
  n_counts.name = "n_counts";
  n_counts.is_integer = true;
  n_counts.numeric = {0, 1, 1099511627776.0, -7};
  Column batch;
  batch.name = "batch";
  batch.kind = Column::Kind::kString;
  batch.strings = {"a", "b", "", "\xC3\xBC"};
  Column clusters;
  clusters.name = "clusters";
  clusters.kind = Column::Kind::kCategorical;
  clusters.codes = {0, 2, -1, 1};
  clusters.categories = {"Ductal", "Ngn3 high EP", "Beta"};
  clusters.ordered = true;
  a.obs.columns = {score, n_counts, batch, clusters};
  Column highly_variable;
  highly_variable.name = "highly_variable";
  highly_variable.is_integer = true;
  highly_variable.numeric = {1, 0, 1};
  a.var.columns = {highly_variable};

  pv::io::CountMatrix spliced;
  spliced.rows = 4;
  spliced.cols = 3;
  spliced.sparse = true;
  spliced.indptr = {0, 2, 2, 3, 5};
  spliced.indices = {0, 2, 1, 0, 2};
  spliced.data = {1, 3, 7, 16, 2};
  a.layers["spliced"] = spliced;
  pv::io::CountMatrix unspliced;
  unspliced.rows = 4;
  unspliced.cols = 3;
  unspliced.dense = {0, 1, 2, 3, 0, 0, 5, 0, 1, 0, 0, 9};
  a.layers["unspliced"] = unspliced;
  a.X = std::make_unique<pv::io::CountMatrix>(spliced);
  a.obsm["X_umap"] = {4, 2, {1.5, -2.25, 0.0, 3.0, 4.0, 5.5, -6.0, 7.125}};

  a.uns.dict["alpha"].kind = UnsValue::Kind::kNumber;
  a.uns.dict["alpha"].number = 0.25;
  a.uns.dict["n_steps"].kind = UnsValue::Kind::kInteger;
  a.uns.dict["n_steps"].integer = -42;
  a.uns.dict["note"].kind = UnsValue::Kind::kString;
  a.uns.dict["note"].string = "hello \xE2\x9C\x93";
  a.uns.dict["losses"].kind = UnsValue::Kind::kNumberArray;
  a.uns.dict["losses"].numbers = {1.5, 2.5, -1e10};
  a.uns.dict["names"].kind = UnsValue::Kind::kStringArray;
  a.uns.dict["names"].strings = {"x", "y"};
  UnsValue& params = a.uns.dict["params"];
  params.kind = UnsValue::Kind::kDict;
  params.dict["inner"].kind = UnsValue::Kind::kDict;
  params.dict["inner"].dict["deep"].kind = UnsValue::Kind::kInteger;
  params.dict["inner"].dict["deep"].integer = 7;
  return a;
}

// latent_time[i] = i / n_obs; layers/velocity = 0.5 * spliced; obsm/velocity_umap[i] = (i, -i);
// var fit_alpha[j] = j + 0.5; uns/pyrovelocity = {"n_cells": n_obs, "elbo": [-3, -2]}.
pv::io::Additions additions_for(const pv::io::AnnData& data) {
  const pv::io::CountMatrix& spliced = data.layers.at("spliced");
  const int64_t n_obs = spliced.rows, n_vars = spliced.cols;
  pv::io::Additions add;
  Column latent_time;
  latent_time.name = "latent_time";
  for (int64_t i = 0; i < n_obs; ++i) latent_time.numeric.push_back(double(i) / double(n_obs));
  add.obs_columns.push_back(latent_time);
  Column fit_alpha;
  fit_alpha.name = "fit_alpha";
  for (int64_t j = 0; j < n_vars; ++j) fit_alpha.numeric.push_back(double(j) + 0.5);
  add.var_columns.push_back(fit_alpha);
  pv::io::DenseMatrix<float> velocity{n_obs, n_vars, std::vector<float>(size_t(n_obs * n_vars), 0.0f)};
  for (int64_t i = 0; i < n_obs; ++i) {
    if (spliced.sparse) {
      for (int64_t k = spliced.indptr[i]; k < spliced.indptr[i + 1]; ++k) {
        velocity.values[i * n_vars + spliced.indices[k]] = 0.5f * spliced.data[k];
      }
    } else {
      for (int64_t j = 0; j < n_vars; ++j) velocity.values[i * n_vars + j] = 0.5f * spliced.dense[i * n_vars + j];
    }
  }
  add.layers["velocity"] = velocity;
  pv::io::DenseMatrix<double> umap{n_obs, 2, {}};
  for (int64_t i = 0; i < n_obs; ++i) {
    umap.values.push_back(double(i));
    umap.values.push_back(-double(i));
  }
  add.obsm["velocity_umap"] = umap;
  UnsValue& summary = add.uns["pyrovelocity"];
  summary.kind = UnsValue::Kind::kDict;
  summary.dict["n_cells"].kind = UnsValue::Kind::kInteger;
  summary.dict["n_cells"].integer = n_obs;
  summary.dict["elbo"].kind = UnsValue::Kind::kNumberArray;
  summary.dict["elbo"].numbers = {-3, -2};
  return add;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "write" && argc == 3) {
      pv::io::write_h5ad(argv[2], sample());
      return 0;
    }
    if (mode == "add" && argc == 4) {
      const pv::io::AnnData data = pv::io::read_h5ad(argv[2]);
      pv::io::write_h5ad_with_additions(argv[2], argv[3], additions_for(data));
      return 0;
    }
  } catch (const pv::Error& e) {
    std::fprintf(stderr, "test_h5ad_interop_writer: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: test_h5ad_interop_writer write OUT.h5ad | add IN.h5ad OUT.h5ad\n");
  return 2;
}

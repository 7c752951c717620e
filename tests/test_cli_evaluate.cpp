// pvengine evaluate as a user runs it: the built binary (PV_CLI) on a small result file whose
// scores are known by construction, its printed table, the uns it stores with -o, and one-line
// errors for missing keys.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/anndata.h"
#include "io/h5ad_layers.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "pv_build_config.h"
#include "cli_runner.h"
#include "test_h5ad_support.h"

namespace {

using pv_test::Outcome;

// Runs `pvengine evaluate args...`.
Outcome evaluate(std::vector<std::string> args) {
  args.insert(args.begin(), "evaluate");
  return pv_test::run_program(PV_CLI, args);
}

bool contains(const std::string& text, const std::string& fragment) { return text.find(fragment) != std::string::npos; }

int64_t line_count(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

}  // namespace

#if PV_HDF5

namespace {

constexpr int64_t kCells = 40, kGenes = 3;

pv::io::CountMatrix dense_layer(const std::vector<float>& values) {
  pv::io::CountMatrix m;
  m.rows = kCells;
  m.cols = kGenes;
  m.dense = values;
  return m;
}

pv::io::DenseMatrix<double> on_the_line(double vx, double vy, bool velocity) {
  pv::io::DenseMatrix<double> m{kCells, 2, {}};
  for (int64_t i = 0; i < kCells; ++i) {
    m.values.push_back(velocity ? vx : static_cast<double>(i));
    m.values.push_back(velocity ? vy : 0.0);
  }
  return m;
}

// 40 cells on a line (X_pca = X_umap = (i, 0)): "Early" = cells 0-19, "Late stage" = 20-39, so
// with k = 30 every Early cell has Late neighbours and every Late cell Early ones. The embedded
// velocity is (1, 0) everywhere: CBDir Early -> Late stage = 1, Late stage -> Early = -1 (20 cells
// each). The gene-space velocity is one vector per cluster: ICCoh 1 for both.
std::string write_result(const pv_test::TempDir& dir) {
  pv::io::AnnData data;
  for (int64_t i = 0; i < kCells; ++i) data.obs.index.push_back("cell" + std::to_string(i));
  for (int64_t g = 0; g < kGenes; ++g) data.var.index.push_back("gene" + std::to_string(g));
  pv::io::Column clusters;
  clusters.name = "clusters";
  clusters.kind = pv::io::Column::Kind::kCategorical;
  clusters.categories = {"Early", "Late stage"};
  std::vector<float> counts, velocity;
  for (int64_t i = 0; i < kCells; ++i) {
    const bool late = i >= kCells / 2;
    clusters.codes.push_back(late ? 1 : 0);
    for (int64_t g = 0; g < kGenes; ++g) {
      counts.push_back(static_cast<float>((i + g) % 5));
      velocity.push_back(late ? static_cast<float>(g) - 1.0f : 0.5f * static_cast<float>(g + 1));
    }
  }
  data.obs.columns.push_back(clusters);
  data.layers["spliced"] = dense_layer(counts);
  data.layers["unspliced"] = dense_layer(counts);
  data.layers["velocity_pyro"] = dense_layer(velocity);
  data.obsm["X_pca"] = on_the_line(0, 0, false);
  data.obsm["X_umap"] = on_the_line(0, 0, false);
  data.obsm["velocity_pyro_umap"] = on_the_line(1, 0, true);
  const std::string path = dir.file("result.h5ad");
  pv::io::write_h5ad(path, data);
  return path;
}

const pv::io::UnsValue& member(const pv::io::UnsValue& dict, const std::string& key) {
  const auto found = dict.dict.find(key);
  REQUIRE_MESSAGE(found != dict.dict.end(), "uns has no '" << key << "'");
  return found->second;
}

}  // namespace

TEST_CASE("cli evaluate: prints CBDir per edge and ICCoh per cluster, and writes nothing without -o") {
  const pv_test::TempDir dir;
  const std::string path = write_result(dir);
  const Outcome run = evaluate({path, "--cluster-key", "clusters", "--transitions", "Early>Late stage, Late stage > Early"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  CHECK(run.err.empty());
  CHECK(contains(run.out, "Early -> Late stage"));
  CHECK(contains(run.out, "Late stage -> Early"));
  CHECK(contains(run.out, "      20    1.0000"));
  CHECK(contains(run.out, "      20   -1.0000"));
  CHECK(contains(run.out, "CBDir total"));
  CHECK(contains(run.out, "ICCoh total"));
  CHECK(dir.listing() == std::vector<std::string>{"result.h5ad"});
  CHECK(evaluate({"--help"}).exit_code == 0);
}

TEST_CASE("cli evaluate: -o stores the scores in uns pyrovelocity_evaluation of a copy") {
  const pv_test::TempDir dir;
  const std::string path = write_result(dir), output = dir.file("evaluated.h5ad");
  const Outcome run = evaluate({path, "--transitions", "Early>Late stage,Late stage>Early", "-o", output});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  const pv::io::AnnData copy = pv::io::read_h5ad(output);
  const pv::io::UnsValue& evaluation = member(copy.uns, "pyrovelocity_evaluation");
  const pv::io::UnsValue& cbdir = member(evaluation, "cbdir");
  CHECK(member(cbdir, "Early -> Late stage").number == doctest::Approx(1));
  CHECK(member(cbdir, "Late stage -> Early").number == doctest::Approx(-1));
  CHECK(member(evaluation, "cbdir_total").number == doctest::Approx(0));
  const pv::io::UnsValue& iccoh = member(evaluation, "iccoh");
  CHECK(member(iccoh, "Early").number == doctest::Approx(1));
  CHECK(member(iccoh, "Late stage").number == doctest::Approx(1));
  CHECK(member(evaluation, "iccoh_total").number == doctest::Approx(1));
  // The rest of the input is copied.
  CHECK(copy.obsm.count("velocity_pyro_umap") == 1);
  CHECK(pv::io::read_dense_layer(output, "velocity_pyro").values.size() == size_t(kCells * kGenes));
}

TEST_CASE("cli evaluate: missing keys and unknown clusters give one-line errors naming them") {
  const pv_test::TempDir dir;
  const std::string path = write_result(dir);
  const std::string edges = "Early>Late stage";
  struct Case {
    std::vector<std::string> args;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {{path, "--transitions", edges, "--cluster-key", "leiden"}, "'leiden'"},
      {{path, "--transitions", edges, "--basis", "tsne"}, "X_tsne"},
      {{path, "--transitions", edges, "--basis", "pca"}, "velocity_pyro_pca"},
      {{path, "--transitions", edges, "--velocity-key", "velocity"}, "layers/velocity"},
      {{path, "--transitions", "Early>Ghost"}, "'Ghost'"},
      {{path, "--transitions", "pancreas"}, "'Ductal'"},
      {{path}, "--transitions"},
      {{dir.file("absent.h5ad"), "--transitions", edges}, "absent.h5ad"},
  };
  for (const Case& c : cases) {
    INFO("expecting: " << c.fragment);
    const Outcome run = evaluate(c.args);
    CHECK(run.exit_code == 1);
    CHECK_MESSAGE(contains(run.err, c.fragment), run.err);
    CHECK(line_count(run.err) == 1);
  }
  CHECK(dir.listing() == std::vector<std::string>{"result.h5ad"});
}

#endif  // PV_HDF5

// The pvengine command as a user runs it: the built binary (PV_CLI) in a shell, its exit code,
// stdout and stderr, and the files it writes, read back with the io library and raw libhdf5.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "io/model_file.h"
#include "pv_build_config.h"
#include "cli_runner.h"
#include "test_h5ad_support.h"

namespace {

using pv_test::Outcome;

// Runs `pvengine args...`.
Outcome pvengine(const std::vector<std::string>& args) { return pv_test::run_program(PV_CLI, args); }

bool contains(const std::string& text, const std::string& fragment) { return text.find(fragment) != std::string::npos; }

int64_t line_count(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

}  // namespace

TEST_CASE("cli: --help of the command and of every subcommand prints usage and exits 0") {
  const Outcome top = pvengine({"--help"});
  CHECK(top.exit_code == 0);
  CHECK(contains(top.out, "usage: pvengine <command>"));
  CHECK(top.err.empty());
  for (const char* command : {"info", "selfcheck", "inspect", "simulate", "fit"}) {
    INFO("command: " << command);
    CHECK(contains(top.out, std::string("  ") + command + " "));
    const Outcome help = pvengine({command, "--help"});
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, std::string("usage: pvengine ") + command));
    CHECK_MESSAGE(help.err.empty(), help.err);
  }
  const Outcome fit_help = pvengine({"fit", "-h"});
  CHECK(fit_help.exit_code == 0);
  CHECK(contains(fit_help.out, "--posterior-out"));
}

#if PV_HDF5

namespace {

// Element-wise identity of the bit patterns (the same seed must give the same numbers, not
// merely close ones).
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_counts(const pv::io::CountMatrix& a, const pv::io::CountMatrix& b) {
  return a.rows == b.rows && a.cols == b.cols && a.sparse == b.sparse && same_bits(a.indptr, b.indptr) &&
         same_bits(a.indices, b.indices) && same_bits(a.data, b.data) && same_bits(a.dense, b.dense);
}

const std::vector<double>& numeric_column(const pv::io::DataFrame& frame, const std::string& name) {
  const pv::io::Column* column = frame.find(name);
  REQUIRE_MESSAGE(column != nullptr, "no column " << name);
  REQUIRE(column->kind == pv::io::Column::Kind::kNumeric);
  return column->numeric;
}

bool all_finite(const std::vector<double>& values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

// A float32 dataset of an HDF5 file, read with raw libhdf5 (independent of the io library).
std::vector<float> read_floats(const std::string& path, const std::string& name, std::vector<hsize_t>* dims) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE_MESSAGE(file >= 0, "cannot open " << path);
  const hid_t set = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  REQUIRE_MESSAGE(set >= 0, path << " has no dataset " << name);
  const hid_t space = H5Dget_space(set);
  dims->assign(static_cast<size_t>(H5Sget_simple_extent_ndims(space)), 0);
  H5Sget_simple_extent_dims(space, dims->data(), nullptr);
  std::vector<float> values(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  const herr_t read = H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Sclose(space);
  H5Dclose(set);
  H5Fclose(file);
  REQUIRE(read >= 0);
  return values;
}

// Per-element mean and sample sd (ddof 1) over the first axis of an (S, n) array.
void mean_and_sd(const std::vector<float>& samples, size_t s, std::vector<double>* mean, std::vector<double>* sd) {
  const size_t n = samples.size() / s;
  mean->assign(n, 0.0);
  sd->assign(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < s; ++k) (*mean)[i] += samples[k * n + i] / double(s);
    for (size_t k = 0; k < s; ++k) (*sd)[i] += std::pow(samples[k * n + i] - (*mean)[i], 2) / double(s - 1);
    (*sd)[i] = std::sqrt((*sd)[i]);
  }
}

bool close(double a, double b, double tolerance) { return std::fabs(a - b) <= tolerance * (1.0 + std::fabs(b)); }

std::string simulate(const pv_test::TempDir& dir, const std::string& name, int seed) {
  const std::string path = dir.file(name);
  const Outcome run =
      pvengine({"simulate", "--cells", "120", "--genes", "15", "--seed", std::to_string(seed), "-o", path});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  CHECK(contains(run.out, "120 cells x 15 genes"));
  return path;
}

}  // namespace

TEST_CASE("cli: simulate gives the same data for the same seed, bit for bit, and other data for another") {
  pv_test::TempDir dir;
  const pv::io::AnnData a = pv::io::read_h5ad(simulate(dir, "a.h5ad", 4));
  const pv::io::AnnData b = pv::io::read_h5ad(simulate(dir, "b.h5ad", 4));
  const pv::io::AnnData c = pv::io::read_h5ad(simulate(dir, "c.h5ad", 5));

  for (const char* layer : {"spliced", "unspliced"}) {
    INFO("layer: " << layer);
    const pv::io::CountMatrix& m = a.layers.at(layer);
    CHECK(m.rows == 120);
    CHECK(m.cols == 15);
    CHECK(m.sparse);
    CHECK(m.nnz() > 0);
    CHECK(same_counts(m, b.layers.at(layer)));
    CHECK_FALSE(same_counts(m, c.layers.at(layer)));
  }
  CHECK(a.obs.index == b.obs.index);
  CHECK(a.var.index == b.var.index);
  const std::vector<double>& true_t = numeric_column(a.obs, "true_t");
  CHECK(true_t.size() == 120);
  CHECK(same_bits(true_t, numeric_column(b.obs, "true_t")));
  CHECK_FALSE(same_bits(true_t, numeric_column(c.obs, "true_t")));

  int truth_columns = 0;
  for (const pv::io::Column& column : a.var.columns) {
    if (column.name.rfind("true_", 0) != 0) continue;
    CAPTURE(column.name);
    ++truth_columns;
    CHECK(column.numeric.size() == 15);
    CHECK(same_bits(column.numeric, numeric_column(b.var, column.name)));
    CHECK_FALSE(same_bits(column.numeric, numeric_column(c.var, column.name)));
  }
  CHECK(truth_columns >= 7);  // alpha, beta, gamma, t0, dt_switching, switching, u_scale
}

TEST_CASE("cli: fit writes its results into a copy, the model and the samples, and leaves the input untouched") {
  pv_test::TempDir dir;
  const std::string input = simulate(dir, "a.h5ad", 4);
  const std::string output = dir.file("out.h5ad"), model = dir.file("m.h5"), samples = dir.file("p.h5");
  const std::string input_bytes = pv_test::file_bytes(input);
  const Outcome run = pvengine({"fit", input, "-o", output, "--epochs", "40", "--samples", "5", "--save-model", model,
                                "--posterior-out", samples, "--quiet"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  CHECK_MESSAGE(run.err.empty(), run.err);
  CHECK(pv_test::file_bytes(input) == input_bytes);
  REQUIRE(std::filesystem::exists(output));
  CHECK(std::filesystem::exists(model));
  CHECK(std::filesystem::exists(samples));
  std::vector<std::string> names = dir.listing();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a.h5ad", "m.h5", "out.h5ad", "p.h5"});  // no temporary left behind

  const pv::io::AnnData in = pv::io::read_h5ad(input);
  const pv::io::AnnData out = pv::io::read_h5ad(output);
  CHECK(same_counts(out.layers.at("spliced"), in.layers.at("spliced")));
  CHECK(same_bits(numeric_column(out.obs, "true_t"), numeric_column(in.obs, "true_t")));

  // The summaries are the mean and sample sd of the samples written with --posterior-out.
  std::vector<hsize_t> dims;
  std::vector<double> mean, sd;
  const std::vector<float> cell_time = read_floats(samples, "cell_time", &dims);
  CHECK(dims == std::vector<hsize_t>{5, 120, 1});
  mean_and_sd(cell_time, 5, &mean, &sd);
  const std::vector<double>& time_mean = numeric_column(out.obs, "cell_time_pyro");
  const std::vector<double>& time_sd = numeric_column(out.obs, "cell_time_pyro_std");
  REQUIRE(time_mean.size() == 120);
  REQUIRE(time_sd.size() == 120);
  CHECK(all_finite(time_mean));
  CHECK(all_finite(time_sd));
  for (size_t c = 0; c < 120; ++c) {
    CHECK(close(time_mean[c], mean[c], 1e-5));
    CHECK(close(time_sd[c], sd[c], 1e-4));
  }
  for (const char* site : {"alpha", "beta", "gamma", "t0", "switching"}) {
    INFO("site: " << site);
    const std::vector<double>& site_mean = numeric_column(out.var, std::string(site) + "_pyro");
    const std::vector<double>& site_sd = numeric_column(out.var, std::string(site) + "_pyro_std");
    REQUIRE(site_mean.size() == 15);
    REQUIRE(site_sd.size() == 15);
    CHECK(all_finite(site_mean));
    CHECK(all_finite(site_sd));
    const std::vector<float> draws = read_floats(samples, site, &dims);
    CHECK(dims == std::vector<hsize_t>{5, 1, 15});
    mean_and_sd(draws, 5, &mean, &sd);
    for (size_t g = 0; g < 15; ++g) {
      CHECK(close(site_mean[g], mean[g], 1e-5));
      CHECK(close(site_sd[g], sd[g], 1e-4));
    }
  }

  // Dense float32 layers of cells x genes; velocity = mean over samples of beta ut / u_scale - gamma st.
  const pv::io::H5adSummary summary = pv::io::describe_h5ad(output);
  for (const char* layer : {"velocity_pyro", "ut_pyro", "st_pyro"}) {
    INFO("layer: " << layer);
    const auto found = std::find_if(summary.layers.begin(), summary.layers.end(),
                                    [&](const pv::io::ElementSummary& e) { return e.name == layer; });
    REQUIRE(found != summary.layers.end());
    CHECK(found->encoding == "array");
    CHECK(found->dtype == "float32");
    CHECK(found->shape == std::vector<int64_t>{120, 15});
  }
  const std::vector<float> velocity = read_floats(output, "layers/velocity_pyro", &dims);
  const std::vector<float> ut_mean = read_floats(output, "layers/ut_pyro", &dims);
  const std::vector<float> ut = read_floats(samples, "ut", &dims);
  CHECK(dims == std::vector<hsize_t>{5, 120, 15});
  const std::vector<float> st = read_floats(samples, "st", &dims);
  const std::vector<float> beta = read_floats(samples, "beta", &dims);
  const std::vector<float> gamma = read_floats(samples, "gamma", &dims);
  const std::vector<float> u_scale = read_floats(samples, "u_scale", &dims);
  int64_t nonzero = 0;
  for (size_t i = 0; i < 120 * 15; ++i) {
    const size_t g = i % 15;
    double expected_velocity = 0, expected_ut = 0, scale = 0;
    for (size_t s = 0; s < 5; ++s) {
      const double spliced_term = gamma[s * 15 + g] * st[s * 1800 + i];
      const double unspliced_term = beta[s * 15 + g] * ut[s * 1800 + i] / u_scale[s * 15 + g];
      expected_velocity += (unspliced_term - spliced_term) / 5;
      expected_ut += ut[s * 1800 + i] / 5;
      scale = std::max({scale, std::fabs(spliced_term), std::fabs(unspliced_term)});
    }
    CHECK(std::isfinite(velocity[i]));
    CHECK(std::fabs(velocity[i] - expected_velocity) <= 1e-4 * (1 + scale));
    CHECK(close(ut_mean[i], expected_ut, 1e-4));
    nonzero += velocity[i] != 0;
  }
  CHECK(nonzero > 0);

  const pv::io::SavedModel saved = pv::io::load_model_file(model);
  CHECK(saved.genes == in.var.index);
  CHECK(saved.loss_history.size() == 40);
}

TEST_CASE("cli: fit refuses bad input with one line on stderr and writes nothing") {
  pv_test::TempDir dir;
  const std::string input = simulate(dir, "in.h5ad", 4);
  const std::string text = dir.file("notes.txt");
  pv_test::write_bytes(text, "cells,genes\n1,2\n");
  const std::string output = dir.file("out.h5ad");
  const std::string input_bytes = pv_test::file_bytes(input);
  std::vector<std::string> before = dir.listing();
  std::sort(before.begin(), before.end());

  struct Case {
    std::vector<std::string> args;
    std::string fragment;
  };
  // Small runs, so that a check the command makes late (after training) still ends quickly; the
  // case's own options come after these and override them.
  const std::vector<std::string> quick = {"--epochs", "5", "--samples", "2", "--quiet"};
  std::vector<Case> cases = {
      {{input, "-o", output, "--likelihood", "Gaussian"}, "likelihood 'Gaussian'"},
      {{input, "-o", output, "--epochs", "0"}, "--epochs must be > 0"},
      {{input, "-o", output, "--batch-size", "500"}, "larger than the number of cells (120)"},
      {{input, "-o", output, "--samples", "0"}, "--samples must be > 0"},
      {{input, "-o", input}, "is the input file"},
      {{dir.file("missing.h5ad"), "-o", output}, "no such file"},
      {{text, "-o", output}, "not an HDF5 file"},
      {{input, "-o", output, "--model", "model3"}, "'model3'"},
      {{input, "-o", output, "--no-such-option", "1"}, "unknown option '--no-such-option'"},
      {{input}, "output path is required"},
  };
  if (pv::cuda_device_count() == 0) {
    cases.push_back({{input, "-o", output, "--device", "cuda"}, "CUDA"});
  } else {
    MESSAGE("a CUDA device is present: --device cuda is not a refusal here");
  }

  for (const Case& c : cases) {
    std::vector<std::string> args = {"fit"};
    args.insert(args.end(), quick.begin(), quick.end());
    args.insert(args.end(), c.args.begin(), c.args.end());
    std::string shown;
    for (const std::string& a : args) shown += a + " ";
    CAPTURE(shown);
    const Outcome run = pvengine(args);
    CHECK(run.exit_code != 0);
    CHECK_MESSAGE(line_count(run.err) == 1, run.err);
    CHECK_MESSAGE(contains(run.err, c.fragment), run.err);
    CHECK_MESSAGE(contains(run.err, "pvengine fit: error: "), run.err);
    CHECK_FALSE(std::filesystem::exists(output));
    std::vector<std::string> after = dir.listing();
    std::sort(after.begin(), after.end());
    CHECK(after == before);
    CHECK(pv_test::file_bytes(input) == input_bytes);
  }
}

// fit --help promises "IN is not modified"; the side outputs must not get around that, nor write
// over the main output.
TEST_CASE("cli: fit refuses --save-model or --posterior-out onto its input or its output") {
  pv_test::TempDir dir;
  const std::string input = simulate(dir, "in.h5ad", 4);
  const std::string output = dir.file("out.h5ad");
  const std::string input_bytes = pv_test::file_bytes(input);
  for (const std::string& side : std::vector<std::string>{"--save-model", "--posterior-out"}) {
    for (const std::string& target : {input, output}) {
      CAPTURE(side);
      CAPTURE(target);
      const Outcome run =
          pvengine({"fit", input, "-o", output, "--epochs", "5", "--samples", "2", "--quiet", side, target});
      CHECK(run.exit_code != 0);
      CHECK_MESSAGE(line_count(run.err) == 1, run.err);
      CHECK(pv_test::file_bytes(input) == input_bytes);
      CHECK_FALSE(std::filesystem::exists(output));
      pv_test::write_bytes(input, input_bytes);  // keep the cases independent when one fails
      std::filesystem::remove(output);
    }
  }
}

TEST_CASE("cli: inspect reports the raw integer counts of a simulated file") {
  pv_test::TempDir dir;
  const std::string input = simulate(dir, "a.h5ad", 4);
  const Outcome run = pvengine({"inspect", input});
  CHECK(run.exit_code == 0);
  CHECK(run.err.empty());
  CHECK(contains(run.out, "120 cells x 15 genes"));
  CHECK(contains(run.out, "raw integer counts: yes"));
  CHECK_FALSE(contains(run.out, "raw integer counts: NO"));
  CHECK(contains(run.out, "true_t"));
}

#else  // !PV_HDF5

TEST_CASE("cli: without HDF5, simulate says so in one line and exits non-zero") {
  pv_test::TempDir dir;
  const Outcome run = pvengine({"simulate", "--cells", "10", "--genes", "3", "-o", dir.file("a.h5ad")});
  CHECK(run.exit_code != 0);
  CHECK(line_count(run.err) == 1);
  CHECK(contains(run.err, "HDF5"));
  CHECK_FALSE(std::filesystem::exists(dir.file("a.h5ad")));
}

#endif  // PV_HDF5

TEST_CASE("cli: fit adds the posterior statistics; --no-stats leaves them out; a missing basis is refused") {
  pv_test::TempDir dir;
  const std::string input = simulate(dir, "a.h5ad", 6);
  const std::string output = dir.file("out.h5ad"), samples = dir.file("p.h5");
  const Outcome run = pvengine({"fit", input, "-o", output, "--epochs", "30", "--samples", "6", "--posterior-out", samples, "--quiet"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  const pv::io::AnnData out = pv::io::read_h5ad(output);
  const auto field = out.obsm.find("velocity_pyro_umap");
  REQUIRE(field != out.obsm.end());
  CHECK(field->second.rows == 120);
  CHECK(field->second.cols == 2);
  int64_t finite_rows = 0;
  for (int64_t c = 0; c < 120; ++c) finite_rows += std::isfinite(field->second.values[2 * c]) && std::isfinite(field->second.values[2 * c + 1]);
  CHECK(finite_rows == 120);
  for (double q : numeric_column(out.obs, "fdri_pyro")) CHECK((q >= 0 && q <= 1));  // defined for every cell
  for (double f : numeric_column(out.obs, "velocity_confidence_pyro")) CHECK((f >= 0 && f <= 1));
  for (double m : numeric_column(out.obs, "embeds_magnitude_pyro")) CHECK((std::isfinite(m) && m >= 0));
  CHECK(numeric_column(out.var, "mean_mae_pyro").size() == 15);
  for (double r : numeric_column(out.var, "time_correlation_pyro")) CHECK((r >= -1 && r <= 1));
  std::vector<hsize_t> dims;
  const std::vector<float> per_sample = read_floats(samples, "vector_field_posterior_samples", &dims);
  CHECK(dims == std::vector<hsize_t>{6, 120, 2});
  read_floats(samples, "fdri", &dims);
  CHECK(dims == std::vector<hsize_t>{120});

  // The kNN graph as scanpy stores it: obsp distances (29 per row) and symmetric UMAP connectivities.
  const std::vector<float> indptr = read_floats(output, "obsp/connectivities/indptr", &dims);
  const std::vector<float> indices = read_floats(output, "obsp/connectivities/indices", &dims);
  const std::vector<float> weights = read_floats(output, "obsp/connectivities/data", &dims);
  REQUIRE(indptr.size() == 121);
  std::vector<double> dense(120 * 120, 0.0);
  for (int c = 0; c < 120; ++c) {
    CHECK(indptr[c + 1] - indptr[c] >= 29);
    for (int e = int(indptr[c]); e < int(indptr[c + 1]); ++e) {
      CHECK((weights[e] > 0 && weights[e] <= 1));
      dense[size_t(c * 120 + int(indices[e]))] = weights[e];
    }
  }
  for (int i = 0; i < 120; ++i) {
    CHECK(dense[size_t(i * 120 + i)] == 0.0);
    for (int j = 0; j < i; ++j) CHECK(dense[size_t(i * 120 + j)] == dense[size_t(j * 120 + i)]);
  }
  const std::vector<float> distance_ptr = read_floats(output, "obsp/distances/indptr", &dims);
  CHECK(distance_ptr.back() == 120 * 29);
  const pv::io::UnsValue& neighbours = out.uns.dict.at("neighbors");
  CHECK(neighbours.dict.at("params").dict.at("n_neighbors").integer == 30);
  CHECK(neighbours.dict.at("connectivities_key").string == "connectivities");
  // A graph already in the input (here a ring, unlike any kNN graph) is kept as it is.
  pv::io::Additions ring;
  pv::io::CountMatrix& graph = ring.obsp["connectivities"];
  graph.rows = graph.cols = 120;
  graph.sparse = true;
  graph.indptr.push_back(0);
  for (int c = 0; c < 120; ++c) {
    graph.indices.push_back((c + 1) % 120);
    graph.data.push_back(0.5f);
    graph.indptr.push_back(c + 1);
  }
  pv::io::write_h5ad_with_additions(input, dir.file("ring.h5ad"), ring);
  const Outcome again = pvengine({"fit", dir.file("ring.h5ad"), "-o", dir.file("again.h5ad"), "--epochs", "5", "--samples", "2", "--quiet"});
  REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  CHECK(read_floats(dir.file("again.h5ad"), "obsp/connectivities/data", &dims) == std::vector<float>(120, 0.5f));

  const Outcome bare = pvengine({"fit", input, "-o", dir.file("bare.h5ad"), "--epochs", "5", "--samples", "2", "--no-stats", "--quiet"});
  REQUIRE_MESSAGE(bare.exit_code == 0, bare.err);
  const pv::io::AnnData plain = pv::io::read_h5ad(dir.file("bare.h5ad"));
  CHECK(plain.obsm.count("velocity_pyro_umap") == 0);
  CHECK(plain.obs.find("fdri_pyro") == nullptr);

  const Outcome bad = pvengine({"fit", input, "-o", dir.file("x.h5ad"), "--epochs", "5", "--basis", "tsne", "--quiet"});
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("X_tsne") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("x.h5ad")));
}

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/pca.h"
#include "engine/simulator.h"
#include "kernels/philox.h"
#include "kernels/sampling.h"
#if defined(_OPENMP)
#include <omp.h>
#endif

TEST_CASE("Poisson sampler: mean and variance on both of its paths, and determinism") {
  for (double rate : {0.3, 4.0, 9.9, 10.0, 57.0, 2500.0}) {
    const int n = 200000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
      pv::CounterStream rng(99, 7, uint64_t(i));
      const double k = pv::sample_poisson(rate, rng);
      REQUIRE(k == std::floor(k));
      REQUIRE(k >= 0);
      sum += k;
      sum2 += k * k;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    CAPTURE(rate);
    CHECK(std::fabs(mean - rate) < 5 * std::sqrt(rate / n));
    CHECK(std::fabs(var / rate - 1.0) < 0.02);
  }
  pv::CounterStream a(5, 1, 2), b(5, 1, 2);
  CHECK(pv::sample_poisson(123.4, a) == pv::sample_poisson(123.4, b));
  CHECK(pv::sample_poisson(0.0, a) == 0.0);
}

TEST_CASE("PCA recovers the leading eigenvalues of the covariance") {
  // A 60 x 8 sparse-ish matrix with a clear low-rank structure plus noise.
  const int64_t rows = 60, cols = 8;
  std::vector<int64_t> indptr = {0};
  std::vector<int32_t> indices;
  std::vector<float> values;
  std::vector<double> dense(rows * cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double v = (c < 4 ? 3.0 : -1.0) * std::sin(0.3 * double(r)) + (c % 2 ? 2.0 : 0.5) * std::cos(0.11 * double(r * r)) +
                       0.2 * pv::normal_at(1, 2, uint64_t(r * cols + c));
      if (std::fabs(v) > 0.4) {
        indices.push_back(int32_t(c));
        values.push_back(float(v));
        dense[r * cols + c] = double(float(v));
      }
    }
    indptr.push_back(int64_t(indices.size()));
  }
  const pv::PcaResult p = pv::pca({rows, cols, indptr.data(), indices.data(), values.data()}, 3, 20, 0);
  // Reference: eigen-decomposition of the dense covariance.
  std::vector<double> mean(cols, 0.0), cov(cols * cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) mean[c] += dense[r * cols + c] / rows;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t a = 0; a < cols; ++a)
      for (int64_t b = 0; b < cols; ++b)
        cov[a * cols + b] += (dense[r * cols + a] - mean[a]) * (dense[r * cols + b] - mean[b]) / (rows - 1);
  std::vector<double> eigenvalues, eigenvectors;
  pv::symmetric_eigen(cols, cov, &eigenvalues, &eigenvectors);
  for (int k = 0; k < 3; ++k) {
    CAPTURE(k);
    CHECK(p.variance[k] == doctest::Approx(eigenvalues[k]).epsilon(1e-8));
    // Scores have the component's variance.
    double s2 = 0, s = 0;
    for (int64_t r = 0; r < rows; ++r) {
      s += p.scores[r * 3 + k];
      s2 += p.scores[r * 3 + k] * p.scores[r * 3 + k];
    }
    CHECK(std::fabs(s) < 1e-8);
    CHECK(s2 / (rows - 1) == doctest::Approx(eigenvalues[k]).epsilon(1e-8));
  }
}

TEST_CASE("simulate: shapes, ground truth, raw integer counts, realistic depth") {
  pv::SimulationOptions o;
  o.cells = 300;
  o.genes = 40;
  o.seed = 3;
  const pv::io::AnnData d = pv::simulate(o);
  const auto& s = d.layers.at("spliced");
  const auto& u = d.layers.at("unspliced");
  CHECK(s.rows == 300);
  CHECK(s.cols == 40);
  CHECK(s.sparse);
  CHECK(u.indptr.size() == 301);
  double total_s = 0;
  for (float v : s.data) {
    REQUIRE(v > 0);
    REQUIRE(v == std::floor(v));
    total_s += v;
  }
  CHECK(total_s / (300.0 * 40.0) == doctest::Approx(o.mean_spliced).epsilon(0.15));
  CHECK(d.obs.index.size() == 300);
  CHECK(d.var.index.size() == 40);
  for (const char* name : {"true_alpha", "true_beta", "true_gamma", "true_t0", "true_switching", "true_dt_switching"}) {
    bool found = false;
    for (const auto& c : d.var.columns) found |= c.name == name && c.numeric.size() == 40;
    CHECK_MESSAGE(found, name);
  }
  bool has_t = false;
  for (const auto& c : d.obs.columns) has_t |= c.name == "true_t" && c.numeric.size() == 300;
  CHECK(has_t);
  CHECK(d.obsm.at("X_umap").cols == 2);
  CHECK(d.obsm.at("X_umap").rows == 300);
  CHECK(d.obsm.at("X_pca").cols == 10);
  CHECK(d.X != nullptr);
}

TEST_CASE("simulate: the same seed gives the same data whatever the thread count") {
  pv::SimulationOptions o;
  o.cells = 257;
  o.genes = 33;
  o.seed = 11;
#if defined(_OPENMP)
  omp_set_num_threads(1);
#endif
  const pv::io::AnnData a = pv::simulate(o);
#if defined(_OPENMP)
  omp_set_num_threads(2);
#endif
  const pv::io::AnnData b = pv::simulate(o);
  CHECK(a.layers.at("spliced").data == b.layers.at("spliced").data);
  CHECK(a.layers.at("unspliced").indices == b.layers.at("unspliced").indices);
  CHECK(a.obsm.at("X_pca").values == b.obsm.at("X_pca").values);
  o.seed = 12;
  const pv::io::AnnData c = pv::simulate(o);
  CHECK(a.layers.at("spliced").data != c.layers.at("spliced").data);
}

TEST_CASE("simulate: impossible options are refused") {
  pv::SimulationOptions o;
  o.cells = 0;
  CHECK_THROWS_AS(pv::simulate(o), pv::Error);
  o = {};
  o.mean_spliced = -1;
  CHECK_THROWS_AS(pv::simulate(o), pv::Error);
}

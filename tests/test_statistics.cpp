// Posterior statistics (engine/statistics.h): Rayleigh and Benjamini-Hochberg against values worked
// out by hand, kNN against a brute force written here, and the velocity graph, embedded velocity
// and PCA projection against the independent numpy oracle (tests/oracle/statistics_oracle.py).
#include <doctest/doctest.h>

#include "tests/oracle_file.h"
#include "tests/simulated_data.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/posterior.h"
#include "engine/simulator.h"
#include "engine/statistics.h"
#include "kernels/projection.h"

namespace {

constexpr double kPi = 3.14159265358979323846;

const pv_test::Golden& oracle() {
  static const pv_test::Golden golden = pv_test::read_oracle("tests/oracle/statistics_oracle.txt");
  return golden;
}

const std::vector<double>& at(const std::string& name) { return pv_test::oracle_at(oracle(), name); }

int64_t scalar(const std::string& name) { return int64_t(at(name)[0]); }

std::vector<float> as_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

double degrees(double d) { return d * kPi / 180.0; }

}  // namespace

TEST_CASE("statistics: transition weights: e^x - 1 to a few ulp of expm1, from 1e-300 to 700") {
  double worst = 0;
  auto check = [&](double x) {
    const double exact = std::expm1(x), got = pv::exp_minus_one(x);
    if (exact > 0) worst = std::max(worst, std::abs(got - exact) / exact);
    else CHECK(got == 0);
  };
  for (double x = 0; x <= 10; x += 1.0 / 1024) check(x);  // the weights' range (|pi| <= 1, scale 10)
  for (double x = 0.3; x <= 0.4; x += 1.0 / 65536) check(x);  // around ln2/2, where n first becomes 1
  for (double x = 1e-300; x < 1; x *= 1.37) check(x);
  for (double x = 10; x <= 700; x += 0.37) check(x);
  CHECK(worst < 4 * std::numeric_limits<double>::epsilon());
  CHECK(pv::exp_minus_one(1e-300) == 1e-300);  // no cancellation near 0
  CHECK(pv::transition_weight(-0.3) == -pv::transition_weight(0.3));
  CHECK(pv::transition_weight(0.3) == doctest::Approx(std::expm1(3.0)).epsilon(1e-15));
}

TEST_CASE("statistics: rayleigh_p_value: astropy's value, the small-sample correction and the n >= 50 branch") {
  const std::vector<double> angles = {degrees(130), degrees(90), degrees(0), degrees(145)};
  CHECK(pv::rayleigh_p_value(angles.data(), 4) == doctest::Approx(0.2563487733797317).epsilon(1e-12));

  // n = 50, half at 0 and half at pi/2: C = S = 1/2, R^2 = 1/2, z = 25, no correction: p = e^-25.
  std::vector<double> two_directions(50);
  for (size_t i = 0; i < two_directions.size(); ++i) two_directions[i] = i % 2 ? kPi / 2 : 0.0;
  CHECK(pv::rayleigh_p_value(two_directions.data(), 50) == doctest::Approx(std::exp(-25.0)).epsilon(1e-12));
  // n = 48 of the same: z = 24, t = 1 + (48 - 576)/192 - (576 - 76032 + 1050624 - 2985984)/(288 * 2304)
  //                          = 1 - 2.75 + 2011392/663552 = 1.28125 (exactly 3.03125 - 1.75).
  CHECK(pv::rayleigh_p_value(two_directions.data(), 48) ==
        doctest::Approx(std::exp(-24.0) * (1.0 - 2.75 + 2011392.0 / 663552.0)).epsilon(1e-12));

  // Equally spaced angles: R = 0, so p = 1 whatever n.
  for (const int64_t n : {12, 60}) {
    std::vector<double> uniform(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) uniform[i] = 2 * kPi * double(i) / double(n);
    CHECK(pv::rayleigh_p_value(uniform.data(), n) == doctest::Approx(1.0).epsilon(1e-12));
  }

  // The oracle's random angle sets (n = 3 ... 120, incl. 49 and 50).
  const std::vector<double>& expected = at("rayleigh");
  for (size_t s = 0; s < expected.size(); ++s) {
    const std::vector<double>& a = at("angles." + std::to_string(s));
    CHECK(pv::rayleigh_p_value(a.data(), int64_t(a.size())) == doctest::Approx(expected[s]).epsilon(1e-12));
  }

  CHECK_THROWS_AS(pv::rayleigh_p_value(angles.data(), 0), pv::Error);
}

TEST_CASE("statistics: benjamini_hochberg: hand-computed values with ties, the cap at 1 and the original order") {
  // m = 6; sorted 0.01, 0.03, 0.04, 0.04, 0.5, 0.9 -> (m/l) p = 0.06, 0.09, 0.08, 0.06, 0.6, 0.9;
  // running minimum from the end: 0.06, 0.06, 0.06, 0.06, 0.6, 0.9; back to the input order.
  const std::vector<double> q = pv::benjamini_hochberg({0.01, 0.04, 0.03, 0.04, 0.9, 0.5});
  const std::vector<double> expected = {0.06, 0.06, 0.06, 0.06, 0.9, 0.6};
  REQUIRE(q.size() == expected.size());
  for (size_t i = 0; i < q.size(); ++i) CHECK(q[i] == doctest::Approx(expected[i]).epsilon(1e-14));

  // Uncapped values above 1 (the Rayleigh p is not clipped): sorted 0.5, 1.2 -> 1.0, 1.2 -> min 1.0, 1.2
  // -> capped 1, 1.
  const std::vector<double> capped = pv::benjamini_hochberg({1.2, 0.5});
  CHECK(capped[0] == 1.0);
  CHECK(capped[1] == 1.0);

  // The oracle's case (Rayleigh values, ties at 0.2, a 1.3).
  const std::vector<double> oracle_q = pv::benjamini_hochberg(at("bh_input"));
  const std::vector<double>& oracle_expected = at("bh");
  REQUIRE(oracle_q.size() == oracle_expected.size());
  for (size_t i = 0; i < oracle_q.size(); ++i) CHECK(oracle_q[i] == doctest::Approx(oracle_expected[i]).epsilon(1e-12));

  CHECK(pv::benjamini_hochberg({}).empty());
  CHECK_THROWS_AS(pv::benjamini_hochberg({0.1, std::nan("")}), pv::Error);
}

TEST_CASE("statistics: knn_graph: exact neighbours against brute force, self first, ties by index") {
  // A 7 x 6 grid in 2-D with spacing 1 has many equal distances; plus a duplicate of cell 0.
  std::vector<double> points;
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 7; ++c) points.push_back(c), points.push_back(0.5 * r * r);
  points.push_back(points[0]), points.push_back(points[1]);
  const int64_t cells = int64_t(points.size() / 2), k = 9;
  const pv::Knn knn = pv::knn_graph(points.data(), cells, 2, k);
  REQUIRE(knn.cells == cells);
  REQUIRE(knn.k == k);
  for (int64_t i = 0; i < cells; ++i) {
    std::vector<std::pair<double, int64_t>> brute;
    for (int64_t j = 0; j < cells; ++j) {
      if (j == i) continue;
      const double dx = points[2 * j] - points[2 * i], dy = points[2 * j + 1] - points[2 * i + 1];
      brute.push_back({dx * dx + dy * dy, j});
    }
    std::sort(brute.begin(), brute.end());
    CHECK(knn.index[i * k] == i);
    CHECK(knn.distance[i * k] == 0.0);
    for (int64_t r = 1; r < k; ++r) {
      CHECK(knn.index[i * k + r] == brute[r - 1].second);
      CHECK(knn.distance[i * k + r] == doctest::Approx(std::sqrt(brute[r - 1].first)).epsilon(1e-15));
    }
  }
  // The duplicate of cell 0 is its nearest other cell, at distance 0, and vice versa.
  CHECK(knn.index[1] == cells - 1);
  CHECK(knn.index[(cells - 1) * k + 1] == 0);

  // And the oracle's kNN on its PCA scores.
  const int64_t C = scalar("C"), P = scalar("P"), K = scalar("K");
  const pv::Knn oracle_knn = pv::knn_graph(at("X_pca").data(), C, P, K);
  const std::vector<double>& index = at("knn_index");
  const std::vector<double>& distance = at("knn_distance");
  for (int64_t e = 0; e < C * K; ++e) {
    CHECK(oracle_knn.index[e] == int64_t(index[e]));
    CHECK(oracle_knn.distance[e] == doctest::Approx(distance[e]).epsilon(1e-12));
  }

  CHECK_THROWS_AS(pv::knn_graph(points.data(), cells, 2, cells + 1), pv::Error);
  CHECK_THROWS_AS(pv::knn_graph(points.data(), cells, 2, 0), pv::Error);
  // k = 1: each cell alone.
  const pv::Knn alone = pv::knn_graph(points.data(), cells, 2, 1);
  for (int64_t i = 0; i < cells; ++i) CHECK(alone.index[i] == i);
  // A NaN or infinite coordinate is refused by name, not sorted into the graph.
  std::vector<double> broken = points;
  broken[2 * 5 + 1] = std::nan("");
  CHECK_THROWS_WITH_AS(pv::knn_graph(broken.data(), cells, 2, 3), doctest::Contains("cell 5, column 1"), pv::Error);
  broken[2 * 5 + 1] = HUGE_VAL;
  CHECK_THROWS_AS(pv::knn_graph(broken.data(), cells, 2, 3), pv::Error);
}

TEST_CASE("statistics: knn_graph in 7 dimensions: the distances summed in column order, bit for bit") {
  const int64_t cells = 101, dims = 7, k = 12;  // 101: blocks of 32 cells plus a ragged end
  std::vector<double> x(size_t(cells * dims));
  for (size_t e = 0; e < x.size(); ++e) x[e] = std::sin(0.37 * double(e)) * (1 + double(e % 5));
  const pv::Knn knn = pv::knn_graph(x.data(), cells, dims, k);
  for (int64_t i = 0; i < cells; ++i) {
    std::vector<std::pair<double, int64_t>> brute;
    for (int64_t j = 0; j < cells; ++j) {
      if (j == i) continue;
      double squared = 0;
      for (int64_t d = 0; d < dims; ++d) squared += (x[j * dims + d] - x[i * dims + d]) * (x[j * dims + d] - x[i * dims + d]);
      brute.push_back({squared, j});
    }
    std::sort(brute.begin(), brute.end());
    for (int64_t r = 1; r < k; ++r) {
      CHECK(knn.index[i * k + r] == brute[r - 1].second);
      CHECK(knn.distance[i * k + r] == std::sqrt(brute[r - 1].first));
    }
  }
}

TEST_CASE("statistics: umap_connectivities matches the oracle; knn_distances is the kNN without self") {
  const int64_t C = scalar("C"), P = scalar("P"), K = scalar("K");
  const pv::Knn knn = pv::knn_graph(at("X_pca").data(), C, P, K);
  const pv::CellGraph graph = pv::umap_connectivities(knn);
  const std::vector<double>& expected = at("connectivities");  // dense C x C
  REQUIRE(graph.cells == C);
  REQUIRE(graph.indptr.size() == size_t(C + 1));
  std::vector<double> dense(size_t(C * C), 0.0);
  for (int64_t i = 0; i < C; ++i)
    for (int64_t e = graph.indptr[i]; e < graph.indptr[i + 1]; ++e) {
      if (e > graph.indptr[i]) CHECK(graph.indices[e] > graph.indices[e - 1]);  // ascending, no repeats
      CHECK(graph.values[e] > 0.0);
      dense[size_t(i * C + graph.indices[e])] = graph.values[e];
    }
  double worst = 0;
  int64_t stored = 0;
  for (int64_t i = 0; i < C; ++i)
    for (int64_t j = 0; j < C; ++j) {
      worst = std::max(worst, std::fabs(dense[size_t(i * C + j)] - expected[size_t(i * C + j)]));
      CHECK(dense[size_t(i * C + j)] == dense[size_t(j * C + i)]);  // symmetric
      if (expected[size_t(i * C + j)] != 0) ++stored;
    }
  MESSAGE("connectivities: largest difference from the oracle " << worst);
  CHECK(worst < 1e-5);  // umap's bisection stops within 1e-5 of log2(k)
  CHECK(int64_t(graph.values.size()) == stored);
  for (int64_t i = 0; i < C; ++i) CHECK(dense[size_t(i * C + i)] == 0.0);  // no self-loops

  const pv::CellGraph distances = pv::knn_distances(knn);
  REQUIRE(distances.indptr.back() == C * (K - 1));
  for (int64_t i = 0; i < C; ++i) {
    REQUIRE(distances.indptr[i + 1] - distances.indptr[i] == K - 1);
    for (int64_t e = distances.indptr[i]; e < distances.indptr[i + 1]; ++e) {
      const int64_t j = distances.indices[e];
      const auto* row = &knn.index[size_t(i * K)];
      const auto found = std::find(row + 1, row + K, j);
      REQUIRE(found != row + K);
      CHECK(distances.values[e] == knn.distance[size_t(i * K + (found - row))]);
    }
  }

  pv::Knn broken = knn;
  broken.index[3] = C;
  CHECK_THROWS_WITH_AS(pv::umap_connectivities(broken), doctest::Contains("outside [0, cells)"), pv::Error);
  broken = knn;
  broken.distance[5] = std::nan("");
  CHECK_THROWS_WITH_AS(pv::umap_connectivities(broken), doctest::Contains("not a finite non-negative distance"), pv::Error);
  broken = knn;
  broken.distance.pop_back();
  CHECK_THROWS_AS(pv::knn_distances(broken), pv::Error);
}

TEST_CASE("statistics: velocity_graph matches the oracle: candidates, cosines, self-transitions, sqrt option") {
  const int64_t C = scalar("C"), G = scalar("G"), P = scalar("P"), K = scalar("K");
  const std::vector<float> X = as_float(at("X")), V = as_float(at("V"));
  const pv::Knn knn = pv::knn_graph(at("X_pca").data(), C, P, K);

  for (const bool sqrt_transform : {false, true}) {
    CAPTURE(sqrt_transform);
    const pv::VelocityGraph graph = pv::velocity_graph(X.data(), V.data(), C, G, knn, sqrt_transform);
    const std::vector<double>& indptr = at("graph_indptr");
    const std::vector<double>& indices = at("graph_indices");
    const std::vector<double>& cosine = at(sqrt_transform ? "sqrt_graph_cosine" : "graph_cosine");
    const std::vector<double>& self = at(sqrt_transform ? "sqrt_self_transition" : "self_transition");
    REQUIRE(graph.cells == C);
    REQUIRE(graph.indptr.size() == indptr.size());
    for (size_t i = 0; i < indptr.size(); ++i) CHECK(graph.indptr[i] == int64_t(indptr[i]));
    REQUIRE(graph.indices.size() == indices.size());
    REQUIRE(graph.cosine.size() == cosine.size());
    for (size_t e = 0; e < indices.size(); ++e) {
      CHECK(graph.indices[e] == int64_t(indices[e]));
      CHECK(std::abs(graph.cosine[e] - cosine[e]) <= 1e-6);
    }
    REQUIRE(graph.self_transition.size() == self.size());
    for (size_t i = 0; i < self.size(); ++i) CHECK(std::abs(graph.self_transition[i] - self[i]) <= 1e-6);
  }

  // Zero and constant velocities (cells 3, 17, 25) give all-zero rows.
  const pv::VelocityGraph graph = pv::velocity_graph(X.data(), V.data(), C, G, knn);
  for (int64_t cell : {3, 17, 25})
    for (int64_t e = graph.indptr[cell]; e < graph.indptr[cell + 1]; ++e) CHECK(graph.cosine[e] == 0.0);

  pv::Knn broken = knn;
  broken.index[5] = C;
  CHECK_THROWS_AS(pv::velocity_graph(X.data(), V.data(), C, G, broken), pv::Error);
}

TEST_CASE("statistics: velocity_embedding matches the oracle: direction, norm, NaN rows, autoscale") {
  const int64_t C = scalar("C"), G = scalar("G"), P = scalar("P"), K = scalar("K");
  const std::vector<float> X = as_float(at("X")), V = as_float(at("V"));
  const pv::Knn knn = pv::knn_graph(at("X_pca").data(), C, P, K);
  const pv::VelocityGraph graph = pv::velocity_graph(X.data(), V.data(), C, G, knn);

  for (const bool autoscale : {true, false}) {
    CAPTURE(autoscale);
    const std::vector<double> embedded = pv::velocity_embedding(graph, at("embedding").data(), C, 2, autoscale);
    const std::vector<double>& expected = at(autoscale ? "embedded" : "embedded_raw");
    REQUIRE(embedded.size() == expected.size());
    int nan_rows = 0;
    for (int64_t i = 0; i < C; ++i) {
      CAPTURE(i);
      const double ox = expected[2 * i], oy = expected[2 * i + 1];
      const double ex = embedded[2 * i], ey = embedded[2 * i + 1];
      if (std::isnan(ox)) {
        ++nan_rows;
        CHECK(std::isnan(ex));
        CHECK(std::isnan(ey));
        continue;
      }
      const double oracle_norm = std::hypot(ox, oy), norm = std::hypot(ex, ey);
      REQUIRE(oracle_norm > 0);
      CHECK(std::abs(norm - oracle_norm) <= 1e-6 * oracle_norm);
      CHECK((ex * ox + ey * oy) / (norm * oracle_norm) >= 0.999);
    }
    // The three cells without a usable velocity (zero, zero, constant).
    CHECK(nan_rows == 3);
  }

  CHECK_THROWS_AS(pv::velocity_embedding(graph, at("embedding").data(), C + 1), pv::Error);
  CHECK_THROWS_AS(pv::velocity_embedding(graph, at("embedding").data(), C, 1, true), pv::Error);
}

TEST_CASE("statistics: direct_pca_projection matches the oracle") {
  const int64_t C = scalar("C"), G = scalar("G"), P = scalar("P");
  const std::vector<double>& V = at("V");
  const std::vector<double>& finite_genes = at("finite_genes");
  const int64_t F = int64_t(finite_genes.size());
  REQUIRE(F == G - 1);
  std::vector<float> finite_velocity;
  for (int64_t c = 0; c < C; ++c)
    for (double g : finite_genes) finite_velocity.push_back(float(V[c * G + int64_t(g)]));
  const std::vector<double> projection = pv::direct_pca_projection(finite_velocity.data(), C, F, at("pcs").data(), P);
  const std::vector<double>& expected = at("pca_projection");
  REQUIRE(projection.size() == expected.size());
  for (size_t e = 0; e < expected.size(); ++e) CHECK(std::abs(projection[e] - expected[e]) <= 1e-9);

  CHECK_THROWS_AS(pv::direct_pca_projection(finite_velocity.data(), C, F, nullptr, P), pv::Error);
}

namespace {

// Recomputes the statistics pipeline for one velocity from the in-memory posterior arrays.
std::vector<double> embedded_field(const std::vector<float>& spliced, const std::vector<float>& velocity,
                                   int64_t cells, int64_t genes, const pv::Knn& knn,
                                   const std::vector<double>& embedding) {
  const pv::VelocityGraph graph = pv::velocity_graph(spliced.data(), velocity.data(), cells, genes, knn);
  return pv::velocity_embedding(graph, embedding.data(), cells, 2, true);
}

double pearson_of(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = double(a.size());
  double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) sa += a[i], sb += b[i];
  for (size_t i = 0; i < a.size(); ++i) {
    const double da = a[i] - sa / n, db = b[i] - sb / n;
    sab += da * db, saa += da * da, sbb += db * db;
  }
  return sab / std::sqrt(saa * sbb);
}

void check_close(const std::vector<float>& actual, const std::vector<double>& expected, double tolerance,
                 const char* what) {
  CAPTURE(what);
  REQUIRE(actual.size() == expected.size());
  for (size_t e = 0; e < expected.size(); ++e) {
    CAPTURE(e);
    if (std::isnan(expected[e])) {
      CHECK(std::isnan(actual[e]));
    } else {
      CHECK(std::abs(double(actual[e]) - expected[e]) <= tolerance * (1.0 + std::abs(expected[e])));
    }
  }
}

}  // namespace

TEST_CASE("statistics: compute_statistics agrees with the pipeline applied to generate_posterior_samples") {
  const auto data = pv::testing::simulated_data(60, 12, 3, 5);
  const pv::VelocityModel model(pv::make_model_data(data), pv::ModelOptions{}, 4);
  const int64_t S = 5, C = 60, G = 12, comps = 3;

  pv::PosteriorOptions posterior;
  posterior.num_samples = S;
  posterior.seed = 11;
  posterior.batch_size = 17;  // chunks that do not divide the cells
  pv::StatisticsOptions options;
  options.neighbours = 10;
  options.pca_components = comps;
  for (int64_t e = 0; e < G * comps; ++e) options.pca_loadings.push_back(std::sin(0.7 * double(e) + 0.3));
  const pv::PosteriorStatistics statistics = pv::compute_statistics(model, posterior, options);
  const std::map<std::string, pv::Array>& stats = statistics.arrays;

  const std::map<std::string, std::vector<int64_t>> shapes = {
      {"vector_field_posterior_samples", {S, C, 2}}, {"vector_field_posterior_mean", {C, 2}},
      {"embeds_magnitude", {S, C}}, {"embeds_angle", {S, C}}, {"fdri", {C}},
      {"original_spaces_embeds_magnitude", {S, C}}, {"ut_mean", {C, G}}, {"st_mean", {C, G}},
      {"ut_std", {C, G}}, {"st_std", {C, G}}, {"pca_vector_field_posterior_samples", {S, C, 2}},
      {"pca_embeds_angle", {S, C}}, {"pca_fdri", {C}}};
  REQUIRE(stats.size() == shapes.size());
  for (const auto& [key, shape] : shapes) {
    CAPTURE(key);
    REQUIRE(stats.count(key) == 1);
    CHECK(stats.at(key).shape == shape);
    int64_t size = 1;
    for (int64_t d : shape) size *= d;
    CHECK(int64_t(stats.at(key).values.size()) == size);
  }

  // The independent path: every sample in memory at once, one chunk.
  pv::PosteriorOptions whole = posterior;
  whole.batch_size = 0;
  const std::map<std::string, pv::Array> samples = pv::generate_posterior_samples(model, whole);
  const std::vector<float>& ut = samples.at("ut").values;
  const std::vector<float>& st = samples.at("st").values;
  std::vector<double> ut_mean(size_t(C * G), 0.0), st_mean(size_t(C * G), 0.0), ut_sd(size_t(C * G), 0.0),
      st_sd(size_t(C * G), 0.0), velocity_mean(size_t(C * G), 0.0);
  std::vector<std::vector<float>> velocity(size_t(S), std::vector<float>(size_t(C * G)));
  for (int64_t s = 0; s < S; ++s)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t e = c * G + g, at_s = s * C * G + e;
        const double beta = samples.at("beta").values[s * G + g], gamma = samples.at("gamma").values[s * G + g];
        const double u_scale = samples.at("u_scale").values[s * G + g];
        velocity[s][e] = float(beta * ut[at_s] / u_scale - gamma * st[at_s]);
        ut_mean[e] += ut[at_s] / double(S);
        st_mean[e] += st[at_s] / double(S);
        velocity_mean[e] += velocity[s][e] / double(S);
      }
  for (int64_t s = 0; s < S; ++s)
    for (int64_t e = 0; e < C * G; ++e) {
      ut_sd[e] += std::pow(ut[s * C * G + e] - ut_mean[e], 2) / double(S);
      st_sd[e] += std::pow(st[s * C * G + e] - st_mean[e], 2) / double(S);
    }
  for (double& v : ut_sd) v = std::sqrt(v);
  for (double& v : st_sd) v = std::sqrt(v);
  check_close(stats.at("ut_mean").values, ut_mean, 1e-6, "ut_mean");
  check_close(stats.at("st_mean").values, st_mean, 1e-6, "st_mean");
  check_close(stats.at("ut_std").values, ut_sd, 1e-5, "ut_std");
  check_close(stats.at("st_std").values, st_sd, 1e-5, "st_std");

  const pv::Knn knn = pv::knn_graph(data->obsm.at("X_pca").values.data(), C, 5, 10);
  std::vector<double> embedding;
  for (int64_t c = 0; c < C; ++c)
    for (int k = 0; k < 2; ++k) embedding.push_back(data->obsm.at("X_umap").values[c * data->obsm.at("X_umap").cols + k]);
  const std::vector<float> st_mean_float(st_mean.begin(), st_mean.end());
  std::vector<double> field, magnitude, angle, original_magnitude, pca_field, pca_angle;
  for (int64_t s = 0; s < S; ++s) {
    const std::vector<double> f = embedded_field(st_mean_float, velocity[s], C, G, knn, embedding);
    field.insert(field.end(), f.begin(), f.end());
    const std::vector<double> p = pv::direct_pca_projection(velocity[s].data(), C, G, options.pca_loadings.data(), comps);
    for (int64_t c = 0; c < C; ++c) {
      magnitude.push_back(std::hypot(f[2 * c], f[2 * c + 1]));
      angle.push_back(std::atan2(f[2 * c + 1], f[2 * c]));
      pca_field.push_back(p[c * comps]);
      pca_field.push_back(p[c * comps + 1]);
      pca_angle.push_back(std::atan2(p[c * comps + 1], p[c * comps]));
      double squared = 0;
      for (int64_t g = 0; g < G; ++g) squared += double(velocity[s][c * G + g]) * velocity[s][c * G + g];
      original_magnitude.push_back(std::sqrt(squared));
    }
  }
  check_close(stats.at("vector_field_posterior_samples").values, field, 1e-4, "vector_field_posterior_samples");
  check_close(stats.at("embeds_magnitude").values, magnitude, 1e-4, "embeds_magnitude");
  check_close(stats.at("original_spaces_embeds_magnitude").values, original_magnitude, 1e-5, "original magnitude");
  check_close(stats.at("pca_vector_field_posterior_samples").values, pca_field, 1e-5, "pca field");
  // Angles from the reported float32 vectors (atan2 is ill-conditioned near zero-length arrows).
  const std::vector<float>& reported = stats.at("vector_field_posterior_samples").values;
  std::vector<double> reported_angle;
  for (int64_t e = 0; e < S * C; ++e) reported_angle.push_back(std::atan2(reported[2 * e + 1], reported[2 * e]));
  check_close(stats.at("embeds_angle").values, reported_angle, 1e-5, "embeds_angle");

  const std::vector<float> velocity_mean_float(velocity_mean.begin(), velocity_mean.end());
  check_close(stats.at("vector_field_posterior_mean").values,
              embedded_field(st_mean_float, velocity_mean_float, C, G, knn, embedding), 1e-4,
              "vector_field_posterior_mean");

  // fdri: Rayleigh over each cell's S angles, then BH over the cells.
  auto fdr_of = [&](const std::vector<double>& angles) {
    std::vector<double> p;
    for (int64_t c = 0; c < C; ++c) {
      std::vector<double> cell_angles;
      for (int64_t s = 0; s < S; ++s) cell_angles.push_back(angles[s * C + c]);
      p.push_back(pv::rayleigh_p_value(cell_angles.data(), S));
    }
    return pv::benjamini_hochberg(p);
  };
  REQUIRE(std::none_of(reported_angle.begin(), reported_angle.end(), [](double a) { return std::isnan(a); }));
  check_close(stats.at("fdri").values, fdr_of(reported_angle), 1e-5, "fdri");
  check_close(stats.at("pca_fdri").values, fdr_of(pca_angle), 1e-5, "pca_fdri");

  // Gene ranking: the predictive s against the observed spliced counts, st against cell time.
  const pv::io::CountMatrix& spliced = data->layers.at("spliced");
  std::vector<double> observed(size_t(C * G), 0.0), mean_mae(size_t(G), 0.0), time_correlation(size_t(G), 0.0);
  for (int64_t c = 0; c < C; ++c) {
    if (spliced.sparse) {
      for (int64_t p = spliced.indptr[c]; p < spliced.indptr[c + 1]; ++p) observed[c * G + spliced.indices[p]] = spliced.data[p];
    } else {
      for (int64_t g = 0; g < G; ++g) observed[c * G + g] = spliced.dense[c * G + g];
    }
  }
  for (int64_t s = 0; s < S; ++s) {
    std::vector<double> cell_time(samples.at("cell_time").values.begin() + s * C,
                                  samples.at("cell_time").values.begin() + (s + 1) * C);
    for (int64_t g = 0; g < G; ++g) {
      double error = 0, observed_sum = 0;
      std::vector<double> st_of_gene;
      for (int64_t c = 0; c < C; ++c) {
        error += std::abs(observed[c * G + g] - samples.at("s").values[(s * C + c) * G + g]);
        observed_sum += observed[c * G + g];
        st_of_gene.push_back(st[(s * C + c) * G + g]);
      }
      mean_mae[g] += -error / observed_sum / double(S);
      time_correlation[g] += pearson_of(st_of_gene, cell_time) / double(S);
    }
  }
  const pv::GeneRanking& ranking = statistics.gene_ranking;
  REQUIRE(ranking.mean_mae.size() == size_t(G));
  REQUIRE(ranking.time_correlation.size() == size_t(G));
  for (int64_t g = 0; g < G; ++g) {
    CHECK(ranking.mean_mae[g] == doctest::Approx(mean_mae[g]).epsilon(1e-9));
    // cell_time round-trips through float32 in generate_posterior_samples.
    CHECK(ranking.time_correlation[g] == doctest::Approx(time_correlation[g]).epsilon(1e-5));
  }
  CHECK(std::count_if(mean_mae.begin(), mean_mae.end(), [](double v) { return v < 0; }) == G);
  CHECK(ranking.genes == pv::rank_genes(ranking.mean_mae, ranking.time_correlation).genes);
  REQUIRE(ranking.genes.size() == 4);

  // With each sample's own st for the displacement.
  options.spliced_per_sample = true;
  const std::map<std::string, pv::Array> own = pv::compute_statistics(model, posterior, options).arrays;
  std::vector<double> own_field;
  for (int64_t s = 0; s < S; ++s) {
    const std::vector<float> sample_st(st.begin() + s * C * G, st.begin() + (s + 1) * C * G);
    const std::vector<double> f = embedded_field(sample_st, velocity[s], C, G, knn, embedding);
    own_field.insert(own_field.end(), f.begin(), f.end());
  }
  check_close(own.at("vector_field_posterior_samples").values, own_field, 1e-4, "spliced_per_sample");

  // Errors name what is wrong.
  pv::StatisticsOptions bad = options;
  bad.basis = "tsne";
  CHECK_THROWS_WITH_AS(pv::compute_statistics(model, posterior, bad), doctest::Contains("X_tsne"), pv::Error);
  bad = options;
  bad.neighbours = 1;
  CHECK_THROWS_WITH_AS(pv::compute_statistics(model, posterior, bad), doctest::Contains("n_neighbors"), pv::Error);
  bad = options;
  bad.pca_loadings.pop_back();
  CHECK_THROWS_WITH_AS(pv::compute_statistics(model, posterior, bad), doctest::Contains("pca_loadings"), pv::Error);
}

TEST_CASE("statistics: compute_statistics on a subset of cells uses those rows of X_pca and the embedding") {
  const auto data = pv::testing::simulated_data(50, 10, 8, 4);
  const pv::VelocityModel model(pv::make_model_data(data), pv::ModelOptions{}, 2);
  pv::PosteriorOptions posterior;
  posterior.num_samples = 3;
  posterior.seed = 5;
  for (int64_t c = 49; c >= 0; c -= 2) posterior.cells.push_back(c);  // 25 cells, reversed order
  pv::StatisticsOptions options;
  options.neighbours = 6;
  const pv::PosteriorStatistics statistics = pv::compute_statistics(model, posterior, options);
  const std::map<std::string, pv::Array>& stats = statistics.arrays;
  const int64_t C = 25, G = 10;
  REQUIRE(stats.at("vector_field_posterior_mean").shape == std::vector<int64_t>{C, 2});
  CHECK(stats.count("pca_fdri") == 0);  // no loadings given

  const std::map<std::string, pv::Array> samples = pv::generate_posterior_samples(model, posterior);
  std::vector<double> x_pca, embedding;
  for (int64_t r : posterior.cells) {
    for (int k = 0; k < 4; ++k) x_pca.push_back(data->obsm.at("X_pca").values[r * 4 + k]);
    for (int k = 0; k < 2; ++k) embedding.push_back(data->obsm.at("X_umap").values[r * data->obsm.at("X_umap").cols + k]);
  }
  const pv::Knn knn = pv::knn_graph(x_pca.data(), C, 4, 6);
  std::vector<double> st_mean(size_t(C * G), 0.0), velocity_mean(size_t(C * G), 0.0);
  for (int64_t s = 0; s < 3; ++s)
    for (int64_t e = 0; e < C * G; ++e) {
      const int64_t g = e % G, at_s = s * C * G + e;
      const double beta = samples.at("beta").values[s * G + g], gamma = samples.at("gamma").values[s * G + g];
      const double u_scale = samples.at("u_scale").values[s * G + g];
      st_mean[e] += samples.at("st").values[at_s] / 3.0;
      velocity_mean[e] += double(float(beta * samples.at("ut").values[at_s] / u_scale - gamma * samples.at("st").values[at_s])) / 3.0;
    }
  const std::vector<float> st_float(st_mean.begin(), st_mean.end()), velocity_float(velocity_mean.begin(), velocity_mean.end());
  check_close(stats.at("vector_field_posterior_mean").values,
              embedded_field(st_float, velocity_float, C, G, knn, embedding), 1e-4, "subset mean field");
}

TEST_CASE("statistics: velocity_graphs (batched, float32 products) agrees with velocity_graph field by field") {
  const int64_t cells = 120, genes = 37, fields = 6;
  std::vector<float> X(size_t(cells * genes));
  std::vector<std::vector<float>> V(size_t(fields), std::vector<float>(size_t(cells * genes)));
  for (int64_t e = 0; e < cells * genes; ++e) {
    X[e] = float(std::floor(8 * (1 + std::sin(0.37 * double(e) + 0.01 * double(e / genes)))));  // count-like, with ties
    for (int64_t f = 0; f < fields; ++f) V[f][e] = float(std::cos(0.11 * double(e) * double(f + 1) + double(f)));
  }
  for (int64_t g = 0; g < genes; ++g) X[5 * genes + g] = X[9 * genes + g];  // two identical rows: zero displacement
  std::vector<double> points;
  for (int64_t c = 0; c < cells; ++c) points.push_back(std::sin(0.2 * double(c))), points.push_back(double(c % 7));
  const pv::Knn knn = pv::knn_graph(points.data(), cells, 2, 8);
  std::vector<const float*> pointers;
  for (const auto& v : V) pointers.push_back(v.data());
  const std::vector<pv::VelocityGraph> batched = pv::velocity_graphs(X.data(), pointers.data(), fields, cells, genes, knn);
  REQUIRE(int64_t(batched.size()) == fields);
  double worst = 0;
  for (int64_t f = 0; f < fields; ++f) {
    const pv::VelocityGraph single = pv::velocity_graph(X.data(), V[f].data(), cells, genes, knn);
    REQUIRE(batched[f].indptr == single.indptr);
    REQUIRE(batched[f].indices == single.indices);
    for (size_t e = 0; e < single.cosine.size(); ++e) worst = std::max(worst, std::abs(batched[f].cosine[e] - single.cosine[e]));
    for (int64_t c = 0; c < cells; ++c) CHECK(batched[f].self_transition[c] == doctest::Approx(single.self_transition[c]).epsilon(1e-4));
  }
  CHECK(worst < 1e-5);
  CHECK_THROWS_AS(pv::velocity_graphs(X.data(), pointers.data(), 0, cells, genes, knn), pv::Error);
}

TEST_CASE("statistics: FieldProjector gives velocity_embedding of each velocity_graphs field; CUDA without a device is refused") {
  const int64_t cells = 90, genes = 21, fields = 3;
  std::vector<float> X(size_t(cells * genes));
  std::vector<std::vector<float>> V(size_t(fields), std::vector<float>(size_t(cells * genes)));
  for (int64_t e = 0; e < cells * genes; ++e) {
    X[e] = float(std::floor(5 * (1 + std::sin(0.29 * double(e)))));
    for (int64_t f = 0; f < fields; ++f) V[f][e] = float(std::sin(0.07 * double(e) * double(f + 2)));
  }
  std::vector<double> embedding;
  for (int64_t c = 0; c < cells; ++c) embedding.push_back(std::cos(0.3 * double(c))), embedding.push_back(double(c % 5));
  const pv::Knn knn = pv::knn_graph(embedding.data(), cells, 2, 6);
  std::vector<const float*> pointers;
  for (const auto& v : V) pointers.push_back(v.data());
  pv::FieldProjector projector(X.data(), cells, genes, knn, embedding.data(), pv::Device::kCpu);
  const std::vector<double> projected = projector.project(pointers.data(), fields);
  const std::vector<pv::VelocityGraph> graphs = pv::velocity_graphs(X.data(), pointers.data(), fields, cells, genes, knn);
  REQUIRE(int64_t(projected.size()) == fields * cells * 2);
  for (int64_t f = 0; f < fields; ++f) {
    const std::vector<double> expected = pv::velocity_embedding(graphs[f], embedding.data(), cells, 2, true);
    CHECK(std::vector<double>(projected.begin() + f * cells * 2, projected.begin() + (f + 1) * cells * 2) == expected);
  }
  // Fields made row by row from a sample (V = rate ut - gamma st) project as their arrays do.
  std::vector<float> ut(size_t(cells * genes)), st(size_t(cells * genes)), made(size_t(cells * genes));
  std::vector<double> rate(static_cast<size_t>(genes)), gamma(static_cast<size_t>(genes));
  for (int64_t g = 0; g < genes; ++g) rate[g] = 0.5 + 0.1 * double(g), gamma[g] = 0.2 + 0.05 * double(g % 4);
  for (int64_t e = 0; e < cells * genes; ++e) {
    ut[e] = float(1 + std::cos(0.13 * double(e))), st[e] = float(2 + std::sin(0.05 * double(e)));
    made[e] = float(rate[e % genes] * ut[e] - gamma[e % genes] * st[e]);
  }
  pv::VelocityField from_sample, from_array;
  from_sample.ut = ut.data(), from_sample.st = st.data(), from_sample.rate = rate.data(), from_sample.gamma = gamma.data();
  from_array.values = made.data();
  const std::vector<double> by_sample = projector.project(&from_sample, 1), by_array = projector.project(&from_array, 1);
  REQUIRE(by_sample.size() == by_array.size());
  for (size_t e = 0; e < by_array.size(); ++e) CHECK(by_sample[e] == doctest::Approx(by_array[e]).epsilon(1e-6).scale(1));
  rate[7] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(projector.project(&from_sample, 1), doctest::Contains("NaN"), pv::Error);
  const pv::VelocityField empty;
  CHECK_THROWS_AS(projector.project(&empty, 1), pv::Error);  // neither values nor a sample
  if (pv::cuda_device_count() == 0) {
    try {
      pv::FieldProjector on_gpu(X.data(), cells, genes, knn, embedding.data(), pv::Device::kCuda);
      FAIL("a CUDA projector was made without a device");
    } catch (const pv::Error& e) {
      CHECK(e.status() == PV_ERR_NO_DEVICE);
      CHECK(std::string(e.what()).find("CUDA") != std::string::npos);
    }
  }
}

TEST_CASE("statistics: samples held in memory, drawn twice, or cached give the same statistics") {
  const auto data = pv::testing::simulated_data(40, 9, 21, 4);
  pv::ModelOptions model_options;
  model_options.add_offset = true;  // model2-like: u_scale among the samples
  const pv::VelocityModel model(pv::make_model_data(data), model_options, 6);
  pv::PosteriorOptions posterior;
  posterior.num_samples = 4;
  posterior.seed = 2;
  pv::StatisticsOptions options;
  options.neighbours = 8;
  pv::prepare_statistics(*data, &options, 0);
  REQUIRE(options.pca_components == 4);  // as many as X_pca has columns

  const pv::PosteriorStatistics cached = pv::compute_statistics(model, posterior, options);
  pv::StatisticsOptions uncached = options;
  uncached.sample_cache_bytes = 0;  // pass 2 draws the samples again
  const pv::PosteriorStatistics redrawn = pv::compute_statistics(model, posterior, uncached);
  const pv::PosteriorStatistics held = pv::compute_statistics(*data, pv::generate_posterior_samples(model, posterior), options);
  REQUIRE(cached.arrays.size() == 13);
  for (const auto& [key, array] : cached.arrays) {
    CAPTURE(key);
    // Pass 2 runs the same batched float32 graphs on velocities from the cache or drawn again.
    check_close(redrawn.arrays.at(key).values, std::vector<double>(array.values.begin(), array.values.end()), 1e-3, key.c_str());
    REQUIRE(held.arrays.at(key).shape == array.shape);
    // The held samples carry float32 rates, the drawn ones double: agreement to float precision.
    check_close(held.arrays.at(key).values, std::vector<double>(array.values.begin(), array.values.end()), 1e-3, key.c_str());
  }
  CHECK(held.gene_ranking.genes == cached.gene_ranking.genes);

  // The summaries tapped from the statistics' first pass are summarise_posterior's, exactly.
  pv::PosteriorSummariser summariser(model, posterior);
  const pv::PosteriorStatistics tapped = pv::compute_statistics(model, posterior, options, &summariser);
  const pv::PosteriorSummary shared = summariser.finish(), alone = pv::summarise_posterior(model, posterior);
  CHECK(tapped.arrays.at("fdri").values == cached.arrays.at("fdri").values);
  REQUIRE(shared.mean.size() == alone.mean.size());
  for (const auto& [key, mean] : alone.mean) {
    CAPTURE(key);
    CHECK(shared.mean.at(key) == mean);
    CHECK(shared.sd.at(key) == alone.sd.at(key));
  }

  // Held samples of the wrong shape or with a missing key are refused by name.
  std::map<std::string, pv::Array> samples = pv::generate_posterior_samples(model, posterior);
  samples.erase("s");
  CHECK_THROWS_WITH_AS(pv::compute_statistics(*data, samples, options), doctest::Contains("'s'"), pv::Error);
  samples = pv::generate_posterior_samples(model, posterior);
  samples.at("beta").shape = {4, 1, 8};
  CHECK_THROWS_WITH_AS(pv::compute_statistics(*data, samples, options), doctest::Contains("beta"), pv::Error);
  samples = pv::generate_posterior_samples(model, posterior);
  samples.at("st").values[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(pv::compute_statistics(*data, samples, options), doctest::Contains("st"), pv::Error);
  samples = pv::generate_posterior_samples(model, posterior);
  samples.at("u_scale").values[3] = 0;  // V = beta ut / u_scale - gamma st
  CHECK_THROWS_WITH_AS(pv::compute_statistics(*data, samples, options), doctest::Contains("'u_scale' holds 0"), pv::Error);
}

TEST_CASE("statistics: rank_genes ranks descending with ties averaged and keeps 4 of the 300 best by mean_mae") {
  // Hand example: mean_mae -0.5, -0.1, -0.1, -0.9 -> ranks 3, 1.5, 1.5, 4 (largest first, tie averaged);
  // correlation 0.2, -0.4, 0.9, 0.2 -> ranks 2.5, 4, 1, 2.5. Fewer than 300 genes: all are candidates,
  // the 4 kept by correlation: 2 (0.9), then 0 and 3 (0.2, by index), then 1.
  const pv::GeneRanking small = pv::rank_genes({-0.5, -0.1, -0.1, -0.9}, {0.2, -0.4, 0.9, 0.2});
  CHECK(small.mean_mae_rank == std::vector<double>{3, 1.5, 1.5, 4});
  CHECK(small.time_correlation_rank == std::vector<double>{2.5, 4, 1, 2.5});
  CHECK(small.genes == std::vector<int64_t>{2, 0, 3, 1});

  // 310 genes: mean_mae = -g / 1000 (gene 0 best), correlation = g / 1000 (gene 309 best). The 300
  // best by mean_mae are genes 0..299; of those the 4 best correlated are 299, 298, 297, 296.
  std::vector<double> mae, correlation;
  for (int g = 0; g < 310; ++g) mae.push_back(-g / 1000.0), correlation.push_back(g / 1000.0);
  const pv::GeneRanking large = pv::rank_genes(mae, correlation);
  CHECK(large.genes == std::vector<int64_t>{299, 298, 297, 296});
  CHECK(large.mean_mae_rank[0] == 1.0);
  CHECK(large.time_correlation_rank[309] == 1.0);

  CHECK_THROWS_AS(pv::rank_genes({0.1}, {}), pv::Error);
}

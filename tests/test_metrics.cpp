// Benchmark metrics (engine/metrics.h): CBDir and ICCoh on fixtures small enough to work out by
// hand, and the transitions parser.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "engine/error.h"
#include "engine/metrics.h"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A kNN graph given row by row (each row starts with the cell itself).
pv::Knn explicit_knn(const std::vector<std::vector<int64_t>>& rows) {
  pv::Knn knn;
  knn.cells = static_cast<int64_t>(rows.size());
  knn.k = static_cast<int64_t>(rows[0].size());
  for (const auto& row : rows) knn.index.insert(knn.index.end(), row.begin(), row.end());
  knn.distance.assign(knn.index.size(), 0.0);
  return knn;
}

// Every velocity the same 2-D vector.
std::vector<double> repeated(double x, double y, size_t cells) {
  std::vector<double> v;
  for (size_t i = 0; i < cells; ++i) {
    v.push_back(x);
    v.push_back(y);
  }
  return v;
}

template <class Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const pv::Error& e) {
    CHECK(e.status() == PV_ERR_INVALID_ARGUMENT);
    return e.what();
  }
  FAIL("no pv::Error thrown");
  return "";
}

bool contains(const std::string& text, const std::string& fragment) { return text.find(fragment) != std::string::npos; }

// Two clusters on a line, A = {x 0, x 1}, B = {x 1.5, x 3}, and a far cluster C = {x 100, x 101};
// the kNN graph (k = 2, from knn_graph on x) links A only to B through cell 1 (x 1 -> x 1.5).
struct Line {
  std::vector<double> x = {0, 1, 1.5, 3, 100, 101};
  std::vector<double> embedding;  // (x, 0)
  std::vector<int32_t> codes = {0, 0, 1, 1, 2, 2};
  std::vector<std::string> categories = {"A", "B", "C"};
  pv::Knn knn;
  Line() {
    for (double xi : x) {
      embedding.push_back(xi);
      embedding.push_back(0);
    }
    knn = pv::knn_graph(x.data(), 6, 1, 2);
  }
};

}  // namespace

TEST_CASE("metrics cbdir: velocities along, against and across the A -> B boundary give 1, -1 and 0") {
  const Line line;
  REQUIRE(line.knn.index == std::vector<int64_t>({0, 1, 1, 2, 2, 1, 3, 2, 4, 5, 5, 4}));
  const std::vector<pv::Transition> edge = {{"A", "B"}};
  for (const auto& [vx, vy, expected] : {std::tuple{1.0, 0.0, 1.0}, std::tuple{-2.0, 0.0, -1.0}, std::tuple{0.0, 3.0, 0.0}}) {
    INFO("velocity (" << vx << ", " << vy << ")");
    const std::vector<double> velocity = repeated(vx, vy, 6);
    const auto scores =
        pv::cross_boundary_direction(line.embedding.data(), velocity.data(), line.codes, line.categories, line.knn, edge);
    REQUIRE(scores.size() == 1);
    CHECK(scores[0].from == "A");
    CHECK(scores[0].to == "B");
    CHECK(scores[0].cells == 1);  // only cell 1 has a neighbour in B
    CHECK(scores[0].score == doctest::Approx(expected));
    CHECK(pv::cross_boundary_direction_total(scores) == doctest::Approx(expected));
  }
}

TEST_CASE("metrics cbdir: an edge without boundary cells is NaN with 0 cells and is left out of the total") {
  const Line line;
  const std::vector<double> velocity = repeated(1, 0, 6);
  const auto scores = pv::cross_boundary_direction(line.embedding.data(), velocity.data(), line.codes, line.categories,
                                                   line.knn, {{"A", "B"}, {"A", "C"}, {"B", "A"}});
  REQUIRE(scores.size() == 3);
  CHECK(std::isnan(scores[1].score));
  CHECK(scores[1].cells == 0);
  // B -> A: cell 2 (x 1.5) has neighbour 1 (x 1) in A, displacement (-0.5, 0) against V = (1, 0).
  CHECK(scores[2].cells == 1);
  CHECK(scores[2].score == doctest::Approx(-1));
  // Total over the two edges with a score: (1 + -1) / 2.
  CHECK(pv::cross_boundary_direction_total(scores) == doctest::Approx(0));
  CHECK(std::isnan(pv::cross_boundary_direction_total({scores[1]})));
}

TEST_CASE("metrics cbdir: per-cell mean over boundary neighbours, then mean over cells; NaN velocities skipped") {
  // Cells 0, 1, 2 in A at the origin-ish; B = {3 at (1, 0), 4 at (0, 1)}.
  const std::vector<double> embedding = {0, 0, 0, 0, 5, 5, 1, 0, 0, 1};
  const std::vector<int32_t> codes = {0, 0, 0, 1, 1};
  const std::vector<std::string> categories = {"A", "B"};
  const pv::Knn knn = explicit_knn({{0, 3, 4}, {1, 3, 0}, {2, 3, 4}, {3, 4, 0}, {4, 3, 0}});
  // Cell 0: V (1, 0); neighbours 3 (cos 1) and 4 (cos 0): 0.5. Cell 1: V (0, 1); neighbour 3 only
  // (cos 0): 0. Cell 2: NaN velocity, skipped although it has neighbours in B.
  const std::vector<double> velocity = {1, 0, 0, 1, kNaN, 0, 1, 0, 1, 0};
  const auto scores = pv::cross_boundary_direction(embedding.data(), velocity.data(), codes, categories, knn, {{"A", "B"}});
  CHECK(scores[0].cells == 2);
  CHECK(scores[0].score == doctest::Approx((0.5 + 0.0) / 2));
}

TEST_CASE("metrics cbdir: unknown cluster names and mismatched sizes are errors") {
  const Line line;
  const std::vector<double> velocity = repeated(1, 0, 6);
  const std::string message = error_of([&] {
    pv::cross_boundary_direction(line.embedding.data(), velocity.data(), line.codes, line.categories, line.knn,
                                 {{"A", "Z"}});
  });
  CHECK(contains(message, "'Z'"));
  CHECK(contains(message, "'A', 'B', 'C'"));
  const std::vector<int32_t> short_codes = {0, 1};
  CHECK(contains(error_of([&] {
                   pv::cross_boundary_direction(line.embedding.data(), velocity.data(), short_codes, line.categories,
                                                line.knn, {{"A", "B"}});
                 }),
                 "cluster_codes"));
}

TEST_CASE("metrics iccoh: identical velocities give 1, an opposite member a value worked out by hand") {
  // X = cells 0-2, all (1, 2, 3) up to scale; Y = cells 3-5 with velocities v, v, -v; k = 6 so every
  // cell sees every other. Y: cell 3 and cell 4 each average (1 + 1 - 1) / 3 = 1/3, cell 5 averages
  // (-1 - 1 + 1) / 3 = -1/3; the cluster: (1/3 + 1/3 - 1/3) / 3 = 1/9. Total: (1 + 1/9) / 2 = 5/9.
  // Gene 3 has a NaN in cell 0, so it is left out for every cell.
  const std::vector<float> V = {
      1, 2, 3, NAN,  //
      2, 4, 6, 7,    //
      0.5f, 1, 1.5f, -9,  //
      1, -1, 0, 4,   //
      2, -2, 0, 4,   //
      -1, 1, 0, 4,   //
  };
  const std::vector<int32_t> codes = {0, 0, 0, 1, 1, 1};
  const std::vector<std::string> categories = {"X", "Y", "Empty"};
  const std::vector<double> position = {0, 1, 2, 3, 4, 5};
  const pv::Knn knn = pv::knn_graph(position.data(), 6, 1, 6);
  const auto scores = pv::in_cluster_coherence(V.data(), 6, 4, codes, categories, knn);
  REQUIRE(scores.size() == 3);
  CHECK(scores[0].first == "X");
  CHECK(scores[0].second == doctest::Approx(1));
  CHECK(scores[1].first == "Y");
  CHECK(scores[1].second == doctest::Approx(1.0 / 9));
  CHECK(scores[2].first == "Empty");
  CHECK(std::isnan(scores[2].second));  // no cells; left out of the total
  CHECK(pv::in_cluster_coherence_total(scores) == doctest::Approx(5.0 / 9));
}

TEST_CASE("metrics iccoh: only same-cluster neighbours count, self included; a zero velocity has cosine 0") {
  // k = 2: cell 0 -> {0, 1}, cell 1 -> {1, 0}, cell 2 -> {2, 1}. Cells 0 and 1 in P with
  // orthogonal velocities: each (1 + 0) / 2 = 0.5. Cell 2 alone in Q with a zero velocity: its
  // neighbour 1 is in P, so only itself counts, cos = 0.
  const std::vector<float> V = {1, 0, 0, 1, 0, 0};
  const std::vector<int32_t> codes = {0, 0, 1};
  const pv::Knn knn = explicit_knn({{0, 1}, {1, 0}, {2, 1}});
  const auto scores = pv::in_cluster_coherence(V.data(), 3, 2, codes, {"P", "Q"}, knn);
  CHECK(scores[0].second == doctest::Approx(0.5));
  CHECK(scores[1].second == doctest::Approx(0));
  CHECK(pv::in_cluster_coherence_total(scores) == doctest::Approx(0.25));
}

TEST_CASE("metrics transitions: names with spaces, braces and the pancreas preset") {
  const std::vector<std::string> pancreas = {"Alpha",       "Beta",         "Delta",        "Ductal",
                                             "Epsilon",     "Ngn3 high EP", "Ngn3 low EP",  "Pre-endocrine"};
  const auto edges = pv::parse_transitions("  Ngn3 low EP >Ngn3 high EP ,Ductal>  Ngn3 low EP", pancreas);
  REQUIRE(edges.size() == 2);
  CHECK(edges[0] == pv::Transition{"Ngn3 low EP", "Ngn3 high EP"});
  CHECK(edges[1] == pv::Transition{"Ductal", "Ngn3 low EP"});

  const auto braces = pv::parse_transitions("Pre-endocrine>{Alpha, Beta}", pancreas);
  CHECK(braces == std::vector<pv::Transition>{{"Pre-endocrine", "Alpha"}, {"Pre-endocrine", "Beta"}});

  const auto preset = pv::parse_transitions("pancreas", pancreas);
  CHECK(preset == std::vector<pv::Transition>{{"Ductal", "Ngn3 low EP"},
                                              {"Ngn3 low EP", "Ngn3 high EP"},
                                              {"Ngn3 high EP", "Pre-endocrine"},
                                              {"Pre-endocrine", "Alpha"},
                                              {"Pre-endocrine", "Beta"},
                                              {"Pre-endocrine", "Delta"},
                                              {"Pre-endocrine", "Epsilon"}});
}

TEST_CASE("metrics transitions: an unknown name is named with the categories listed; malformed items are errors") {
  const std::vector<std::string> categories = {"A", "B"};
  const std::string unknown = error_of([&] { pv::parse_transitions("A>B, B>Ghost cells", categories); });
  CHECK(contains(unknown, "'Ghost cells'"));
  CHECK(contains(unknown, "'A', 'B'"));
  // The preset needs the pancreas clusters.
  CHECK(contains(error_of([&] { pv::parse_transitions("pancreas", categories); }), "'Ductal'"));
  for (const char* text : {"A-B", "A>B>A", "", "A>B,", ">B"}) {
    INFO("text: '" << text << "'");
    error_of([&] { pv::parse_transitions(text, categories); });
  }
}

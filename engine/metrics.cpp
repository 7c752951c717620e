#include "engine/metrics.h"

#include <cmath>
#include <limits>

#include "engine/error.h"

namespace pv {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "'" : ", '") + name + "'";
  return out.empty() ? "none" : out;
}

int32_t code_of(const std::string& name, const std::vector<std::string>& categories, const char* caller) {
  for (size_t c = 0; c < categories.size(); ++c) {
    if (categories[c] == name) return static_cast<int32_t>(c);
  }
  fail(PV_ERR_INVALID_ARGUMENT, std::string(caller) + ": unknown cluster '" + name + "'; the clusters are " +
                                    join(categories));
}

void check_clusters(const std::vector<int32_t>& codes, const std::vector<std::string>& categories, const Knn& knn,
                    const char* caller) {
  require(knn.cells == static_cast<int64_t>(codes.size()), PV_ERR_INVALID_ARGUMENT,
          std::string(caller) + ": the kNN graph has " + std::to_string(knn.cells) + " cells but cluster_codes has " +
              std::to_string(codes.size()));
  require(knn.k >= 1 && static_cast<int64_t>(knn.index.size()) == knn.cells * knn.k, PV_ERR_INVALID_ARGUMENT,
          std::string(caller) + ": malformed kNN graph (index is not cells x k)");
  for (size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] < -1 || codes[i] >= static_cast<int64_t>(categories.size())) {
      fail(PV_ERR_INVALID_ARGUMENT, std::string(caller) + ": cluster_codes[" + std::to_string(i) + "] is " +
                                        std::to_string(codes[i]) + " but there are " +
                                        std::to_string(categories.size()) + " categories");
    }
  }
}

// Cosine of two vectors, 0 when either has norm 0 (sklearn's cosine_similarity does the same).
template <class T>
double cosine(const T* a, const T* b, const std::vector<int64_t>& dims) {
  double dot = 0, aa = 0, bb = 0;
  for (int64_t d : dims) {
    const double x = a[d], y = b[d];
    dot += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa > 0 && bb > 0 ? dot / std::sqrt(aa * bb) : 0.0;
}

double mean_of_finite(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += v;
    ++n;
  }
  return n > 0 ? sum / static_cast<double>(n) : kNaN;
}

std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

// Splits on `separator` outside braces.
std::vector<std::string> split_top_level(const std::string& text, char separator) {
  std::vector<std::string> parts(1);
  int depth = 0;
  for (char c : text) {
    if (c == '{') ++depth;
    if (c == '}') --depth;
    if (c == separator && depth == 0) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

const char kPancreasTransitions[] =
    "Ductal>Ngn3 low EP, Ngn3 low EP>Ngn3 high EP, Ngn3 high EP>Pre-endocrine, "
    "Pre-endocrine>{Alpha, Beta, Delta, Epsilon}";

}  // namespace

std::vector<TransitionScore> cross_boundary_direction(const double* embedding, const double* velocity_embedded,
                                                      const std::vector<int32_t>& cluster_codes,
                                                      const std::vector<std::string>& categories, const Knn& knn,
                                                      const std::vector<Transition>& transitions) {
  const char* caller = "cross_boundary_direction";
  require(embedding && velocity_embedded, PV_ERR_INVALID_ARGUMENT, "cross_boundary_direction: null array");
  check_clusters(cluster_codes, categories, knn, caller);
  const std::vector<int64_t> plane = {0, 1};
  std::vector<TransitionScore> scores;
  for (const Transition& edge : transitions) {
    const int32_t from = code_of(edge.first, categories, caller);
    const int32_t to = code_of(edge.second, categories, caller);
    double sum = 0;
    int64_t counted = 0;
    for (int64_t i = 0; i < knn.cells; ++i) {
      if (cluster_codes[i] != from) continue;
      const double* v = velocity_embedded + 2 * i;
      const double* e = embedding + 2 * i;
      if (!std::isfinite(v[0]) || !std::isfinite(v[1]) || !std::isfinite(e[0]) || !std::isfinite(e[1])) continue;
      double cell_sum = 0;
      int64_t neighbours = 0;
      for (int64_t n = 0; n < knn.k; ++n) {
        const int64_t j = knn.index[i * knn.k + n];
        if (cluster_codes[j] != to) continue;
        const double displacement[2] = {embedding[2 * j] - e[0], embedding[2 * j + 1] - e[1]};
        if (!std::isfinite(displacement[0]) || !std::isfinite(displacement[1])) continue;
        cell_sum += cosine(displacement, v, plane);
        ++neighbours;
      }
      if (neighbours == 0) continue;
      sum += cell_sum / static_cast<double>(neighbours);
      ++counted;
    }
    scores.push_back({edge.first, edge.second, counted > 0 ? sum / static_cast<double>(counted) : kNaN, counted});
  }
  return scores;
}

double cross_boundary_direction_total(const std::vector<TransitionScore>& scores) {
  std::vector<double> values;
  for (const TransitionScore& s : scores) values.push_back(s.score);
  return mean_of_finite(values);
}

std::vector<std::pair<std::string, double>> in_cluster_coherence(const float* V, int64_t cells, int64_t genes,
                                                                 const std::vector<int32_t>& cluster_codes,
                                                                 const std::vector<std::string>& categories,
                                                                 const Knn& knn) {
  const char* caller = "in_cluster_coherence";
  require(V != nullptr, PV_ERR_INVALID_ARGUMENT, "in_cluster_coherence: V is null");
  require(cells == knn.cells && genes >= 1, PV_ERR_INVALID_ARGUMENT,
          "in_cluster_coherence: V is " + std::to_string(cells) + " x " + std::to_string(genes) +
              " but the kNN graph has " + std::to_string(knn.cells) + " cells");
  check_clusters(cluster_codes, categories, knn, caller);
  std::vector<int64_t> finite_genes;
  for (int64_t g = 0; g < genes; ++g) {
    bool finite = true;
    for (int64_t i = 0; i < cells && finite; ++i) finite = !std::isnan(V[i * genes + g]);
    if (finite) finite_genes.push_back(g);
  }
  std::vector<double> sum(categories.size(), 0.0);
  std::vector<int64_t> count(categories.size(), 0);
  for (int64_t i = 0; i < cells; ++i) {
    const int32_t c = cluster_codes[i];
    if (c < 0) continue;
    double cell_sum = 0;
    int64_t neighbours = 0;
    for (int64_t n = 0; n < knn.k; ++n) {
      const int64_t j = knn.index[i * knn.k + n];
      if (cluster_codes[j] != c) continue;
      cell_sum += cosine(V + i * genes, V + j * genes, finite_genes);
      ++neighbours;
    }
    if (neighbours == 0) continue;  // only when the graph's row lacks the cell itself
    sum[c] += cell_sum / static_cast<double>(neighbours);
    ++count[c];
  }
  std::vector<std::pair<std::string, double>> scores;
  for (size_t c = 0; c < categories.size(); ++c) {
    scores.emplace_back(categories[c], count[c] > 0 ? sum[c] / static_cast<double>(count[c]) : kNaN);
  }
  return scores;
}

double in_cluster_coherence_total(const std::vector<std::pair<std::string, double>>& scores) {
  std::vector<double> values;
  for (const auto& s : scores) values.push_back(s.second);
  return mean_of_finite(values);
}

std::vector<Transition> parse_transitions(const std::string& text, const std::vector<std::string>& categories) {
  std::vector<Transition> edges;
  const auto checked = [&](const std::string& name, const std::string& item) {
    if (name.empty()) {
      fail(PV_ERR_INVALID_ARGUMENT, "transitions: empty cluster name in '" + item + "' (expected FROM>TO)");
    }
    code_of(name, categories, "transitions");
    return name;
  };
  for (const std::string& raw : split_top_level(text, ',')) {
    const std::string item = trimmed(raw);
    if (item == "pancreas") {
      for (const Transition& edge : parse_transitions(kPancreasTransitions, categories)) edges.push_back(edge);
      continue;
    }
    const std::vector<std::string> sides = split_top_level(item, '>');
    if (sides.size() != 2) {
      fail(PV_ERR_INVALID_ARGUMENT, "transitions: '" + item + "' is not of the form FROM>TO (items are separated by ',')");
    }
    const std::string from = checked(trimmed(sides[0]), item);
    const std::string target = trimmed(sides[1]);
    if (target.size() >= 2 && target.front() == '{' && target.back() == '}') {
      for (const std::string& name : split_top_level(target.substr(1, target.size() - 2), ',')) {
        edges.emplace_back(from, checked(trimmed(name), item));
      }
    } else {
      edges.emplace_back(from, checked(target, item));
    }
  }
  return edges;
}

}  // namespace pv

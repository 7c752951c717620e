#include "engine/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "engine/error.h"

namespace pv {
namespace {

constexpr double kTransitionScale = 10.0;      // scVelo velocity_embedding's default `scale`
constexpr double kSelfTransitionQuantile = 98;  // percentile of the row maxima
constexpr double kAxesAspect = 0.745161;        // matplotlib's default axes height / width

double signed_sqrt(double v) { return v < 0 ? -std::sqrt(-v) : std::sqrt(v); }

// numpy.percentile's default (linear interpolation between closest ranks).
double percentile_linear(std::vector<double> values, double percent) {
  std::sort(values.begin(), values.end());
  const double position = (double(values.size()) - 1.0) * percent / 100.0;
  const size_t below = size_t(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - double(below)) * (values[above] - values[below]);
}

}  // namespace

double rayleigh_p_value(const double* angles_rad, int64_t n) {
  require(angles_rad != nullptr || n == 0, PV_ERR_INVALID_ARGUMENT, "rayleigh_p_value: angles_rad is null");
  require(n >= 1, PV_ERR_INVALID_ARGUMENT, "rayleigh_p_value: n must be >= 1, got " + std::to_string(n));
  double sum_cos = 0, sum_sin = 0;
  for (int64_t i = 0; i < n; ++i) sum_cos += std::cos(angles_rad[i]), sum_sin += std::sin(angles_rad[i]);
  const double count = double(n);
  const double mean_cos = sum_cos / count, mean_sin = sum_sin / count;
  const double z = count * (mean_cos * mean_cos + mean_sin * mean_sin);
  double correction = 1.0;
  if (n < 50) {
    const double z2 = z * z, z3 = z2 * z, z4 = z3 * z;
    correction = 1.0 + (2.0 * z - z2) / (4.0 * count) -
                 (24.0 * z - 132.0 * z2 + 76.0 * z3 - 9.0 * z4) / (288.0 * count * count);
  }
  return std::exp(-z) * correction;
}

std::vector<double> benjamini_hochberg(const std::vector<double>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    require(!std::isnan(p[i]), PV_ERR_INVALID_ARGUMENT,
            "benjamini_hochberg: p[" + std::to_string(i) + "] is NaN");
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  const double m = double(p.size());
  std::vector<double> q(p.size());
  double running_min = std::numeric_limits<double>::infinity();
  for (size_t rank = p.size(); rank-- > 0;) {
    running_min = std::min(running_min, m / double(rank + 1) * p[order[rank]]);
    q[order[rank]] = std::min(running_min, 1.0);
  }
  return q;
}

Knn knn_graph(const double* x, int64_t cells, int64_t dims, int64_t k) {
  require(cells >= 1, PV_ERR_INVALID_ARGUMENT, "knn_graph: cells must be >= 1");
  require(dims >= 1, PV_ERR_INVALID_ARGUMENT, "knn_graph: dims must be >= 1");
  require(x != nullptr, PV_ERR_INVALID_ARGUMENT, "knn_graph: x is null");
  require(k >= 1 && k <= cells, PV_ERR_INVALID_ARGUMENT,
          "knn_graph: k must be in [1, cells], got k = " + std::to_string(k) + " for " + std::to_string(cells) +
              " cells");
  Knn out;
  out.cells = cells;
  out.k = k;
  out.index.resize(size_t(cells * k));
  out.distance.resize(size_t(cells * k));
#pragma omp parallel
  {
    std::vector<std::pair<double, int64_t>> others(size_t(cells - 1));
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < cells; ++i) {
      const double* xi = x + i * dims;
      size_t n = 0;
      for (int64_t j = 0; j < cells; ++j) {
        if (j == i) continue;
        const double* xj = x + j * dims;
        double squared = 0;
        for (int64_t d = 0; d < dims; ++d) squared += (xj[d] - xi[d]) * (xj[d] - xi[d]);
        others[n++] = {squared, j};
      }
      // Pairs compare by distance, then index: the tie rule.
      std::partial_sort(others.begin(), others.begin() + (k - 1), others.end());
      out.index[i * k] = i;
      out.distance[i * k] = 0.0;
      for (int64_t r = 1; r < k; ++r) {
        out.index[i * k + r] = others[r - 1].second;
        out.distance[i * k + r] = std::sqrt(others[r - 1].first);
      }
    }
  }
  return out;
}

VelocityGraph velocity_graph(const float* X, const float* V, int64_t cells, int64_t genes, const Knn& knn,
                             bool sqrt_transform) {
  require(cells >= 1 && genes >= 1, PV_ERR_INVALID_ARGUMENT, "velocity_graph: cells and genes must be >= 1");
  require(X != nullptr && V != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity_graph: X or V is null");
  require(knn.cells == cells && knn.k >= 1 && int64_t(knn.index.size()) == cells * knn.k,
          PV_ERR_INVALID_ARGUMENT, "velocity_graph: knn does not describe " + std::to_string(cells) + " cells");

  // Checked here: an exception must not leave an OpenMP region.
  for (int64_t neighbour : knn.index)
    require(neighbour >= 0 && neighbour < cells, PV_ERR_INVALID_ARGUMENT,
            "velocity_graph: knn.index holds " + std::to_string(neighbour) + ", outside [0, cells)");

  std::vector<int64_t> kept_genes;
  for (int64_t g = 0; g < genes; ++g) {
    bool finite = true;
    for (int64_t c = 0; c < cells && finite; ++c) finite = !std::isnan(V[c * genes + g]);
    if (finite) kept_genes.push_back(g);
  }
  const int64_t G = int64_t(kept_genes.size());

  // Centred velocities and their norms, over the kept genes.
  std::vector<double> centred_velocity(size_t(cells * G));
  std::vector<double> velocity_norm(size_t(cells), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cells; ++c) {
    double* v = centred_velocity.data() + c * G;
    double mean = 0;
    for (int64_t g = 0; g < G; ++g) {
      const double raw = V[c * genes + kept_genes[g]];
      v[g] = sqrt_transform ? signed_sqrt(raw) : raw;
      mean += v[g];
    }
    mean /= double(std::max<int64_t>(G, 1));
    double squared = 0;
    for (int64_t g = 0; g < G; ++g) v[g] -= mean, squared += v[g] * v[g];
    velocity_norm[c] = std::sqrt(squared);
  }

  std::vector<std::vector<int64_t>> row_indices(size_t(cells));
  std::vector<std::vector<double>> row_cosines(size_t(cells));
  const int64_t k = knn.k;
#pragma omp parallel
  {
    std::vector<char> is_candidate(size_t(cells), 0);
    std::vector<double> displacement(size_t(G));
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < cells; ++i) {
      std::vector<int64_t>& candidates = row_indices[i];
      for (int64_t a = 0; a < k; ++a) {
        const int64_t neighbour = knn.index[i * k + a];
        for (int64_t b = -1; b < k; ++b) {
          const int64_t j = b < 0 ? neighbour : knn.index[neighbour * k + b];
          if (j != i && !is_candidate[j]) is_candidate[j] = 1, candidates.push_back(j);
        }
      }
      std::sort(candidates.begin(), candidates.end());
      const double* vi = centred_velocity.data() + i * G;
      std::vector<double>& cosines = row_cosines[i];
      cosines.resize(candidates.size());
      for (size_t e = 0; e < candidates.size(); ++e) {
        const int64_t j = candidates[e];
        is_candidate[j] = 0;
        double mean = 0;
        for (int64_t g = 0; g < G; ++g) {
          const int64_t gene = kept_genes[g];
          const double raw = double(X[j * genes + gene]) - double(X[i * genes + gene]);
          displacement[g] = sqrt_transform ? signed_sqrt(raw) : raw;
          mean += displacement[g];
        }
        mean /= double(std::max<int64_t>(G, 1));
        double dot = 0, squared = 0;
        for (int64_t g = 0; g < G; ++g) {
          const double d = displacement[g] - mean;
          dot += d * vi[g];
          squared += d * d;
        }
        const double norms = std::sqrt(squared) * velocity_norm[i];
        cosines[e] = norms > 0 ? std::clamp(dot / norms, -1.0, 1.0) : 0.0;
      }
    }
  }

  VelocityGraph graph;
  graph.cells = cells;
  graph.indptr.assign(size_t(cells + 1), 0);
  for (int64_t i = 0; i < cells; ++i) graph.indptr[i + 1] = graph.indptr[i] + int64_t(row_indices[i].size());
  graph.indices.reserve(size_t(graph.indptr[cells]));
  graph.cosine.reserve(size_t(graph.indptr[cells]));
  std::vector<double> confidence(size_t(cells), 0.0);
  for (int64_t i = 0; i < cells; ++i) {
    graph.indices.insert(graph.indices.end(), row_indices[i].begin(), row_indices[i].end());
    graph.cosine.insert(graph.cosine.end(), row_cosines[i].begin(), row_cosines[i].end());
    for (double pi : row_cosines[i]) confidence[i] = std::max(confidence[i], pi);
  }
  const double upper = percentile_linear(confidence, kSelfTransitionQuantile);
  graph.self_transition.resize(size_t(cells));
  for (int64_t i = 0; i < cells; ++i) graph.self_transition[i] = std::clamp(upper - confidence[i], 0.0, 1.0);
  return graph;
}

std::vector<double> velocity_embedding(const VelocityGraph& graph, const double* embedding, int64_t cells,
                                       int64_t dims_used, bool autoscale) {
  require(cells >= 1 && graph.cells == cells && int64_t(graph.indptr.size()) == cells + 1 &&
              int64_t(graph.self_transition.size()) == cells,
          PV_ERR_INVALID_ARGUMENT, "velocity_embedding: graph does not describe " + std::to_string(cells) + " cells");
  require(embedding != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity_embedding: embedding is null");
  require(dims_used >= 1 && (!autoscale || dims_used >= 2), PV_ERR_INVALID_ARGUMENT,
          "velocity_embedding: dims_used must be >= 1 (>= 2 with autoscale), got " + std::to_string(dims_used));
  const int64_t D = dims_used;
  std::vector<double> out(size_t(cells * D), 0.0);
#pragma omp parallel
  {
    std::vector<double> probability, direction;
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < cells; ++i) {
      const int64_t begin = graph.indptr[i], end = graph.indptr[i + 1];
      // Signed transition weights; the self-transition only enters the row normaliser.
      double absolute_sum = std::expm1(kTransitionScale * graph.self_transition[i]);
      probability.clear();
      direction.clear();
      for (int64_t e = begin; e < end; ++e) {
        const double pi = graph.cosine[e];
        const double weight = pi >= 0 ? std::expm1(kTransitionScale * pi) : -std::expm1(-kTransitionScale * pi);
        absolute_sum += std::abs(weight);
        if (weight == 0) continue;  // not an entry of the sparse transition matrix
        probability.push_back(weight);
        const double* ej = embedding + graph.indices[e] * D;
        const double* ei = embedding + i * D;
        double squared = 0;
        for (int64_t d = 0; d < D; ++d) squared += (ej[d] - ei[d]) * (ej[d] - ei[d]);
        const double norm = std::sqrt(squared);
        for (int64_t d = 0; d < D; ++d) direction.push_back(norm > 0 ? (ej[d] - ei[d]) / norm : 0.0);
      }
      double* row = out.data() + i * D;
      if (probability.empty()) {
        std::fill(row, row + D, std::numeric_limits<double>::quiet_NaN());
        continue;
      }
      double mean = 0;
      for (double& p : probability) p /= absolute_sum, mean += p;
      mean /= double(probability.size());
      for (size_t e = 0; e < probability.size(); ++e)
        for (int64_t d = 0; d < D; ++d) row[d] += (probability[e] - mean) * direction[e * D + d];
    }
  }
  if (!autoscale) return out;

  double min_x = std::numeric_limits<double>::infinity(), max_x = -min_x, min_y = min_x, max_y = -min_x;
  for (int64_t i = 0; i < cells; ++i) {
    min_x = std::min(min_x, embedding[i * D]), max_x = std::max(max_x, embedding[i * D]);
    min_y = std::min(min_y, embedding[i * D + 1]), max_y = std::max(max_y, embedding[i * D + 1]);
  }
  const double range_x = max_x - min_x, range_y = max_y - min_y;
  require(range_x > 0 && range_y > 0, PV_ERR_INVALID_ARGUMENT,
          "velocity_embedding: the first two embedding columns must not be constant (autoscale)");
  double length_sum = 0;
  int64_t finite_rows = 0;
  for (int64_t i = 0; i < cells; ++i) {
    const double u = out[i * D] / range_x, v = kAxesAspect * out[i * D + 1] / range_y;
    if (std::isnan(u) || std::isnan(v)) continue;
    length_sum += std::sqrt(u * u + v * v);
    ++finite_rows;
  }
  const double mean_length = finite_rows > 0 ? length_sum / double(finite_rows) : 0.0;
  const double quiver_scale = 1.8 * std::max(10.0, std::sqrt(double(cells))) / 1.1 * mean_length;
  // All-zero arrows have no scale to divide by; they stay zero.
  if (quiver_scale > 0)
    for (double& value : out) value /= 3.0 * quiver_scale;
  return out;
}

std::vector<double> direct_pca_projection(const float* V, int64_t cells, int64_t genes, const double* pcs,
                                          int64_t comps) {
  require(cells >= 1 && genes >= 1 && comps >= 1, PV_ERR_INVALID_ARGUMENT,
          "direct_pca_projection: cells, genes and comps must be >= 1");
  require(V != nullptr && pcs != nullptr, PV_ERR_INVALID_ARGUMENT, "direct_pca_projection: V or pcs is null");
  std::vector<double> column_mean(size_t(genes), 0.0);
  for (int64_t c = 0; c < cells; ++c)
    for (int64_t g = 0; g < genes; ++g) column_mean[g] += V[c * genes + g];
  for (double& m : column_mean) m /= double(cells);
  std::vector<double> out(size_t(cells * comps), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cells; ++c) {
    double* row = out.data() + c * comps;
    for (int64_t g = 0; g < genes; ++g) {
      const double centred = double(V[c * genes + g]) - column_mean[g];
      for (int64_t p = 0; p < comps; ++p) row[p] += centred * pcs[g * comps + p];
    }
  }
  return out;
}

}  // namespace pv

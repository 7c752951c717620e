#include "engine/neighbours.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "engine/error.h"

namespace pv {
namespace {

void check_knn(const Knn& knn, const char* function) {
  const std::string name = function;
  require(knn.cells >= 1 && knn.k >= 1, PV_ERR_INVALID_ARGUMENT, name + ": the kNN graph is empty");
  require(knn.cells < std::numeric_limits<int32_t>::max(), PV_ERR_INVALID_ARGUMENT, name + ": too many cells");
  require(int64_t(knn.index.size()) == knn.cells * knn.k && knn.distance.size() == knn.index.size(),
          PV_ERR_INVALID_ARGUMENT, name + ": knn.index / knn.distance do not hold cells x k entries");
  for (size_t e = 0; e < knn.index.size(); ++e) {
    if (knn.index[e] < 0 || knn.index[e] >= knn.cells)
      fail(PV_ERR_INVALID_ARGUMENT, name + ": knn.index holds " + std::to_string(knn.index[e]) + ", outside [0, cells)");
    if (!(knn.distance[e] >= 0) || std::isinf(knn.distance[e]))
      fail(PV_ERR_INVALID_ARGUMENT, name + ": knn.distance holds " + std::to_string(knn.distance[e]) +
                                        ", not a finite non-negative distance");
  }
}

// Directed (row, column, value) triplets into CSR, rows then columns ascending, zeros dropped.
CellGraph to_csr(int64_t cells, std::vector<std::tuple<int64_t, int32_t, double>> triplets) {
  std::sort(triplets.begin(), triplets.end());
  CellGraph g;
  g.cells = cells;
  g.indptr.assign(size_t(cells + 1), 0);
  for (const auto& [row, column, value] : triplets) {
    if (value == 0) continue;
    g.indices.push_back(column);
    g.values.push_back(value);
    ++g.indptr[size_t(row + 1)];
  }
  for (int64_t i = 0; i < cells; ++i) g.indptr[size_t(i + 1)] += g.indptr[size_t(i)];
  return g;
}

// Cells per block of squared_distances: eight vectors of four doubles, enough independent sums to
// keep both floating-point adders busy.
constexpr int64_t kDistanceBlock = 32;

// squared[j] = sum over d in order of (x_j[d] - x_i[d])^2 for every (padded) cell j, the
// coordinates column-major. Each lane sums its own cell's terms in the scalar order, and the AVX2
// clone is built without FMA (no contraction), so it gives the baseline's sums bit for bit.
__attribute__((always_inline)) inline void squared_distances_body(const double* columns, int64_t padded, int64_t dims,
                                                                  const double* xi, double* squared) {
  for (int64_t j = 0; j < padded; j += kDistanceBlock) {
    double sums[kDistanceBlock] = {};
    for (int64_t d = 0; d < dims; ++d) {
      const double* column = columns + d * padded + j;
      const double centre = xi[d];
#pragma omp simd
      for (int64_t lane = 0; lane < kDistanceBlock; ++lane) {
        const double difference = column[lane] - centre;
        sums[lane] += difference * difference;
      }
    }
    for (int64_t lane = 0; lane < kDistanceBlock; ++lane) squared[j + lane] = sums[lane];
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) void squared_distances_avx2(const double* columns, int64_t padded, int64_t dims,
                                                            const double* xi, double* squared) {
  squared_distances_body(columns, padded, dims, xi, squared);
}
#endif

void squared_distances(const double* columns, int64_t padded, int64_t dims, const double* xi, double* squared) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return squared_distances_avx2(columns, padded, dims, xi, squared);
#endif
  squared_distances_body(columns, padded, dims, xi, squared);
}

}  // namespace

Knn knn_graph(const double* x, int64_t cells, int64_t dims, int64_t k) {
  require(cells >= 1, PV_ERR_INVALID_ARGUMENT, "knn_graph: cells must be >= 1");
  require(dims >= 1, PV_ERR_INVALID_ARGUMENT, "knn_graph: dims must be >= 1");
  require(x != nullptr, PV_ERR_INVALID_ARGUMENT, "knn_graph: x is null");
  require(k >= 1 && k <= cells, PV_ERR_INVALID_ARGUMENT,
          "knn_graph: k must be in [1, cells], got k = " + std::to_string(k) + " for " + std::to_string(cells) +
              " cells");
  for (int64_t e = 0; e < cells * dims; ++e)
    if (!std::isfinite(x[e]))
      fail(PV_ERR_INVALID_ARGUMENT, "knn_graph: x holds " + std::to_string(x[e]) + " at cell " + std::to_string(e / dims) +
                                        ", column " + std::to_string(e % dims));
  Knn out;
  out.cells = cells;
  out.k = k;
  out.index.resize(static_cast<size_t>(cells * k));
  out.distance.resize(static_cast<size_t>(cells * k));
  // The coordinates column-major, padded to whole blocks (the padding is never selected).
  const int64_t padded = (cells + kDistanceBlock - 1) / kDistanceBlock * kDistanceBlock;
  std::vector<double> columns(static_cast<size_t>(dims * padded), 0.0);
  for (int64_t c = 0; c < cells; ++c)
    for (int64_t d = 0; d < dims; ++d) columns[d * padded + c] = x[c * dims + d];
#pragma omp parallel
  {
    std::vector<double> squared(static_cast<size_t>(padded));
    std::vector<std::pair<double, int64_t>> nearest;  // a max-heap of the k - 1 nearest so far
    nearest.reserve(static_cast<size_t>(k));
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < cells; ++i) {
      squared_distances(columns.data(), padded, dims, x + i * dims, squared.data());
      // Pairs compare by distance, then index: the tie rule. The heap keeps exactly the k - 1
      // smallest pairs, as a partial sort would, looking at most cells only once.
      nearest.clear();
      double worst = std::numeric_limits<double>::infinity();  // the heap's largest distance once full
      for (int64_t j = 0; j < cells && k > 1; ++j) {
        if (squared[j] > worst || j == i) continue;  // most cells: one comparison
        const std::pair<double, int64_t> pair{squared[j], j};
        if (int64_t(nearest.size()) < k - 1) {
          nearest.push_back(pair);
          std::push_heap(nearest.begin(), nearest.end());
        } else if (pair < nearest.front()) {
          std::pop_heap(nearest.begin(), nearest.end());
          nearest.back() = pair;
          std::push_heap(nearest.begin(), nearest.end());
        }
        if (int64_t(nearest.size()) == k - 1) worst = nearest.front().first;
      }
      std::sort_heap(nearest.begin(), nearest.end());
      out.index[i * k] = i;
      out.distance[i * k] = 0.0;
      for (int64_t r = 1; r < k; ++r) {
        out.index[i * k + r] = nearest[r - 1].second;
        out.distance[i * k + r] = std::sqrt(nearest[r - 1].first);
      }
    }
  }
  return out;
}

CellGraph umap_connectivities(const Knn& knn) {
  check_knn(knn, "umap_connectivities");
  const int64_t cells = knn.cells, k = knn.k;
  constexpr double kTolerance = 1e-5, kMinDistanceScale = 1e-3;
  const double target = std::log2(double(k));
  double mean_all = 0;
  for (double d : knn.distance) mean_all += d;
  mean_all /= double(knn.distance.size());

  std::vector<double> rho(size_t(cells), 0.0), sigma(size_t(cells), 1.0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < cells; ++i) {
    const double* d = knn.distance.data() + i * k;
    double smallest = 0, mean = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (d[j] > 0 && (smallest == 0 || d[j] < smallest)) smallest = d[j];
      mean += d[j];
    }
    mean /= double(k);
    rho[size_t(i)] = smallest;
    double lo = 0, hi = std::numeric_limits<double>::infinity(), mid = 1;
    for (int step = 0; step < 64; ++step) {
      double sum = 0;
      for (int64_t j = 1; j < k; ++j) {  // the first entry is the cell itself
        const double above = d[j] - smallest;
        sum += above > 0 ? std::exp(-above / mid) : 1.0;
      }
      if (std::fabs(sum - target) < kTolerance) break;
      if (sum > target) {
        hi = mid;
        mid = (lo + hi) / 2;
      } else {
        lo = mid;
        mid = std::isinf(hi) ? mid * 2 : (lo + hi) / 2;
      }
    }
    sigma[size_t(i)] = std::max(mid, kMinDistanceScale * (smallest > 0 ? mean : mean_all));
  }

  // W and its transpose as triplets; C = W + W^T - W o W^T entrywise.
  std::vector<std::tuple<int64_t, int32_t, double>> directed;
  directed.reserve(size_t(cells * k));
  for (int64_t i = 0; i < cells; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t other = knn.index[size_t(i * k + j)];
      if (other == i) continue;
      const double above = knn.distance[size_t(i * k + j)] - rho[size_t(i)];
      const double w = above <= 0 || sigma[size_t(i)] == 0 ? 1.0 : std::exp(-above / sigma[size_t(i)]);
      directed.emplace_back(i, int32_t(other), w);
    }
  std::sort(directed.begin(), directed.end());
  auto weight = [&](int64_t row, int32_t column) {  // W[row, column], 0 when absent
    auto at = std::lower_bound(directed.begin(), directed.end(), std::make_tuple(row, column, -1.0));
    return at != directed.end() && std::get<0>(*at) == row && std::get<1>(*at) == column ? std::get<2>(*at) : 0.0;
  };
  std::vector<std::tuple<int64_t, int32_t, double>> symmetric;
  symmetric.reserve(directed.size() * 2);
  for (const auto& [row, column, w] : directed) {
    const double back = weight(column, int32_t(row));
    symmetric.emplace_back(row, column, w + back - w * back);
    if (back == 0) symmetric.emplace_back(column, int32_t(row), w);  // only one direction was a neighbour
  }
  return to_csr(cells, std::move(symmetric));
}

CellGraph knn_distances(const Knn& knn) {
  check_knn(knn, "knn_distances");
  std::vector<std::tuple<int64_t, int32_t, double>> triplets;
  triplets.reserve(knn.index.size());
  for (int64_t i = 0; i < knn.cells; ++i)
    for (int64_t j = 0; j < knn.k; ++j) {
      const int64_t other = knn.index[size_t(i * knn.k + j)];
      if (other != i) triplets.emplace_back(i, int32_t(other), knn.distance[size_t(i * knn.k + j)]);
    }
  return to_csr(knn.cells, std::move(triplets));
}

}  // namespace pv

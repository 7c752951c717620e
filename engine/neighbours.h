// The neighbour graph the statistics rest on (scanpy's `pp.neighbors` as scVelo calls it,
// shared/spec/STATISTICS.md): the exact Euclidean kNN and UMAP's fuzzy-simplicial-set
// connectivities over it.
#pragma once

#include <cstdint>
#include <vector>

namespace pv {

// Exact Euclidean k nearest neighbours. Row i of `index` / `distance` (k entries) starts with i
// itself (distance 0), then the others by increasing distance, ties by increasing index.
struct Knn {
  int64_t cells = 0, k = 0;
  std::vector<int64_t> index;    // cells x k
  std::vector<double> distance;  // cells x k
};

Knn knn_graph(const double* x, int64_t cells, int64_t dims, int64_t k = 30);

// A symmetric cells x cells weight matrix as CSR, columns ascending within a row, no zeros stored.
struct CellGraph {
  int64_t cells = 0;
  std::vector<int64_t> indptr;  // cells + 1
  std::vector<int32_t> indices;
  std::vector<double> values;
};

// UMAP's connectivities (umap-learn's fuzzy_simplicial_set with scanpy's defaults): per cell,
// rho = its smallest non-zero distance and sigma such that sum over its k - 1 neighbours of
// exp(-max(0, d - rho) / sigma) = log2(k) (bisection as umap: 64 steps, tolerance 1e-5, sigma at
// least 1e-3 times the mean distance); w = exp(-(d - rho) / sigma), 1 within rho; then
// C = W + W^T - W o W^T.
CellGraph umap_connectivities(const Knn& knn);

// The kNN distances without the self entries, as CSR (scanpy's obsp/distances).
CellGraph knn_distances(const Knn& knn);

}  // namespace pv

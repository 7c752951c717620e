// Principal components of a sparse cells x genes matrix (centred implicitly, never densified), by
// randomised subspace iteration. Used for simulated embeddings and the PCA velocity projection.
#pragma once

#include <cstdint>
#include <vector>

#include "io/anndata.h"

namespace pv {

struct CsrView {
  int64_t rows = 0, cols = 0;
  const int64_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* values = nullptr;
};

struct PcaResult {
  int64_t rows = 0, cols = 0, components = 0;
  std::vector<double> scores;    // rows x components, row-major
  std::vector<double> loadings;  // cols x components, row-major (the PCs)
  std::vector<double> mean;      // cols: the column means that were removed
  std::vector<double> variance;  // components: explained variance (ddof = 1)
};

// Each component's sign is fixed so that its largest-magnitude loading is positive, so the result
// is deterministic for a seed.
PcaResult pca(const CsrView& x, int64_t components, int iterations = 12, uint64_t seed = 0);

// PCA of log1p(counts per 10,000) of a cells x genes count matrix (dense or CSR): the usual
// expression space for the kNN graph and embeddings; zeros stay zeros, so it stays sparse.
PcaResult log_expression_pca(const io::CountMatrix& counts, int64_t components, uint64_t seed = 0);

// Eigen-decomposition of a small symmetric matrix (n x n, row-major) by cyclic Jacobi rotations:
// eigenvalues in descending order, eigenvectors as columns of `vectors`.
void symmetric_eigen(int64_t n, std::vector<double> a, std::vector<double>* values, std::vector<double>* vectors);

}  // namespace pv

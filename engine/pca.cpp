#include "engine/pca.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"
#include "kernels/philox.h"

namespace pv {
namespace {

// y (rows x k) = (X - 1 mean^T) q, q cols x k.
void times(const CsrView& x, const std::vector<double>& mean, const std::vector<double>& q, int64_t k,
           std::vector<double>* y) {
  std::vector<double> shift(static_cast<size_t>(k), 0.0);
  for (int64_t j = 0; j < x.cols; ++j)
    for (int64_t c = 0; c < k; ++c) shift[c] += mean[j] * q[j * k + c];
  y->assign(size_t(x.rows * k), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < x.rows; ++r) {
    double* out = y->data() + r * k;
    for (int64_t p = x.indptr[r]; p < x.indptr[r + 1]; ++p) {
      const double v = x.values[p];
      const double* row = q.data() + int64_t(x.indices[p]) * k;
      for (int64_t c = 0; c < k; ++c) out[c] += v * row[c];
    }
    for (int64_t c = 0; c < k; ++c) out[c] -= shift[c];
  }
}

// z (cols x k) = (X - 1 mean^T)^T y, accumulated per thread then summed in a fixed order.
void times_transposed(const CsrView& x, const std::vector<double>& mean, const std::vector<double>& y, int64_t k,
                      std::vector<double>* z) {
  std::vector<double> column_sum(static_cast<size_t>(k), 0.0);
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t c = 0; c < k; ++c) column_sum[c] += y[r * k + c];
  z->assign(size_t(x.cols * k), 0.0);
  // Rows split into fixed chunks (independent of the thread count) so the sum is deterministic.
  const int64_t chunks = std::min<int64_t>(16, std::max<int64_t>(1, x.rows));
  std::vector<std::vector<double>> partial(static_cast<size_t>(chunks), std::vector<double>(static_cast<size_t>(x.cols * k), 0.0));
#pragma omp parallel for schedule(static)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    std::vector<double>& acc = partial[chunk];
    for (int64_t r = x.rows * chunk / chunks; r < x.rows * (chunk + 1) / chunks; ++r)
      for (int64_t p = x.indptr[r]; p < x.indptr[r + 1]; ++p) {
        const double v = x.values[p];
        double* out = acc.data() + int64_t(x.indices[p]) * k;
        for (int64_t c = 0; c < k; ++c) out[c] += v * y[r * k + c];
      }
  }
  for (const auto& acc : partial)
    for (size_t i = 0; i < acc.size(); ++i) (*z)[i] += acc[i];
  for (int64_t j = 0; j < x.cols; ++j)
    for (int64_t c = 0; c < k; ++c) (*z)[j * k + c] -= mean[j] * column_sum[c];
}

// Modified Gram-Schmidt on the k columns of q (n x k).
void orthonormalise(std::vector<double>* q, int64_t n, int64_t k) {
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t prev = 0; prev < c; ++prev) {
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += (*q)[i * k + c] * (*q)[i * k + prev];
      for (int64_t i = 0; i < n; ++i) (*q)[i * k + c] -= dot * (*q)[i * k + prev];
    }
    double norm = 0;
    for (int64_t i = 0; i < n; ++i) norm += (*q)[i * k + c] * (*q)[i * k + c];
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < n; ++i) (*q)[i * k + c] = norm > 0 ? (*q)[i * k + c] / norm : 0.0;
  }
}

}  // namespace

void symmetric_eigen(int64_t n, std::vector<double> a, std::vector<double>* values, std::vector<double>* vectors) {
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) off += a[i * n + j] * a[i * n + j];
    if (off < 1e-30) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // A <- A J
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // A <- J^T A
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i * n + i] > a[j * n + j]; });
  values->resize(size_t(n));
  vectors->assign(size_t(n * n), 0.0);
  for (int64_t c = 0; c < n; ++c) {
    (*values)[c] = a[order[c] * n + order[c]];
    for (int64_t r = 0; r < n; ++r) (*vectors)[r * n + c] = v[r * n + order[c]];
  }
}

PcaResult pca(const CsrView& x, int64_t components, int iterations, uint64_t seed) {
  require(x.rows >= 2 && x.cols >= 1, PV_ERR_INVALID_ARGUMENT, "pca: needs at least 2 rows and 1 column");
  components = std::min<int64_t>(components, std::min(x.rows - 1, x.cols));
  require(components >= 1, PV_ERR_INVALID_ARGUMENT, "pca: needs at least one component");
  const int64_t k = std::min<int64_t>(components + 6, x.cols);

  PcaResult out;
  out.rows = x.rows;
  out.cols = x.cols;
  out.components = components;
  out.mean.assign(size_t(x.cols), 0.0);
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t p = x.indptr[r]; p < x.indptr[r + 1]; ++p) out.mean[x.indices[p]] += x.values[p];
  for (double& m : out.mean) m /= double(x.rows);

  std::vector<double> q(static_cast<size_t>(x.cols * k)), y, z;
  for (int64_t i = 0; i < x.cols * k; ++i) q[i] = normal_at(seed, 0x5043ull, uint64_t(i));
  orthonormalise(&q, x.cols, k);
  for (int it = 0; it < iterations; ++it) {
    times(x, out.mean, q, k, &y);
    times_transposed(x, out.mean, y, k, &z);
    q.swap(z);
    orthonormalise(&q, x.cols, k);
  }
  // Rayleigh-Ritz: eigen-decompose the k x k projected covariance.
  times(x, out.mean, q, k, &y);
  std::vector<double> gram(static_cast<size_t>(k * k), 0.0);
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t a = 0; a < k; ++a)
      for (int64_t b = 0; b < k; ++b) gram[a * k + b] += y[r * k + a] * y[r * k + b];
  std::vector<double> eigenvalues, eigenvectors;
  symmetric_eigen(k, gram, &eigenvalues, &eigenvectors);

  out.loadings.assign(size_t(x.cols * components), 0.0);
  out.scores.assign(size_t(x.rows * components), 0.0);
  out.variance.resize(size_t(components));
  for (int64_t c = 0; c < components; ++c) {
    for (int64_t j = 0; j < x.cols; ++j) {
      double sum = 0;
      for (int64_t a = 0; a < k; ++a) sum += q[j * k + a] * eigenvectors[a * k + c];
      out.loadings[j * components + c] = sum;
    }
    int64_t largest = 0;
    for (int64_t j = 1; j < x.cols; ++j)
      if (std::fabs(out.loadings[j * components + c]) > std::fabs(out.loadings[largest * components + c])) largest = j;
    const double sign = out.loadings[largest * components + c] < 0 ? -1.0 : 1.0;
    for (int64_t j = 0; j < x.cols; ++j) out.loadings[j * components + c] *= sign;
    for (int64_t r = 0; r < x.rows; ++r) {
      double sum = 0;
      for (int64_t a = 0; a < k; ++a) sum += y[r * k + a] * eigenvectors[a * k + c];
      out.scores[r * components + c] = sign * sum;
    }
    out.variance[c] = eigenvalues[c] / double(x.rows - 1);
  }
  return out;
}

PcaResult log_expression_pca(const io::CountMatrix& counts, int64_t components, uint64_t seed) {
  const int64_t C = counts.rows, G = counts.cols;
  std::vector<int64_t> indptr(static_cast<size_t>(C + 1), 0);
  std::vector<int32_t> indices;
  std::vector<float> values;
  for (int64_t c = 0; c < C; ++c) {
    const double total = counts.row_sum(c);
    const double scale = total > 0 ? 1e4 / total : 0.0;
    auto add = [&](int64_t g, float v) {
      if (v == 0.0f) return;
      indices.push_back(int32_t(g));
      values.push_back(float(std::log1p(double(v) * scale)));
    };
    if (counts.sparse) {
      for (int64_t p = counts.indptr[c]; p < counts.indptr[c + 1]; ++p) add(counts.indices[p], counts.data[p]);
    } else {
      for (int64_t g = 0; g < G; ++g) add(g, counts.dense[c * G + g]);
    }
    indptr[c + 1] = int64_t(indices.size());
  }
  return pca({C, G, indptr.data(), indices.data(), values.data()}, components, 12, seed);
}

}  // namespace pv

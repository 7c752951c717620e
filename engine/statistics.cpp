#include "engine/statistics.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "engine/correlation.h"
#include "engine/error.h"
#include "engine/pca.h"
#include "kernels/projection.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace pv {
namespace {

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

// The CSR graph from per-row candidates and cosines, with scVelo's self-transitions.
VelocityGraph assemble_graph(int64_t cells, const std::vector<std::vector<int64_t>>& row_indices,
                             const std::vector<std::vector<double>>& row_cosines) {
  VelocityGraph graph;
  graph.cells = cells;
  graph.indptr.assign(static_cast<size_t>(cells + 1), 0);
  for (int64_t i = 0; i < cells; ++i) graph.indptr[i + 1] = graph.indptr[i] + int64_t(row_indices[i].size());
  graph.indices.reserve(static_cast<size_t>(graph.indptr[cells]));
  graph.cosine.reserve(static_cast<size_t>(graph.indptr[cells]));
  std::vector<double> confidence(static_cast<size_t>(cells), 0.0);
  for (int64_t i = 0; i < cells; ++i) {
    graph.indices.insert(graph.indices.end(), row_indices[i].begin(), row_indices[i].end());
    graph.cosine.insert(graph.cosine.end(), row_cosines[i].begin(), row_cosines[i].end());
    for (double pi : row_cosines[i]) confidence[i] = std::max(confidence[i], pi);
  }
  graph.self_transition = self_transitions(confidence);
  return graph;
}

// Each cell's candidates: its neighbours and their neighbours, without itself, ascending.
std::vector<std::vector<int64_t>> candidate_rows(const Knn& knn) {
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(knn.cells));
  const int64_t k = knn.k;
#pragma omp parallel
  {
    std::vector<char> is_candidate(static_cast<size_t>(knn.cells), 0);
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < knn.cells; ++i) {
      std::vector<int64_t>& candidates = rows[i];
      for (int64_t a = 0; a < k; ++a) {
        const int64_t neighbour = knn.index[i * k + a];
        for (int64_t b = -1; b < k; ++b) {
          const int64_t j = b < 0 ? neighbour : knn.index[neighbour * k + b];
          if (j != i && !is_candidate[j]) is_candidate[j] = 1, candidates.push_back(j);
        }
      }
      for (int64_t j : candidates) is_candidate[j] = 0;
      std::sort(candidates.begin(), candidates.end());
    }
  }
  return rows;
}

// The cells breadth first over the kNN graph (from cell 0, then from the first cell not reached).
std::vector<int64_t> neighbourhood_order(const Knn& knn) {
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(knn.cells));
  std::vector<char> reached(static_cast<size_t>(knn.cells), 0);
  for (int64_t start = 0; start < knn.cells; ++start) {
    if (reached[start]) continue;
    reached[start] = 1;
    order.push_back(start);
    for (size_t next = order.size() - 1; next < order.size(); ++next)
      for (int64_t a = 0; a < knn.k; ++a) {
        const int64_t j = knn.index[order[next] * knn.k + a];
        if (!reached[j]) reached[j] = 1, order.push_back(j);
      }
  }
  return order;
}

// Eight floats: one AVX2 register in the haswell clone below, two SSE registers in the default one.
typedef float Lane8 __attribute__((vector_size(32)));

// Through memory: passing or returning a 32-byte vector by value has an ABI that differs with AVX.
inline void load8(Lane8& v, const float* p) { __builtin_memcpy(&v, p, sizeof v); }
inline void store8(float* p, const Lane8& v) { __builtin_memcpy(p, &v, sizeof v); }

// Fields per candidate_dots call, candidates per register tile, and genes per call: the fields'
// velocities over a sweep (16 KiB) stay in L1 while every candidate's row passes by once.
constexpr int64_t kDotFields = 16;
constexpr int64_t kDotRows = 5;
constexpr int64_t kDotSweep = 256;

// dots[e * 16 + f] += sum over g in [begin, end) of (X_j(e)[g] - x_i[g]) vt[g * 16 + f] for every
// candidate row X_j(e) and each of 16 fields, vt holding the fields' centred velocities gene-major.
// Vectorised over the fields, the sums in registers for the whole gene range (no horizontal
// sums): five candidates x 16 fields = 10 accumulators, each velocity load serving five
// candidates. The displacements are formed eight genes at a time as vectors into a small buffer
// and broadcast from it, a load rather than a shuffle on the FMA pipes: about 80 % of the two FMA
// pipes' peak, against about 60 % with scalar differences broadcast from registers (the same sums,
// bit for bit, in the same gene order). Measured slower: 32 fields x 2 candidates (the velocities
// re-loaded per product), and a tile's displacements over the whole sweep formed first (the rows'
// loads then no longer overlap the products).
__attribute__((always_inline)) inline void candidate_dots_body(const float* xi, const float* const* xj,
                                                               int64_t candidates, const float* vt, int64_t begin,
                                                               int64_t end, float* dots) {
  const int64_t vector_end = begin + (end - begin) / 8 * 8;
  for (int64_t e = 0; e < candidates; e += kDotRows) {
    const int64_t rows = std::min(kDotRows, candidates - e);
    // A short last tile repeats its last row; those sums are not stored.
    const float* r[kDotRows];
    for (int64_t k = 0; k < kDotRows; ++k) r[k] = xj[e + std::min(k, rows - 1)];
    float* out = dots + e * kDotFields;
    Lane8 sum[kDotRows][2] = {};
    for (int64_t k = 0; k < rows; ++k) load8(sum[k][0], out + k * kDotFields), load8(sum[k][1], out + k * kDotFields + 8);
    float d[kDotRows][8];
    for (int64_t g = begin; g < end; g += 8) {
      const int64_t width = g < vector_end ? 8 : end - g;
      if (width == 8) {
        Lane8 x, y;
        load8(x, xi + g);
        for (int64_t k = 0; k < kDotRows; ++k) load8(y, r[k] + g), store8(d[k], y - x);
      } else {
        for (int64_t k = 0; k < kDotRows; ++k)
          for (int64_t l = 0; l < width; ++l) d[k][l] = r[k][g + l] - xi[g + l];
      }
      for (int64_t l = 0; l < width; ++l) {
        Lane8 v0, v1;
        load8(v0, vt + (g + l) * kDotFields), load8(v1, vt + (g + l) * kDotFields + 8);
        for (int64_t k = 0; k < kDotRows; ++k) sum[k][0] += d[k][l] * v0, sum[k][1] += d[k][l] * v1;
      }
    }
    for (int64_t k = 0; k < rows; ++k) store8(out + k * kDotFields, sum[k][0]), store8(out + k * kDotFields + 8, sum[k][1]);
  }
}

// squares[e] += sum over g in [begin, end) of (X_j(e)[g] - x_i[g] - mean[e])^2 for every candidate
// row (mean[e]: the displacement's mean over all genes, so the sum is of centred values and a pure
// shift gives ~0, not a difference of large sums), four rows at a time, eight genes per vector,
// summed in float over the range and added in double.
__attribute__((always_inline)) inline void displacement_squares_body(const float* xi, const float* const* xj,
                                                                     const float* mean, int64_t candidates,
                                                                     int64_t begin, int64_t end, double* squares) {
  const int64_t vector_end = begin + (end - begin) / 8 * 8;
  for (int64_t e = 0; e < candidates; e += kDotRows) {
    const int64_t rows = std::min(kDotRows, candidates - e);
    const float* r[kDotRows];
    for (int64_t k = 0; k < kDotRows; ++k) r[k] = xj[e + std::min(k, rows - 1)];
    Lane8 a[kDotRows] = {};
    float m[kDotRows];
    for (int64_t k = 0; k < kDotRows; ++k) m[k] = mean[e + std::min(k, rows - 1)];
    for (int64_t g = begin; g < vector_end; g += 8) {
      Lane8 x, y;
      load8(x, xi + g);
      for (int64_t k = 0; k < kDotRows; ++k) {
        load8(y, r[k] + g);
        const Lane8 d = y - x - m[k];
        a[k] += d * d;
      }
    }
    for (int64_t k = 0; k < rows; ++k) {
      float sum = 0;
      for (int lane = 0; lane < 8; ++lane) sum += a[k][lane];
      for (int64_t g = vector_end; g < end; ++g) {
        const float d = r[k][g] - xi[g] - m[k];
        sum += d * d;
      }
      squares[e + k] += sum;
    }
  }
}

// pi[m] and weight[m] = its transition weight for the m-th of n x 16 (candidate, field) dot
// products (field fastest), from the candidates' displacement norms and the fields' velocity
// norms. Two loops, each of which GCC vectorises (this file is built with -fno-trapping-math, so
// the guarded division may be speculated); in one loop, jump threading through the clipped
// cosines' constant weights leaves branches that it cannot.
__attribute__((always_inline)) inline void entry_weights_body(const float* dots, const double* displacement_norm,
                                                              const double* velocity_norm, int64_t n, double* pi,
                                                              double* weight) {
  for (int64_t e = 0; e < n; ++e) {
    const double norm = displacement_norm[e];
#pragma omp simd
    for (int64_t k = 0; k < kDotFields; ++k)
      pi[e * kDotFields + k] = pearson_cosine(double(dots[e * kDotFields + k]), norm, velocity_norm[k]);
  }
#pragma omp simd
  for (int64_t m = 0; m < n * kDotFields; ++m) weight[m] = transition_weight(pi[m]);
}

// vt[g * 16 + k] = rows[k * genes + g]: 16 field rows gene-major for candidate_dots.
__attribute__((always_inline)) inline void transpose_fields_body(const float* rows, int64_t genes, float* vt) {
  for (int64_t g = 0; g < genes; ++g)
    for (int64_t k = 0; k < kDotFields; ++k) vt[g * kDotFields + k] = rows[k * genes + g];
}

// The bodies compiled for AVX2 + FMA and for the baseline, chosen by what the CPU reports. (GCC's
// target_clones("arch=haswell") would not do: its dispatcher asks whether the CPU *is* a Haswell,
// so every AMD CPU got the baseline clone.)
bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2;
#else
  return false;
#endif
}
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void candidate_dots_avx2(const float* xi, const float* const* xj,
                                                             int64_t candidates, const float* vt, int64_t begin,
                                                             int64_t end, float* dots) {
  candidate_dots_body(xi, xj, candidates, vt, begin, end, dots);
}
__attribute__((target("avx2,fma"))) void displacement_squares_avx2(const float* xi, const float* const* xj,
                                                                   const float* mean, int64_t candidates, int64_t begin,
                                                                   int64_t end, double* squares) {
  displacement_squares_body(xi, xj, mean, candidates, begin, end, squares);
}
// Eight genes of eight fields at a time, transposed in registers: whole-vector stores where one
// float per 64-byte line each missed L1.
__attribute__((target("avx2"))) void transpose_fields_avx2(const float* rows, int64_t genes, float* vt) {
  const int64_t vector_end = genes / 8 * 8;
  for (int64_t g = 0; g < vector_end; g += 8)
    for (int64_t half = 0; half < kDotFields; half += 8) {
      const float* r = rows + half * genes + g;
      const __m256 t0 = _mm256_unpacklo_ps(_mm256_loadu_ps(r), _mm256_loadu_ps(r + genes));
      const __m256 t1 = _mm256_unpackhi_ps(_mm256_loadu_ps(r), _mm256_loadu_ps(r + genes));
      const __m256 t2 = _mm256_unpacklo_ps(_mm256_loadu_ps(r + 2 * genes), _mm256_loadu_ps(r + 3 * genes));
      const __m256 t3 = _mm256_unpackhi_ps(_mm256_loadu_ps(r + 2 * genes), _mm256_loadu_ps(r + 3 * genes));
      const __m256 t4 = _mm256_unpacklo_ps(_mm256_loadu_ps(r + 4 * genes), _mm256_loadu_ps(r + 5 * genes));
      const __m256 t5 = _mm256_unpackhi_ps(_mm256_loadu_ps(r + 4 * genes), _mm256_loadu_ps(r + 5 * genes));
      const __m256 t6 = _mm256_unpacklo_ps(_mm256_loadu_ps(r + 6 * genes), _mm256_loadu_ps(r + 7 * genes));
      const __m256 t7 = _mm256_unpackhi_ps(_mm256_loadu_ps(r + 6 * genes), _mm256_loadu_ps(r + 7 * genes));
      // Fields 0-3 (s0-s3) and 4-7 (s4-s7) of genes (0, 4), (1, 5), (2, 6), (3, 7) in the two 128-bit halves.
      const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* out = vt + g * kDotFields + half;
      _mm256_storeu_ps(out + 0 * kDotFields, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(out + 1 * kDotFields, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(out + 2 * kDotFields, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(out + 3 * kDotFields, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(out + 4 * kDotFields, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(out + 5 * kDotFields, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(out + 6 * kDotFields, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(out + 7 * kDotFields, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
  for (int64_t g = vector_end; g < genes; ++g)
    for (int64_t k = 0; k < kDotFields; ++k) vt[g * kDotFields + k] = rows[k * genes + g];
}
// AVX2 without FMA: no contraction, so the weights equal the scalar path's (velocity_embedding) bit for bit.
__attribute__((target("avx2"))) void entry_weights_avx2(const float* dots, const double* displacement_norm,
                                                        const double* velocity_norm, int64_t n, double* pi,
                                                        double* weight) {
  entry_weights_body(dots, displacement_norm, velocity_norm, n, pi, weight);
}
#define PV_AVX2_OR_BASELINE(name, ...) \
  do {                                  \
    if (cpu_has_avx2_fma()) return name##_avx2(__VA_ARGS__); \
    name##_body(__VA_ARGS__);           \
  } while (0)
#else
#define PV_AVX2_OR_BASELINE(name, ...) name##_body(__VA_ARGS__)
#endif
void candidate_dots(const float* xi, const float* const* xj, int64_t candidates, const float* vt, int64_t begin,
                    int64_t end, float* dots) {
  PV_AVX2_OR_BASELINE(candidate_dots, xi, xj, candidates, vt, begin, end, dots);
}
void displacement_squares(const float* xi, const float* const* xj, const float* mean, int64_t candidates, int64_t begin,
                          int64_t end, double* squares) {
  PV_AVX2_OR_BASELINE(displacement_squares, xi, xj, mean, candidates, begin, end, squares);
}
void entry_weights(const float* dots, const double* displacement_norm, const double* velocity_norm, int64_t n,
                   double* pi, double* weight) {
  PV_AVX2_OR_BASELINE(entry_weights, dots, displacement_norm, velocity_norm, n, pi, weight);
}
void transpose_fields(const float* rows, int64_t genes, float* vt) {
  PV_AVX2_OR_BASELINE(transpose_fields, rows, genes, vt);
}
#undef PV_AVX2_OR_BASELINE

// Each cell's candidates, after checking what the velocity graphs are given.
std::vector<std::vector<int64_t>> checked_candidate_rows(const float* X, int64_t cells, int64_t genes, const Knn& knn) {
  require(cells >= 1 && genes >= 1, PV_ERR_INVALID_ARGUMENT, "velocity_graphs: cells and genes must be >= 1");
  require(X != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity_graphs: X is null");
  require(knn.cells == cells && knn.k >= 1 && int64_t(knn.index.size()) == cells * knn.k,
          PV_ERR_INVALID_ARGUMENT, "velocity_graphs: knn does not describe " + std::to_string(cells) + " cells");
  for (int64_t neighbour : knn.index)
    if (neighbour < 0 || neighbour >= cells)
      fail(PV_ERR_INVALID_ARGUMENT, "velocity_graphs: knn.index holds " + std::to_string(neighbour) + ", outside [0, cells)");
  return candidate_rows(knn);
}

// Whether any of the fields (of `values` floats each, none may be null) holds a NaN.
bool any_nan_field(const float* const* V, int64_t fields, int64_t values) {
  require(fields >= 1 && V != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity_graphs: no velocity fields");
  for (int64_t f = 0; f < fields; ++f)
    require(V[f] != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity_graphs: field " + std::to_string(f) + " is null");
  for (int64_t f = 0; f < fields; ++f)
    for (int64_t e = 0; e < values; ++e)
      if (std::isnan(V[f][e])) return true;
  return false;
}

// A graph of several fields shares its genes, so it cannot drop a field's NaN genes as
// velocity_graph does: such fields are refused.
void require_finite_fields(const float* const* V, int64_t fields, int64_t values) {
  if (any_nan_field(V, fields, values))
    fail(PV_ERR_INVALID_ARGUMENT, "velocity_graphs: a velocity field holds NaN (velocity_graph drops such genes)");
}

// self_transitions of each of `fields` blocks of `cells` confidences.
std::vector<double> field_self_transitions(const std::vector<double>& confidence, int64_t fields, int64_t cells) {
  std::vector<double> out;
  out.reserve(confidence.size());
  for (int64_t f = 0; f < fields; ++f) {
    const std::vector<double> s =
        self_transitions(std::vector<double>(confidence.begin() + f * cells, confidence.begin() + (f + 1) * cells));
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

}  // namespace

std::vector<double> self_transitions(const std::vector<double>& confidence) {
  require(!confidence.empty(), PV_ERR_INVALID_ARGUMENT, "self_transitions: no cells");
  const double upper = percentile_linear(confidence, kSelfTransitionQuantile);
  std::vector<double> out(confidence.size());
  for (size_t i = 0; i < confidence.size(); ++i) out[i] = std::clamp(upper - confidence[i], 0.0, 1.0);
  return out;
}

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
    if (std::isnan(p[i])) fail(PV_ERR_INVALID_ARGUMENT, "benjamini_hochberg: p[" + std::to_string(i) + "] is NaN");
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

VelocityGraph velocity_graph(const float* X, const float* V, int64_t cells, int64_t genes, const Knn& knn,
                             bool sqrt_transform) {
  require(cells >= 1 && genes >= 1, PV_ERR_INVALID_ARGUMENT, "velocity_graph: cells and genes must be >= 1");
  require(X != nullptr && V != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity_graph: X or V is null");
  require(knn.cells == cells && knn.k >= 1 && int64_t(knn.index.size()) == cells * knn.k,
          PV_ERR_INVALID_ARGUMENT, "velocity_graph: knn does not describe " + std::to_string(cells) + " cells");

  // Checked here: an exception must not leave an OpenMP region.
  for (int64_t neighbour : knn.index)
    if (neighbour < 0 || neighbour >= cells)
      fail(PV_ERR_INVALID_ARGUMENT, "velocity_graph: knn.index holds " + std::to_string(neighbour) + ", outside [0, cells)");

  std::vector<int64_t> kept_genes;
  for (int64_t g = 0; g < genes; ++g) {
    bool finite = true;
    for (int64_t c = 0; c < cells && finite; ++c) finite = !std::isnan(V[c * genes + g]);
    if (finite) kept_genes.push_back(g);
  }
  const int64_t G = int64_t(kept_genes.size());

  // Centred velocities and their norms, over the kept genes.
  std::vector<double> centred_velocity(static_cast<size_t>(cells * G));
  std::vector<double> velocity_norm(static_cast<size_t>(cells), 0.0);
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

  // Without the sqrt transform the centred correlation needs only dot products over the kept
  // genes: sum (d - mean d) v_i = X_j . v_i - X_i . v_i (v_i is centred), and
  // |d - mean d|^2 = |X_j|^2 - 2 X_i . X_j + |X_i|^2 - G (mean d)^2, with d = X_j - X_i. The rows
  // of X are gathered once into a contiguous matrix so those products vectorise.
  std::vector<float> compact;
  std::vector<double> row_sum, row_squares;
  if (!sqrt_transform) {
    compact.resize(static_cast<size_t>(cells * G));
    row_sum.assign(static_cast<size_t>(cells), 0.0);
    row_squares.assign(static_cast<size_t>(cells), 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < cells; ++c) {
      float* row = compact.data() + c * G;
      double sum = 0, squares = 0;
      for (int64_t g = 0; g < G; ++g) {
        row[g] = X[c * genes + kept_genes[g]];
        sum += row[g];
        squares += double(row[g]) * row[g];
      }
      row_sum[c] = sum;
      row_squares[c] = squares;
    }
  }

  const std::vector<std::vector<int64_t>> row_indices = candidate_rows(knn);
  std::vector<std::vector<double>> row_cosines(static_cast<size_t>(cells));
#pragma omp parallel
  {
    std::vector<double> displacement(static_cast<size_t>(G));
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < cells; ++i) {
      const std::vector<int64_t>& candidates = row_indices[i];
      const double* vi = centred_velocity.data() + i * G;
      std::vector<double>& cosines = row_cosines[i];
      cosines.resize(candidates.size());
      if (!sqrt_transform) {
        const float* xi = compact.data() + i * G;
        double xi_v = 0;
#pragma omp simd reduction(+ : xi_v)
        for (int64_t g = 0; g < G; ++g) xi_v += double(xi[g]) * vi[g];
        for (size_t e = 0; e < candidates.size(); ++e) {
          const int64_t j = candidates[e];
          const float* xj = compact.data() + j * G;
          double xj_v = 0, xi_xj = 0;
#pragma omp simd reduction(+ : xj_v, xi_xj)
          for (int64_t g = 0; g < G; ++g) {
            xj_v += double(xj[g]) * vi[g];
            xi_xj += double(xj[g]) * double(xi[g]);
          }
          const double squared = centred_squared_norm(row_sum[j] - row_sum[i], row_squares[j] - 2 * xi_xj + row_squares[i],
                                                      double(std::max<int64_t>(G, 1)), row_squares[i], row_squares[j]);
          cosines[e] = pearson_cosine(xj_v - xi_v, std::sqrt(squared), velocity_norm[i]);
        }
        continue;
      }
      for (size_t e = 0; e < candidates.size(); ++e) {
        const int64_t j = candidates[e];
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
        cosines[e] = pearson_cosine(dot, std::sqrt(squared), velocity_norm[i]);
      }
    }
  }

  return assemble_graph(cells, row_indices, row_cosines);
}

DisplacementPlan::DisplacementPlan(const float* X_in, int64_t cells_in, int64_t genes_in, const Knn& knn)
    : X(X_in), cells(cells_in), genes(genes_in) {
  candidates = checked_candidate_rows(X, cells, genes, knn);
  order = neighbourhood_order(knn);
  const int64_t G = genes;

  std::vector<double> row_sum(static_cast<size_t>(cells), 0.0), row_squares(static_cast<size_t>(cells), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cells; ++c) {
    double sum = 0, squares = 0;
    for (int64_t g = 0; g < G; ++g) sum += X[c * G + g], squares += double(X[c * G + g]) * X[c * G + g];
    row_sum[c] = sum;
    row_squares[c] = squares;
  }
  // The norms of the centred displacements, summed from centred values in float over sweeps of
  // genes and added in double (relative error ~1e-6 at worst, below the cosines' float products).
  displacement_norm.resize(static_cast<size_t>(cells));
#pragma omp parallel
  {
    std::vector<const float*> rows;
    std::vector<float> mean;
#pragma omp for schedule(dynamic, 16)
    for (int64_t position = 0; position < cells; ++position) {
      const int64_t i = order[position];
      const std::vector<int64_t>& row = candidates[i];
      const int64_t n = int64_t(row.size());
      rows.resize(size_t(n));
      mean.resize(size_t(n));
      for (int64_t e = 0; e < n; ++e) rows[e] = X + row[e] * G, mean[e] = float((row_sum[row[e]] - row_sum[i]) / double(G));
      std::vector<double>& norms = displacement_norm[i];
      norms.assign(size_t(n), 0.0);
      constexpr int64_t kSweep = 256;
      for (int64_t begin = 0; begin < G; begin += kSweep)
        displacement_squares(X + i * G, rows.data(), mean.data(), n, begin, std::min(G, begin + kSweep), norms.data());
      for (int64_t e = 0; e < n; ++e)  // already centred: no mean to take off (sum 0)
        norms[e] = std::sqrt(centred_squared_norm(0.0, norms[e], double(G), row_squares[i], row_squares[row[e]]));
    }
  }
}

namespace {

void velocity_row(const double* rate, const double* gamma, const float* ut, const float* st, int64_t genes, float* out);
double centre_row(const float* raw, int64_t genes, float* centred, double* squared);

// One thread's work on one cell of a plan: the centred dot products of the cell's candidates'
// displacements with up to 16 velocity fields (dots[e * 16 + k]), and those fields' norms at the
// cell, through candidate_dots.
class CellDots {
 public:
  explicit CellDots(const DisplacementPlan& plan)
      : plan_(plan), transposed_(static_cast<size_t>(plan.genes * kDotFields)), row_(size_t(plan.genes)),
        centred_(static_cast<size_t>(plan.genes * kDotFields), 0.0f) {}

  // `count` (<= 16) fields at cell i; false when one of their rows there holds a NaN.
  bool compute(int64_t i, const VelocityField* fields, int64_t count) {
    const int64_t G = plan_.genes;
    const std::vector<int64_t>& candidates = plan_.candidates[i];
    const int64_t n = int64_t(candidates.size());
    rows_.resize(size_t(n));
    for (int64_t e = 0; e < n; ++e) rows_[e] = plan_.X + candidates[e] * G;
    bool finite = true;
    float *centred = centred_.data(), *vt = transposed_.data();
    for (int64_t k = 0; k < count; ++k) {
      const VelocityField& field = fields[k];
      const float* raw = field.values ? field.values + i * G : row_.data();
      if (!field.values) velocity_row(field.rate, field.gamma, field.ut + i * G, field.st + i * G, G, row_.data());
      double squared = 0;
      finite = !std::isnan(centre_row(raw, G, centred + k * G, &squared)) && finite;  // a NaN anywhere in the row
      velocity_norm_[k] = std::sqrt(squared);
    }
    std::fill(centred + count * G, centred + kDotFields * G, 0.0f);  // the kernel's unused fields: zero
    transpose_fields(centred, G, vt);
    dots_.assign(size_t(n * kDotFields), 0.0f);
    for (int64_t begin = 0; begin < G; begin += kDotSweep)
      candidate_dots(plan_.X + i * G, rows_.data(), n, vt, begin, std::min(G, begin + kDotSweep), dots_.data());
    return finite;
  }

  // pi between cell i and its e-th candidate for field first + k of the last compute.
  double cosine(int64_t i, int64_t e, int64_t k) const {
    return pearson_cosine(double(dots_[e * kDotFields + k]), plan_.displacement_norm[i][e], velocity_norm_[k]);
  }

  // pi and the transition weight of every candidate of cell i for all 16 fields of the last
  // compute, at [e * 16 + k].
  void weights(int64_t i, std::vector<double>* pi, std::vector<double>* weight) const {
    const int64_t n = int64_t(plan_.candidates[i].size());
    pi->resize(size_t(n * kDotFields));
    weight->resize(size_t(n * kDotFields));
    entry_weights(dots_.data(), plan_.displacement_norm[i].data(), velocity_norm_, n, pi->data(), weight->data());
  }

 private:
  const DisplacementPlan& plan_;
  std::vector<float> transposed_, dots_, row_, centred_;
  std::vector<const float*> rows_;
  double velocity_norm_[kDotFields] = {};
};

}  // namespace

namespace {

std::vector<VelocityField> array_fields(const float* const* V, int64_t fields) {
  std::vector<VelocityField> out(static_cast<size_t>(fields));
  for (int64_t f = 0; f < fields; ++f) out[f].values = V[f];
  return out;
}

// velocity_graphs of fields already checked to be finite.
std::vector<VelocityGraph> finite_velocity_graphs(const DisplacementPlan& plan, const float* const* V, int64_t fields) {
  const int64_t cells = plan.cells;
  const std::vector<VelocityField> field = array_fields(V, fields);
  std::vector<std::vector<std::vector<double>>> cosines(static_cast<size_t>(fields),
                                                        std::vector<std::vector<double>>(static_cast<size_t>(cells)));
#pragma omp parallel
  {
    CellDots work(plan);
#pragma omp for schedule(dynamic, 16)
    for (int64_t position = 0; position < cells; ++position) {
      const int64_t i = plan.order[position];
      const int64_t n = int64_t(plan.candidates[i].size());
      for (int64_t first = 0; first < fields; first += kDotFields) {
        const int64_t count = std::min(kDotFields, fields - first);
        work.compute(i, field.data() + first, count);
        for (int64_t k = 0; k < count; ++k) {
          std::vector<double>& row = cosines[first + k][i];
          row.resize(size_t(n));
          for (int64_t e = 0; e < n; ++e) row[e] = work.cosine(i, e, k);
        }
      }
    }
  }
  std::vector<VelocityGraph> graphs;
  graphs.reserve(static_cast<size_t>(fields));
  for (int64_t f = 0; f < fields; ++f) {
    graphs.push_back(assemble_graph(cells, plan.candidates, cosines[f]));
    cosines[f] = {};
  }
  return graphs;
}

}  // namespace

std::vector<VelocityGraph> velocity_graphs(const DisplacementPlan& plan, const float* const* V, int64_t fields) {
  require_finite_fields(V, fields, plan.cells * plan.genes);
  return finite_velocity_graphs(plan, V, fields);
}

std::vector<VelocityGraph> velocity_graphs(const float* X, const float* const* V, int64_t fields, int64_t cells,
                                           int64_t genes, const Knn& knn) {
  if (any_nan_field(V, fields, cells * genes)) {  // each field drops its own genes: one graph at a time
    std::vector<VelocityGraph> graphs;
    for (int64_t f = 0; f < fields; ++f) graphs.push_back(velocity_graph(X, V[f], cells, genes, knn));
    return graphs;
  }
  return finite_velocity_graphs(DisplacementPlan(X, cells, genes, knn), V, fields);
}

FieldProjector::FieldProjector(const float* X, int64_t cells, int64_t genes, const Knn& knn, const double* embedding,
                               Device device)
    : cells_(cells), genes_(genes), embedding_(embedding) {
  require(embedding != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity projection: embedding is null");
  if (device == Device::kCuda) {
    device_ = DeviceVelocityProjection::create(X, cells, genes, checked_candidate_rows(X, cells, genes, knn), embedding);
    return;
  }
  plan_ = std::make_unique<DisplacementPlan>(X, cells, genes, knn);
  // Unit directions in the embedding towards each candidate, (0, 0) where they coincide.
  directions_.resize(static_cast<size_t>(cells));
  for (int64_t i = 0; i < cells; ++i)
    for (int64_t j : plan_->candidates[i]) {
      const double dx = embedding[2 * j] - embedding[2 * i], dy = embedding[2 * j + 1] - embedding[2 * i + 1];
      const double norm = std::sqrt(dx * dx + dy * dy);
      directions_[i].push_back(norm > 0 ? dx / norm : 0.0);
      directions_[i].push_back(norm > 0 ? dy / norm : 0.0);
    }
}

FieldProjector::~FieldProjector() = default;

std::vector<double> FieldProjector::project(const float* const* V, int64_t fields) {
  require(fields >= 1 && V != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity projection: no velocity fields");
  // NaN is refused by the projection itself (each row's mean on the CPU, a scan before the upload
  // on the GPU): no separate pass over the arrays here.
  const std::vector<VelocityField> field = array_fields(V, fields);
  return project(field.data(), fields);
}

std::vector<double> FieldProjector::project(const VelocityField* fields, int64_t count) {
  const int64_t C = cells_, G = genes_;
  require(count >= 1 && fields != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity projection: no velocity fields");
  for (int64_t f = 0; f < count; ++f)
    require(fields[f].values || (fields[f].ut && fields[f].st && fields[f].rate && fields[f].gamma),
            PV_ERR_INVALID_ARGUMENT, "velocity projection: field " + std::to_string(f) + " has neither values nor a sample");
  const char* nan_message = "velocity projection: a velocity field holds NaN";
  std::vector<double> out;
  if (device_) {
    // The device takes whole arrays: fields from samples are made here.
    std::vector<std::vector<float>> made(static_cast<size_t>(count));
    std::vector<const float*> V(static_cast<size_t>(count));
    for (int64_t f = 0; f < count; ++f) {
      if (!fields[f].values) {
        made[f].resize(size_t(C * G));
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < C; ++c)
          velocity_row(fields[f].rate, fields[f].gamma, fields[f].ut + c * G, fields[f].st + c * G, G, made[f].data() + c * G);
      }
      V[f] = fields[f].values ? fields[f].values : made[f].data();
    }
    if (any_nan_field(V.data(), count, C * G)) fail(PV_ERR_INVALID_ARGUMENT, nan_message);
    out = device_->embed(field_self_transitions(device_->graphs(V.data(), count), count, C));
  } else {
    // Each cell's row of every graph goes straight into its embedding sums and its confidence:
    // no graph is stored.
    std::vector<EmbeddingRowSums<double>> sums(static_cast<size_t>(count * C));
    std::vector<double> confidence(static_cast<size_t>(count * C), 0.0);
    bool finite = true;
#pragma omp parallel reduction(&& : finite)
    {
      CellDots work(*plan_);
      std::vector<double> pi, weight;
#pragma omp for schedule(dynamic, 16)
      for (int64_t position = 0; position < C; ++position) {
        const int64_t i = plan_->order[position];
        const int64_t n = int64_t(plan_->candidates[i].size());
        const double* direction = directions_[i].data();
        for (int64_t first = 0; first < count; first += kDotFields) {
          const int64_t batch = std::min(kDotFields, count - first);
          finite = work.compute(i, fields + first, batch) && finite;
          work.weights(i, &pi, &weight);  // all entries at once, vectorised; summed below in row order
          for (int64_t k = 0; k < batch; ++k) {
            EmbeddingRowSums<double>& row = sums[(first + k) * C + i];
            double& c = confidence[(first + k) * C + i];
            for (int64_t e = 0; e < n; ++e) {
              c = std::max(c, pi[e * kDotFields + k]);
              row.add_weight(weight[e * kDotFields + k], direction[2 * e], direction[2 * e + 1]);
            }
          }
        }
      }
    }
    require(finite, PV_ERR_INVALID_ARGUMENT, nan_message);
    const std::vector<double> self = field_self_transitions(confidence, count, C);
    out.resize(static_cast<size_t>(count * C * 2));
    for (int64_t e = 0; e < count * C; ++e) sums[e].finish(self[e], out.data() + 2 * e);
  }
  for (int64_t f = 0; f < count; ++f) autoscale_embedded(embedding_, C, 2, out.data() + f * C * 2);
  return out;
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
  std::vector<double> out(static_cast<size_t>(cells * D), 0.0);
#pragma omp parallel
  {
    std::vector<double> weighted(static_cast<size_t>(D)), directions(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < cells; ++i) {
      // Signed transition weights; the self-transition only enters the row normaliser, added last
      // as EmbeddingRowSums adds it (the same sums, bit for bit, as FieldProjector's).
      double absolute = 0, weights = 0;
      int64_t count = 0;
      std::fill(weighted.begin(), weighted.end(), 0.0);
      std::fill(directions.begin(), directions.end(), 0.0);
      const double* ei = embedding + i * D;
      for (int64_t e = graph.indptr[i]; e < graph.indptr[i + 1]; ++e) {
        const double weight = transition_weight(graph.cosine[e]);
        if (weight == 0) continue;  // not an entry of the sparse transition matrix
        absolute += std::abs(weight), weights += weight, ++count;
        const double* ej = embedding + graph.indices[e] * D;
        double squared = 0;
        for (int64_t d = 0; d < D; ++d) squared += (ej[d] - ei[d]) * (ej[d] - ei[d]);
        const double norm = std::sqrt(squared);
        if (norm == 0) continue;  // a zero direction adds nothing but its weight
        for (int64_t d = 0; d < D; ++d) {
          const double direction = (ej[d] - ei[d]) / norm;
          weighted[d] += weight * direction, directions[d] += direction;
        }
      }
      double* row = out.data() + i * D;
      for (int64_t d = 0; d < D; ++d)
        row[d] = count == 0 ? std::numeric_limits<double>::quiet_NaN()
                            : embedded_component(weighted[d], directions[d], weights, double(count),
                                                 absolute + transition_weight(graph.self_transition[i]));
    }
  }
  if (autoscale) autoscale_embedded(embedding, cells, D, out.data());
  return out;
}

void autoscale_embedded(const double* embedding, int64_t cells, int64_t dims, double* embedded) {
  const int64_t D = dims;
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
    const double u = embedded[i * D] / range_x, v = kAxesAspect * embedded[i * D + 1] / range_y;
    if (std::isnan(u) || std::isnan(v)) continue;
    length_sum += std::sqrt(u * u + v * v);
    ++finite_rows;
  }
  const double mean_length = finite_rows > 0 ? length_sum / double(finite_rows) : 0.0;
  const double quiver_scale = 1.8 * std::max(10.0, std::sqrt(double(cells))) / 1.1 * mean_length;
  // All-zero arrows have no scale to divide by; they stay zero.
  if (quiver_scale > 0)
    for (int64_t e = 0; e < cells * D; ++e) embedded[e] /= 3.0 * quiver_scale;
}

std::vector<double> direct_pca_projection(const float* V, int64_t cells, int64_t genes, const double* pcs,
                                          int64_t comps) {
  require(cells >= 1 && genes >= 1 && comps >= 1, PV_ERR_INVALID_ARGUMENT,
          "direct_pca_projection: cells, genes and comps must be >= 1");
  require(V != nullptr && pcs != nullptr, PV_ERR_INVALID_ARGUMENT, "direct_pca_projection: V or pcs is null");
  // Column means over blocks of genes, each summed over the cells in order: parallel, and the same
  // sums for any thread count.
  std::vector<double> column_mean(static_cast<size_t>(genes), 0.0);
  constexpr int64_t kGeneBlock = 64;
#pragma omp parallel for schedule(static)
  for (int64_t g0 = 0; g0 < genes; g0 += kGeneBlock) {
    const int64_t g1 = std::min(genes, g0 + kGeneBlock);
    for (int64_t c = 0; c < cells; ++c)
      for (int64_t g = g0; g < g1; ++g) column_mean[g] += V[c * genes + g];
    for (int64_t g = g0; g < g1; ++g) column_mean[g] /= double(cells);
  }
  std::vector<double> out(static_cast<size_t>(cells * comps), 0.0);
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

namespace {

// One posterior sample for the requested cells, assembled from its chunks: cells x genes ut, st
// and the predictive s, and the cell times.
struct WholeSample {
  std::vector<float> ut, st, s;
  std::vector<double> cell_time;
};
using WholeSampleConsumer = std::function<void(const GeneDraw&, const WholeSample&)>;

void stream_whole_samples(const VelocityModel& model, const PosteriorOptions& options, int64_t cells, int64_t genes,
                          const WholeSampleConsumer& consume, PosteriorSummariser* summariser = nullptr) {
  WholeSample sample;
  sample.ut.resize(static_cast<size_t>(cells * genes));
  sample.st.resize(static_cast<size_t>(cells * genes));
  if (options.predictive_counts) sample.s.resize(static_cast<size_t>(cells * genes));
  sample.cell_time.resize(static_cast<size_t>(cells));
  stream_posterior(model, options, [&](const GeneDraw& draw, const CellChunkDraw& chunk) {
    if (summariser) summariser->add(draw, chunk);
    const int64_t offset = chunk.first * genes;
    std::copy(chunk.ut.begin(), chunk.ut.end(), sample.ut.begin() + offset);
    std::copy(chunk.st.begin(), chunk.st.end(), sample.st.begin() + offset);
    if (options.predictive_counts) std::copy(chunk.s.begin(), chunk.s.end(), sample.s.begin() + offset);
    std::copy(chunk.cell[kCellTime].begin(), chunk.cell[kCellTime].end(), sample.cell_time.begin() + chunk.first);
    if (chunk.first + chunk.count == cells) consume(draw, sample);
  });
}

// The observed counts of the requested rows, dense cells x genes.
std::vector<float> observed_rows(const io::CountMatrix& m, const std::vector<int64_t>& rows) {
  std::vector<float> out(rows.size() * size_t(m.cols), 0.0f);
  for (size_t r = 0; r < rows.size(); ++r) {
    float* row = out.data() + r * size_t(m.cols);
    if (!m.sparse) {
      for (int64_t g = 0; g < m.cols; ++g) row[g] = m.dense[rows[r] * m.cols + g];
    } else {
      for (int64_t p = m.indptr[rows[r]]; p < m.indptr[rows[r] + 1]; ++p) row[m.indices[p]] = m.data[p];
    }
  }
  return out;
}

// Average ranks with 1 for the largest value (pandas rank(ascending=False)).
std::vector<double> descending_ranks(const std::vector<double>& values) {
  std::vector<double> negated(values.size());
  for (size_t i = 0; i < values.size(); ++i) negated[i] = -values[i];
  std::vector<double> ranks = average_ranks(negated);  // 0-based
  for (double& r : ranks) r += 1.0;
  return ranks;
}


// V = beta ut / u_scale - gamma st (MODEL.md section 7) in float32, as the graphs read it, from
// beta / u_scale of the gene.
__attribute__((always_inline)) inline float velocity_value(double unspliced_rate, double gamma, float ut, float st) {
  return float(unspliced_rate * ut - gamma * st);
}

// beta / u_scale of each gene of a sample.
std::vector<double> unspliced_rates(const StatisticsSample& draw, int64_t genes) {
  std::vector<double> rate(static_cast<size_t>(genes));
  for (int64_t g = 0; g < genes; ++g) rate[g] = draw.beta[g] / draw.u_scale[g];
  return rate;
}

// The per-gene sums of pass 1, over cells: V (for the PCA column means), |observed s - predictive
// s| (MAE), and Pearson's sums of st shifted by the first cell's st, its squares and its products
// with the shifted cell time.
enum GeneSum { kVelocitySum, kAbsoluteError, kShiftedSt, kShiftedStSquares, kShiftedStTime, kGeneSums };

// Pass 1 of compute_statistics for one sample on the cells [begin, end).
struct SweepArgs {
  int64_t genes = 0, begin = 0, end = 0;
  const float *ut = nullptr, *st = nullptr, *s = nullptr;  // the sample, cells x genes
  const float* observed = nullptr;                         // the data's spliced counts, cells x genes
  const float* cell_time = nullptr;
  const double *rate = nullptr, *gamma = nullptr;           // beta / u_scale and gamma, per gene
  const double *loading0 = nullptr, *loading1 = nullptr;    // the first two PCA loadings; null: no projection
  double reciprocal = 1;                                    // 1 / (samples so far, this one included)
  float *mean_ut = nullptr, *mean_st = nullptr, *m2_ut = nullptr, *m2_st = nullptr, *mean_velocity = nullptr;
  float* velocity_out = nullptr;  // null: V is not kept
  double* sums = nullptr;         // kGeneSums x genes, added to
  double *magnitude = nullptr, *pca = nullptr;  // the sample's |V| per cell, V . loadings (2 per cell)
  int64_t* non_finite = nullptr;  // added to: the entries where ut, st or s is not finite
};

// The running moments of ut, st and V (Welford, updated in double, stored in float32: half the
// memory traffic of double storage), each cell's |V| and V . loadings, and the per-gene sums. One
// omp simd loop per cell, so it vectorises whole (the sums per gene, the cell's over lanes).
// (Welford in float32 throughout measured no faster.)
template <bool kKeep, bool kPca>
__attribute__((always_inline)) inline void sweep_cells_body(const SweepArgs& a) {
  const int64_t G = a.genes;
  const double *rate = a.rate, *gamma = a.gamma, *loading0 = a.loading0, *loading1 = a.loading1;
  const double reciprocal = a.reciprocal, time_first = a.cell_time[0];
  double *velocity_sum = a.sums + kVelocitySum * G, *absolute_error = a.sums + kAbsoluteError * G;
  double *shifted = a.sums + kShiftedSt * G, *shifted_squares = a.sums + kShiftedStSquares * G;
  double* shifted_time = a.sums + kShiftedStTime * G;
  const float* st_first = a.st;
  for (int64_t c = a.begin; c < a.end; ++c) {
    const float *ut = a.ut + c * G, *st = a.st + c * G, *s = a.s + c * G, *observed = a.observed + c * G;
    float *mean_ut = a.mean_ut + c * G, *mean_st = a.mean_st + c * G, *m2_ut = a.m2_ut + c * G;
    float *m2_st = a.m2_st + c * G, *mean_velocity = a.mean_velocity + c * G;
    float* velocity_out = kKeep ? a.velocity_out + c * G : nullptr;
    const double time = double(a.cell_time[c]) - time_first;
    double squared = 0, pc0 = 0, pc1 = 0;
    int64_t non_finite = 0;
#pragma omp simd reduction(+ : squared, pc0, pc1, non_finite)
    for (int64_t g = 0; g < G; ++g) {
      non_finite += (std::isfinite(ut[g]) & std::isfinite(st[g]) & std::isfinite(s[g])) ? 0 : 1;
      const float v = velocity_value(rate[g], gamma[g], ut[g], st[g]);
      if constexpr (kKeep) velocity_out[g] = v;
      const double u = ut[g], x = st[g], mu = mean_ut[g], mx = mean_st[g];
      const double du = u - mu, dx = x - mx;
      const double next_u = mu + du * reciprocal, next_x = mx + dx * reciprocal;
      m2_ut[g] = float(m2_ut[g] + du * (u - next_u));
      m2_st[g] = float(m2_st[g] + dx * (x - next_x));
      mean_ut[g] = float(next_u), mean_st[g] = float(next_x);
      mean_velocity[g] = float(mean_velocity[g] + (double(v) - mean_velocity[g]) * reciprocal);
      squared += double(v) * v;
      if constexpr (kPca) pc0 += double(v) * loading0[g], pc1 += double(v) * loading1[g];
      velocity_sum[g] += v;
      absolute_error[g] += std::fabs(double(observed[g]) - double(s[g]));
      const double shift = x - st_first[g];
      shifted[g] += shift, shifted_squares[g] += shift * shift, shifted_time[g] += shift * time;
    }
    a.magnitude[c] = std::sqrt(squared);
    if constexpr (kPca) a.pca[2 * c] = pc0, a.pca[2 * c + 1] = pc1;
    *a.non_finite += non_finite;
  }
}

// out[g] = V of one cell, for `genes` genes.
__attribute__((always_inline)) inline void velocity_row_body(const double* rate, const double* gamma, const float* ut,
                                                            const float* st, int64_t genes, float* out) {
#pragma omp simd
  for (int64_t g = 0; g < genes; ++g) out[g] = velocity_value(rate[g], gamma[g], ut[g], st[g]);
}

// centred = raw - its mean over the genes (in double, stored in float); returns the mean and sets
// *squared to the sum of the centred squares.
__attribute__((always_inline)) inline double centre_row_body(const float* raw, int64_t genes, float* centred,
                                                             double* squared) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t g = 0; g < genes; ++g) sum += raw[g];
  const double mean = sum / double(genes);
  double squares = 0;
#pragma omp simd reduction(+ : squares)
  for (int64_t g = 0; g < genes; ++g) {
    const double v = double(raw[g]) - mean;
    centred[g] = float(v);
    squares += v * v;
  }
  *squared = squares;
  return mean;
}

// These compiled for AVX2 + FMA and for the baseline, as candidate_dots (the same clone computes V
// in the sweep and row by row, so a kept velocity and one computed again agree bit for bit).
#if defined(__x86_64__) && defined(__GNUC__)
template <bool kKeep, bool kPca>
__attribute__((target("avx2,fma"))) void sweep_cells_avx2(const SweepArgs& a) {
  sweep_cells_body<kKeep, kPca>(a);
}
__attribute__((target("avx2,fma"))) void velocity_row_avx2(const double* rate, const double* gamma, const float* ut,
                                                           const float* st, int64_t genes, float* out) {
  velocity_row_body(rate, gamma, ut, st, genes, out);
}
__attribute__((target("avx2,fma"))) double centre_row_avx2(const float* raw, int64_t genes, float* centred,
                                                           double* squared) {
  return centre_row_body(raw, genes, centred, squared);
}
#endif
template <bool kKeep, bool kPca>
void sweep_cells_as(const SweepArgs& a) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma()) return sweep_cells_avx2<kKeep, kPca>(a);
#endif
  sweep_cells_body<kKeep, kPca>(a);
}
void sweep_cells(const SweepArgs& a) {
  if (a.velocity_out) return a.loading0 ? sweep_cells_as<true, true>(a) : sweep_cells_as<true, false>(a);
  a.loading0 ? sweep_cells_as<false, true>(a) : sweep_cells_as<false, false>(a);
}
void velocity_row(const double* rate, const double* gamma, const float* ut, const float* st, int64_t genes, float* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma()) return velocity_row_avx2(rate, gamma, ut, st, genes, out);
#endif
  velocity_row_body(rate, gamma, ut, st, genes, out);
}
double centre_row(const float* raw, int64_t genes, float* centred, double* squared) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma()) return centre_row_avx2(raw, genes, centred, squared);
#endif
  return centre_row_body(raw, genes, centred, squared);
}

// The sample's V, cells x genes into out.
void sample_velocity(const StatisticsSample& draw, int64_t cells, int64_t genes, float* out) {
  const std::vector<double> rate = unspliced_rates(draw, genes);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cells; ++c)
    velocity_row(rate.data(), draw.gamma, draw.ut + c * genes, draw.st + c * genes, genes, out + c * genes);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

// The requested rows and the first `columns` columns of an obsm matrix, row-major.
std::vector<double> select_rows(const io::DenseMatrix<double>& m, const std::vector<int64_t>& rows, int64_t columns) {
  std::vector<double> out;
  out.reserve(rows.size() * size_t(columns));
  for (int64_t r : rows)
    for (int64_t k = 0; k < columns; ++k) out.push_back(m.values[r * m.cols + k]);
  return out;
}

// Rayleigh over each cell's S angles (angles: S x cells), then BH over the cells whose angles
// are all defined; the others get NaN.
std::vector<double> rayleigh_fdr(const std::vector<double>& angles, int64_t samples, int64_t cells) {
  std::vector<double> p_values, per_sample(static_cast<size_t>(samples));
  std::vector<int64_t> tested;
  for (int64_t c = 0; c < cells; ++c) {
    bool defined = true;
    for (int64_t s = 0; s < samples; ++s) {
      per_sample[s] = angles[s * cells + c];
      defined = defined && !std::isnan(per_sample[s]);
    }
    if (!defined) continue;
    tested.push_back(c);
    p_values.push_back(rayleigh_p_value(per_sample.data(), samples));
  }
  const std::vector<double> q = benjamini_hochberg(p_values);
  std::vector<double> fdr(static_cast<size_t>(cells), std::numeric_limits<double>::quiet_NaN());
  for (size_t t = 0; t < tested.size(); ++t) fdr[tested[t]] = q[t];
  return fdr;
}

Array to_array(std::vector<int64_t> shape, const std::vector<double>& values) {
  return {std::move(shape), std::vector<float>(values.begin(), values.end())};
}

}  // namespace

GeneRanking rank_genes(std::vector<double> mean_mae, std::vector<double> time_correlation) {
  require(mean_mae.size() == time_correlation.size(), PV_ERR_INVALID_ARGUMENT,
          "rank_genes: mean_mae and time_correlation must have one value per gene");
  constexpr size_t kTopByMae = 300, kKept = 4;
  GeneRanking ranking;
  ranking.mean_mae_rank = descending_ranks(mean_mae);
  ranking.time_correlation_rank = descending_ranks(time_correlation);
  std::vector<int64_t> order(mean_mae.size());
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return mean_mae[a] > mean_mae[b]; });
  order.resize(std::min(order.size(), kTopByMae));
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return time_correlation[a] > time_correlation[b]; });
  order.resize(std::min(order.size(), kKept));
  ranking.genes = std::move(order);
  ranking.mean_mae = std::move(mean_mae);
  ranking.time_correlation = std::move(time_correlation);
  return ranking;
}

PosteriorStatistics compute_statistics(const StatisticsInput& input, const StatisticsSamples& samples,
                                       const StatisticsOptions& options) {
  const int64_t S = input.samples, G = input.genes;
  require(S >= 1, PV_ERR_INVALID_ARGUMENT, "compute_statistics: the number of samples must be >= 1");
  require(input.anndata != nullptr && input.spliced != nullptr, PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: no AnnData or no observed spliced counts");
  const io::AnnData& anndata = *input.anndata;
  const int64_t all_cells = input.spliced->rows;
  require(input.spliced->cols == G, PV_ERR_INVALID_ARGUMENT, "compute_statistics: the samples have " +
                                                                 std::to_string(G) + " genes but the data has " +
                                                                 std::to_string(input.spliced->cols));
  const auto pca_it = anndata.obsm.find("X_pca");
  require(pca_it != anndata.obsm.end() || options.knn_space.rows > 0, PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: obsm has no X_pca (the kNN space)");
  const std::string embedding_key = "X_" + options.basis;
  const auto embedding_it = anndata.obsm.find(embedding_key);
  require(embedding_it != anndata.obsm.end(), PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: obsm has no " + embedding_key + " (vector_field_basis = '" + options.basis + "')");
  const io::DenseMatrix<double>& x_pca = pca_it != anndata.obsm.end() ? pca_it->second : options.knn_space;
  const io::DenseMatrix<double>& x_embedding = embedding_it->second;
  require(x_pca.rows == all_cells && x_pca.cols >= 1, PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: obsm X_pca must have one row per cell");
  require(x_embedding.rows == all_cells && x_embedding.cols >= 2, PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: obsm " + embedding_key + " must have one row per cell and >= 2 columns");
  const bool with_pca = !options.pca_loadings.empty();
  require(!with_pca || (options.pca_components >= 2 && int64_t(options.pca_loadings.size()) == G * options.pca_components),
          PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: options.pca_loadings must hold genes x pca_components values, pca_components >= 2");
  require(options.neighbours >= 2, PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: n_neighbors must be >= 2, got " + std::to_string(options.neighbours));

  std::vector<int64_t> rows = input.rows;
  if (rows.empty()) {
    rows.resize(static_cast<size_t>(all_cells));
    std::iota(rows.begin(), rows.end(), int64_t(0));
  }
  for (int64_t r : rows)
    if (r < 0 || r >= all_cells)
      fail(PV_ERR_INVALID_ARGUMENT, "compute_statistics: the samples' cells hold " + std::to_string(r) + ", outside [0, cells)");
  const int64_t C = int64_t(rows.size());
  require(C >= 2, PV_ERR_INVALID_ARGUMENT, "compute_statistics: needs at least 2 cells");
  const Knn knn = knn_graph(select_rows(x_pca, rows, x_pca.cols).data(), C, x_pca.cols, std::min(options.neighbours, C));
  const std::vector<double> embedding = select_rows(x_embedding, rows, 2);

  // The observed spliced counts (float32, as they are stored) and their means over cells.
  const std::vector<float> observed = observed_rows(*input.spliced, rows);
  std::vector<double> observed_mean(size_t(G), 0.0);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t g = 0; g < G; ++g) observed_mean[g] += observed[c * G + g] / double(C);
  std::vector<double> mean_mae(size_t(G), 0.0), time_correlation(size_t(G), 0.0);

  // Pass 1: moments of ut, st and V over samples; everything that does not need st's mean, in one
  // sweep over each sample's cells (each value is read once). The velocities are kept for pass 2
  // when they fit the cache, else drawn again there.
  // Moments stored in float32 (the precision they are returned in), updated in double: half the
  // memory traffic of double storage on these C x G arrays, which every sample sweeps.
  std::vector<float> mean_ut(size_t(C * G), 0.0f), mean_st(size_t(C * G), 0.0f), m2_ut(size_t(C * G), 0.0f),
      m2_st(size_t(C * G), 0.0f), mean_velocity(size_t(C * G), 0.0f);
  std::vector<double> original_magnitude(size_t(S * C)), field(size_t(S * C * 2)), pca_field;
  if (with_pca) pca_field.resize(size_t(S * C * 2));
  // Held samples sweep pass 1 block by block of cells through all of them.
  const bool block_major = int64_t(input.held.size()) == S && !options.spliced_per_sample;
  const bool cache_velocities = !block_major && !options.spliced_per_sample && !input.samples_in_memory &&
                                double(S) * double(C * G) * sizeof(float) <= double(options.sample_cache_bytes);
  std::vector<float> cached_velocities;
  if (cache_velocities) cached_velocities.resize(size_t(S * C * G));
  int64_t seen = 0;
  auto embed_sample = [&](int64_t sample, const float* spliced, const float* velocity) {
    const VelocityGraph graph = velocity_graph(spliced, velocity, C, G, knn);
    const std::vector<double> embedded = velocity_embedding(graph, embedding.data(), C, 2, true);
    std::copy(embedded.begin(), embedded.end(), field.begin() + sample * C * 2);
  };
  std::vector<float> velocity;
  if (options.spliced_per_sample) velocity.resize(size_t(C * G));
  // Only the first two components are kept, so only their loadings are needed.
  std::vector<double> loading0, loading1;
  if (with_pca)
    for (int64_t g = 0; g < G; ++g) {
      loading0.push_back(options.pca_loadings[g * options.pca_components]);
      loading1.push_back(options.pca_loadings[g * options.pca_components + 1]);
    }
  // What one sample's per-gene sums give: its share of the gene ranking and the PCA column means.
  auto finish_sample = [&](const float* cell_time, int64_t sample, const double* gene_sums) {
    double time_sum = 0, time_squares = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double time = double(cell_time[c]) - cell_time[0];
      time_sum += time, time_squares += time * time;
    }
    const double time_variance = time_squares - time_sum * time_sum / double(C);
    for (int64_t g = 0; g < G; ++g) {
      mean_mae[g] += -(gene_sums[kAbsoluteError * G + g] / double(C)) / observed_mean[g] / double(S);
      // pearson(st of the gene, cell time), from the shifted sums.
      const double sum = gene_sums[kShiftedSt * G + g];
      const double variance = gene_sums[kShiftedStSquares * G + g] - sum * sum / double(C);
      const double covariance = gene_sums[kShiftedStTime * G + g] - sum * time_sum / double(C);
      time_correlation[g] += (variance > 0 && time_variance > 0 ? covariance / std::sqrt(variance * time_variance) : 0.0) / double(S);
    }
    if (with_pca) {
      // direct_pca_projection, (V - column means) . loadings, as V . loadings - column means . loadings.
      double offset0 = 0, offset1 = 0;
      for (int64_t g = 0; g < G; ++g) {
        const double column_mean = gene_sums[kVelocitySum * G + g] / double(C);
        offset0 += column_mean * loading0[g], offset1 += column_mean * loading1[g];
      }
      double* out = pca_field.data() + sample * C * 2;
      for (int64_t c = 0; c < C; ++c) out[2 * c] -= offset0, out[2 * c + 1] -= offset1;
    }
  };
  // Pass 1 of samples [first, first + count) (draws[k], with rates[k]), block by block of cells,
  // each block through all of them: held samples sweep the moments of a block while they are in
  // cache. The per-gene sums are kept per block, then added over the blocks in their order: the
  // same sums for any thread count.
  constexpr int64_t kCellBlock = 64, kGroupBlocks = 8;
  const int64_t blocks = (C + kCellBlock - 1) / kCellBlock;
  std::vector<double> block_sums, gene_sums;
  int64_t non_finite = 0;  // entries of ut, st or s
  auto sweep_samples = [&](const StatisticsSample* draws, const std::vector<double>* rates, int64_t first, int64_t count,
                           float* velocity_out) {
    const int64_t per_block = count * kGeneSums * G;
    block_sums.resize(size_t(std::min(kGroupBlocks, blocks) * per_block));
    gene_sums.assign(size_t(per_block), 0.0);
    for (int64_t group = 0; group < blocks; group += kGroupBlocks) {
      const int64_t in_group = std::min(kGroupBlocks, blocks - group);
      int64_t block_non_finite[kGroupBlocks] = {};
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t b = 0; b < in_group; ++b) {
        double* sums = block_sums.data() + b * per_block;
        std::fill(sums, sums + per_block, 0.0);
        for (int64_t k = 0; k < count; ++k) {
          const StatisticsSample& draw = draws[k];
          const int64_t sample = first + k;
          SweepArgs args;
          args.genes = G;
          args.begin = (group + b) * kCellBlock;
          args.end = std::min(C, args.begin + kCellBlock);
          args.ut = draw.ut, args.st = draw.st, args.s = draw.s, args.observed = observed.data();
          args.cell_time = draw.cell_time;
          args.rate = rates[k].data(), args.gamma = draw.gamma;
          if (with_pca) args.loading0 = loading0.data(), args.loading1 = loading1.data();
          args.reciprocal = 1.0 / double(sample + 1);
          args.mean_ut = mean_ut.data(), args.mean_st = mean_st.data(), args.m2_ut = m2_ut.data();
          args.m2_st = m2_st.data(), args.mean_velocity = mean_velocity.data();
          args.velocity_out = velocity_out;
          args.sums = sums + k * kGeneSums * G;
          args.magnitude = original_magnitude.data() + sample * C;
          if (with_pca) args.pca = pca_field.data() + sample * C * 2;
          args.non_finite = block_non_finite + b;
          sweep_cells(args);
        }
      }
      for (int64_t b = 0; b < in_group; ++b) non_finite += block_non_finite[b];
#pragma omp parallel for schedule(static)
      for (int64_t e = 0; e < per_block; ++e) {
        double total = gene_sums[e];
        for (int64_t b = 0; b < in_group; ++b) total += block_sums[b * per_block + e];
        gene_sums[e] = total;
      }
    }
    for (int64_t k = 0; k < count; ++k) finish_sample(draws[k].cell_time, first + k, gene_sums.data() + k * kGeneSums * G);
  };
  // A non-finite ut, st or s seen by pass 1 (held samples are checked only there): named when the
  // samples are held.
  auto refuse_non_finite = [&] {
    if (non_finite == 0) return;
    const char* const keys[] = {"ut", "st", "s"};
    for (int which = 0; which < 3; ++which)
      for (const StatisticsSample& draw : input.held) {
        const float* values = which == 0 ? draw.ut : which == 1 ? draw.st : draw.s;
        const char* key = keys[which];
        for (int64_t e = 0; e < C * G; ++e)
          if (!std::isfinite(values[e]))
            fail(PV_ERR_INVALID_ARGUMENT,
                 std::string("compute_statistics: posterior '") + key + "' holds " + std::to_string(values[e]));
      }
    fail(PV_ERR_INVALID_ARGUMENT, "compute_statistics: a posterior sample's ut, st or s is not finite");
  };
  std::vector<std::vector<double>> rates;  // of the held samples
  if (block_major) {
    for (const StatisticsSample& draw : input.held) rates.push_back(unspliced_rates(draw, G));
    sweep_samples(input.held.data(), rates.data(), 0, S, nullptr);
    seen = S;
    refuse_non_finite();
  } else {
    samples(true, [&](const StatisticsSample& draw) {
      require(seen < S, PV_ERR_INTERNAL, "compute_statistics: more samples than announced");
      const int64_t sample = seen++;
      float* velocity_out = cache_velocities ? cached_velocities.data() + sample * C * G
                                             : options.spliced_per_sample ? velocity.data() : nullptr;
      const std::vector<double> rate = unspliced_rates(draw, G);
      sweep_samples(&draw, &rate, sample, 1, velocity_out);
      refuse_non_finite();
      if (options.spliced_per_sample) embed_sample(sample, draw.st, velocity.data());
    });
  }
  require(seen == S, PV_ERR_INTERNAL, "compute_statistics: fewer samples than announced");

  FieldProjector projector(mean_st.data(), C, G, knn, embedding.data(), options.device);  // every graph against mean st
  const std::vector<float>& mean_velocity_float = mean_velocity;
  std::vector<double> mean_field(size_t(C * 2));
  // Pass 2: each sample's velocity, and the posterior mean's, against the mean st, in batches as
  // wide as velocity_graphs' kernel: it shares the candidates and displacement norms across a
  // batch and forms each displacement once for all of it. Each entry: a velocity and where its
  // embedded field goes.
  constexpr int64_t kBatch = kDotFields;
  std::vector<std::pair<VelocityField, double*>> batch;
  std::vector<float> drawn;  // velocities of samples drawn again, when pass 1 could not keep them
  auto embed_batch = [&] {
    std::vector<VelocityField> fields;
    for (const auto& entry : batch) fields.push_back(entry.first);
    const std::vector<double> embedded = projector.project(fields.data(), int64_t(fields.size()));
    for (size_t k = 0; k < batch.size(); ++k)
      std::copy(embedded.begin() + int64_t(k) * C * 2, embedded.begin() + int64_t(k + 1) * C * 2, batch[k].second);
    batch.clear();
  };
  auto array_field = [](const float* values) {
    VelocityField f;
    f.values = values;
    return f;
  };
  if (options.spliced_per_sample) {
    batch.push_back({array_field(mean_velocity_float.data()), mean_field.data()});
  } else if (block_major || cache_velocities) {
    // Held samples' velocities are made row by row as the graphs read them: no copy.
    for (int64_t k = 0; k < S; ++k) {
      VelocityField f;
      if (block_major) f.ut = input.held[k].ut, f.st = input.held[k].st, f.rate = rates[k].data(), f.gamma = input.held[k].gamma;
      else f.values = cached_velocities.data() + k * C * G;
      batch.push_back({f, field.data() + k * C * 2});
      if (int64_t(batch.size()) == kBatch) embed_batch();
    }
    batch.push_back({array_field(mean_velocity_float.data()), mean_field.data()});
  } else {
    drawn.resize(size_t(std::min(kBatch, S) * C * G));
    int64_t redrawn = 0;
    samples(false, [&](const StatisticsSample& draw) {
      if (int64_t(batch.size()) == kBatch) embed_batch();
      float* slot = drawn.data() + int64_t(batch.size()) * C * G;
      sample_velocity(draw, C, G, slot);
      batch.push_back({array_field(slot), field.data() + redrawn++ * C * 2});
    });
    require(redrawn == S, PV_ERR_INTERNAL, "compute_statistics: pass 2 saw a different number of samples");
    if (int64_t(batch.size()) == kBatch) embed_batch();
    batch.push_back({array_field(mean_velocity_float.data()), mean_field.data()});
  }
  embed_batch();
  cached_velocities = {};

  auto magnitude_and_angle = [&](const std::vector<double>& vectors, std::vector<double>* magnitude,
                                 std::vector<double>* angle) {
    magnitude->resize(size_t(S * C));
    angle->resize(size_t(S * C));
    for (int64_t e = 0; e < S * C; ++e) {
      (*magnitude)[e] = std::hypot(vectors[2 * e], vectors[2 * e + 1]);
      (*angle)[e] = std::atan2(vectors[2 * e + 1], vectors[2 * e]);
    }
  };
  std::vector<double> magnitude, angle;
  magnitude_and_angle(field, &magnitude, &angle);

  PosteriorStatistics statistics;
  statistics.gene_ranking = rank_genes(std::move(mean_mae), std::move(time_correlation));
  statistics.knn = knn;
  std::map<std::string, Array>& out = statistics.arrays;
  out["vector_field_posterior_samples"] = to_array({S, C, 2}, field);
  out["vector_field_posterior_mean"] = to_array({C, 2}, mean_field);
  out["embeds_magnitude"] = to_array({S, C}, magnitude);
  out["embeds_angle"] = to_array({S, C}, angle);
  out["fdri"] = to_array({C}, rayleigh_fdr(angle, S, C));
  out["original_spaces_embeds_magnitude"] = to_array({S, C}, original_magnitude);
  // The standard deviations in place of the squared deviations' sums (no fresh C x G arrays).
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < C * G; ++e)
    m2_ut[e] = float(std::sqrt(m2_ut[e] / double(S))), m2_st[e] = float(std::sqrt(m2_st[e] / double(S)));
  out["ut_mean"] = {{C, G}, std::move(mean_ut)};
  out["st_mean"] = {{C, G}, std::move(mean_st)};
  out["ut_std"] = {{C, G}, std::move(m2_ut)};
  out["st_std"] = {{C, G}, std::move(m2_st)};
  if (with_pca) {
    std::vector<double> pca_magnitude, pca_angle;
    magnitude_and_angle(pca_field, &pca_magnitude, &pca_angle);
    out["pca_vector_field_posterior_samples"] = to_array({S, C, 2}, pca_field);
    out["pca_embeds_angle"] = to_array({S, C}, pca_angle);
    out["pca_fdri"] = to_array({C}, rayleigh_fdr(pca_angle, S, C));
  }
  return statistics;
}

PosteriorStatistics compute_statistics(const VelocityModel& model, const PosteriorOptions& posterior,
                                       const StatisticsOptions& options, PosteriorSummariser* summariser) {
  require(model.data().anndata != nullptr, PV_ERR_INVALID_ARGUMENT, "compute_statistics: the model has no AnnData");
  const int64_t G = model.layout().genes;
  const int64_t C = posterior.cells.empty() ? model.layout().cells : int64_t(posterior.cells.size());
  StatisticsInput input;
  input.anndata = model.data().anndata.get();
  input.spliced = model.data().counts.spliced;
  input.rows = posterior.cells;
  input.samples = posterior.num_samples;
  input.genes = G;
  const std::vector<double> unit_scale(size_t(G), 1.0);
  return compute_statistics(
      input,
      [&](bool with_counts, const std::function<void(const StatisticsSample&)>& visit) {
        PosteriorOptions stream = posterior;
        stream.predictive_counts = with_counts;
        std::vector<float> cell_time(static_cast<size_t>(C));
        PosteriorSummariser* tap = with_counts ? summariser : nullptr;  // the first pass, exactly once
        stream_whole_samples(model, stream, C, G, [&](const GeneDraw& draw, const WholeSample& whole) {
          std::copy(whole.cell_time.begin(), whole.cell_time.end(), cell_time.begin());
          StatisticsSample sample;
          sample.ut = whole.ut.data();
          sample.st = whole.st.data();
          sample.s = with_counts ? whole.s.data() : nullptr;
          sample.cell_time = cell_time.data();
          sample.beta = draw.site[kBeta].data();
          sample.gamma = draw.site[kGamma].data();
          sample.u_scale = draw.site[kUScale].empty() ? unit_scale.data() : draw.site[kUScale].data();
          visit(sample);
        }, tap);
      },
      options);
}

PosteriorStatistics compute_statistics(const io::AnnData& anndata, const std::map<std::string, Array>& samples,
                                       const StatisticsOptions& options) {
  const auto spliced_it = anndata.layers.find("spliced");
  require(spliced_it != anndata.layers.end(), PV_ERR_INVALID_ARGUMENT, "compute_statistics: the data has no spliced layer");
  const int64_t C = spliced_it->second.rows, G = spliced_it->second.cols;
  // The C x G arrays' values are checked by the statistics' first sweep, which reads them anyway.
  auto find = [&](const char* key, std::vector<int64_t> shape, bool required, bool check_values = true) -> const Array* {
    const auto it = samples.find(key);
    if (it == samples.end()) {
      require(!required, PV_ERR_INVALID_ARGUMENT, std::string("compute_statistics: the posterior samples have no '") + key + "'");
      return nullptr;
    }
    const Array& a = it->second;
    int64_t size = 1;
    for (int64_t d : a.shape) size *= d;
    require(a.shape == shape && size == int64_t(a.values.size()), PV_ERR_INVALID_ARGUMENT,
            std::string("compute_statistics: posterior '") + key + "' has shape " + shape_text(a.shape) + ", expected " +
                shape_text(shape) + " (samples, cells, genes of the data)");
    if (check_values)
      for (float v : a.values)
        if (!std::isfinite(v))
          fail(PV_ERR_INVALID_ARGUMENT, std::string("compute_statistics: posterior '") + key + "' holds " + std::to_string(v));
    return &a;
  };
  const auto ut_it = samples.find("ut");
  require(ut_it != samples.end() && ut_it->second.shape.size() == 3, PV_ERR_INVALID_ARGUMENT,
          "compute_statistics: the posterior samples need 'ut' of shape (samples, cells, genes)");
  const int64_t S = ut_it->second.shape[0];
  require(S >= 1, PV_ERR_INVALID_ARGUMENT, "compute_statistics: the posterior holds no samples");
  const Array* ut = find("ut", {S, C, G}, true, false);
  const Array* st = find("st", {S, C, G}, true, false);
  const Array* s = find("s", {S, C, G}, true, false);
  const Array* beta = find("beta", {S, 1, G}, true);
  const Array* gamma = find("gamma", {S, 1, G}, true);
  const Array* cell_time = find("cell_time", {S, C, 1}, true);
  const Array* u_scale = find("u_scale", {S, 1, G}, false);
  if (u_scale)  // V divides by it
    for (float v : u_scale->values)
      require(v > 0, PV_ERR_INVALID_ARGUMENT, "compute_statistics: posterior 'u_scale' holds " + std::to_string(v) + ", not positive");

  StatisticsInput input;
  input.anndata = &anndata;
  input.spliced = &spliced_it->second;
  input.samples_in_memory = true;
  input.samples = S;
  input.genes = G;
  // The gene-level draws in double, sample-major.
  std::vector<double> beta_g(static_cast<size_t>(S * G)), gamma_g(static_cast<size_t>(S * G)), scale_g(static_cast<size_t>(S * G), 1.0);
  for (int64_t e = 0; e < S * G; ++e) {
    beta_g[e] = beta->values[e];
    gamma_g[e] = gamma->values[e];
    if (u_scale) scale_g[e] = u_scale->values[e];
  }
  for (int64_t k = 0; k < S; ++k) {
    StatisticsSample sample;
    sample.ut = ut->values.data() + k * C * G;
    sample.st = st->values.data() + k * C * G;
    sample.s = s->values.data() + k * C * G;
    sample.cell_time = cell_time->values.data() + k * C;
    sample.beta = beta_g.data() + k * G;
    sample.gamma = gamma_g.data() + k * G;
    sample.u_scale = scale_g.data() + k * G;
    input.held.push_back(sample);
  }
  return compute_statistics(
      input,
      [&](bool, const std::function<void(const StatisticsSample&)>& visit) {
        for (const StatisticsSample& sample : input.held) visit(sample);
      },
      options);
}

void prepare_statistics(const io::AnnData& data, StatisticsOptions* options, uint64_t seed, std::string* note) {
  const auto spliced_it = data.layers.find("spliced");
  require(spliced_it != data.layers.end(), PV_ERR_INVALID_ARGUMENT, "prepare_statistics: the data has no spliced layer");
  const io::CountMatrix& spliced = spliced_it->second;
  const int64_t C = spliced.rows, G = spliced.cols;
  require(C >= 3 && G >= 2, PV_ERR_INVALID_ARGUMENT, "prepare_statistics: needs at least 3 cells and 2 genes");
  const auto existing = data.obsm.find("X_pca");
  const auto loadings = data.varm.find("PCs");
  if (existing != data.obsm.end() && loadings != data.varm.end() && loadings->second.rows == G &&
      loadings->second.cols >= 2) {
    options->pca_loadings = loadings->second.values;
    options->pca_components = loadings->second.cols;
    return;
  }
  const int64_t components =
      existing != data.obsm.end() ? existing->second.cols : std::min<int64_t>(30, std::min(C - 1, G));
  require(components >= 2, PV_ERR_INVALID_ARGUMENT, "prepare_statistics: obsm X_pca needs at least 2 columns");
  const PcaResult pca = log_expression_pca(spliced, components, seed);
  if (existing == data.obsm.end()) {
    options->knn_space = io::DenseMatrix<double>{C, pca.components, pca.scores};
    if (note)
      *note = "obsm has no X_pca: computed " + std::to_string(pca.components) +
              " principal components of log expression for the kNN graph";
  }
  options->pca_loadings = pca.loadings;
  options->pca_components = pca.components;
}

}  // namespace pv

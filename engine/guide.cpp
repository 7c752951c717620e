#include "engine/guide.h"

#include <cmath>
#include <vector>

#include "engine/error.h"
#include "kernels/math.h"

namespace pv {
namespace {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;

// The rows of the gene-level guide (one per gene and site) are independent, so its loops run on
// every thread once there are enough rows to pay for it; the step is otherwise serial here, with
// the other threads idle. Sums over rows are taken in kRowBlocks fixed blocks added in block
// order, so that every result is the same for any number of threads.
constexpr int64_t kParallelRows = 4096;
constexpr int64_t kRowBlocks = 16;

int64_t block_begin(int64_t rows, int64_t block) { return rows * block / kRowBlocks; }

// K = I + F^T F (R x R) and its Cholesky factor L (lower, row-major).
struct Capacitance {
  int64_t r;
  std::vector<double> k, l;
  double logdet;
};

Capacitance capacitance(const double* f, int64_t d, int64_t r) {
  Capacitance c{r, std::vector<double>(static_cast<size_t>(r * r), 0.0), std::vector<double>(static_cast<size_t>(r * r), 0.0), 0.0};
  std::vector<double> partial(static_cast<size_t>(kRowBlocks * r * r), 0.0);
#pragma omp parallel for schedule(static) if (d >= kParallelRows)
  for (int64_t block = 0; block < kRowBlocks; ++block) {
    double* __restrict k = partial.data() + block * r * r;
    for (int64_t i = block_begin(d, block); i < block_begin(d, block + 1); ++i)
      for (int64_t a = 0; a < r; ++a) {
        const double fa = f[i * r + a];
        for (int64_t b = 0; b <= a; ++b) k[a * r + b] += fa * f[i * r + b];
      }
  }
  for (int64_t block = 0; block < kRowBlocks; ++block)
    for (int64_t e = 0; e < r * r; ++e) c.k[e] += partial[block * r * r + e];
  for (int64_t a = 0; a < r; ++a) {
    c.k[a * r + a] += 1.0;
    for (int64_t b = 0; b < a; ++b) c.k[b * r + a] = c.k[a * r + b];
  }
  for (int64_t j = 0; j < r; ++j) {
    double diag = c.k[j * r + j];
    for (int64_t p = 0; p < j; ++p) diag -= c.l[j * r + p] * c.l[j * r + p];
    require(diag > 0, PV_ERR_NUMERIC, "guide: I + F^T F is not positive definite");
    c.l[j * r + j] = std::sqrt(diag);
    for (int64_t i = j + 1; i < r; ++i) {
      double v = c.k[i * r + j];
      for (int64_t p = 0; p < j; ++p) v -= c.l[i * r + p] * c.l[j * r + p];
      c.l[i * r + j] = v / c.l[j * r + j];
    }
    c.logdet += 2.0 * std::log(c.l[j * r + j]);
  }
  return c;
}

// x = K^{-1} b through the Cholesky factor.
std::vector<double> solve(const Capacitance& c, std::vector<double> b) {
  const int64_t r = c.r;
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t p = 0; p < i; ++p) b[i] -= c.l[i * r + p] * b[p];
    b[i] /= c.l[i * r + i];
  }
  for (int64_t i = r - 1; i >= 0; --i) {
    for (int64_t p = i + 1; p < r; ++p) b[i] -= c.l[p * r + i] * b[p];
    b[i] /= c.l[i * r + i];
  }
  return b;
}

std::vector<double> inverse(const Capacitance& c) {
  const int64_t r = c.r;
  std::vector<double> inv(static_cast<size_t>(r * r));
  for (int64_t j = 0; j < r; ++j) {
    std::vector<double> e(static_cast<size_t>(r), 0.0);
    e[j] = 1.0;
    const std::vector<double> col = solve(c, e);
    for (int64_t i = 0; i < r; ++i) inv[i * r + j] = col[i];
  }
  return inv;
}

// F += scale * F M  (M is R x R): the shared shape of the F-gradients below. Row by row, as
// multiples of M's rows, so that the innermost loop runs along contiguous memory.
void add_f_times(const double* f, const std::vector<double>& m, int64_t d, int64_t r, double scale, double* out) {
  const double* mm = m.data();
#pragma omp parallel for schedule(static) if (d >= kParallelRows)
  for (int64_t i = 0; i < d; ++i) {
    double* __restrict row = out + i * r;
    for (int64_t a = 0; a < r; ++a) {
      const double fa = scale * f[i * r + a];
      for (int64_t b = 0; b < r; ++b) row[b] += fa * mm[a * r + b];
    }
  }
}

struct SampleNode : Node<double> {
  Var<double> loc, raw, f, e1, e2, z;
  int64_t rank;
  double *w, *scale, *slope;  // F e1 + e2, softplus(raw) and sigmoid(raw), saved in the arena
  SampleNode(Var<double> l, Var<double> r, Var<double> f_, Var<double> a, Var<double> b, Var<double> z_, int64_t k, double* w_,
             double* scale_, double* slope_)
      : loc(l), raw(r), f(f_), e1(a), e2(b), z(z_), rank(k), w(w_), scale(scale_), slope(slope_) {}
  void backward() override {
#pragma omp parallel for schedule(static) if (z.size >= kParallelRows)
    for (int64_t i = 0; i < z.size; ++i) {
      const double g = z.grad[i];
      if (loc.needs_grad()) loc.grad[i] += g;
      if (raw.needs_grad()) raw.grad[i] += g * w[i] * slope[i];
      if (f.needs_grad()) {
        const double gd = g * scale[i];
        for (int64_t a = 0; a < rank; ++a) f.grad[i * rank + a] += gd * e1.value[a];
      }
    }
  }
};

struct EntropyNode : Node<double> {
  Var<double> raw, f, h;
  int64_t rank;
  double* k_inverse;    // R x R, arena
  double* d_log_scale;  // d log softplus(raw) / d raw = sigmoid / softplus, arena
  EntropyNode(Var<double> r, Var<double> f_, Var<double> h_, int64_t k, double* inv, double* d)
      : raw(r), f(f_), h(h_), rank(k), k_inverse(inv), d_log_scale(d) {}
  void backward() override {
    const double g = h.grad[0];
    if (raw.needs_grad())
      for (int64_t i = 0; i < raw.size; ++i) raw.grad[i] += g * d_log_scale[i];
    if (f.needs_grad()) {
      const std::vector<double> m(k_inverse, k_inverse + rank * rank);
      add_f_times(f.value, m, raw.size, rank, g, f.grad);  // d/dF 1/2 logdet(I + F^T F) = F K^-1
    }
  }
};

struct LogDensityNode : Node<double> {
  Var<double> z, loc, raw, f, out;
  int64_t rank;
  double *y, *a, *k_inverse;  // (z - loc)/d, K^-1 F^T y, K^-1 (arena)
  LogDensityNode(Var<double> z_, Var<double> l, Var<double> r, Var<double> f_, Var<double> o, int64_t k, double* y_, double* a_, double* inv)
      : z(z_), loc(l), raw(r), f(f_), out(o), rank(k), y(y_), a(a_), k_inverse(inv) {}
  void backward() override {
    const double g = out.grad[0];
    const int64_t d = z.size, r = rank;
    for (int64_t i = 0; i < d; ++i) {
      double fa = 0;
      for (int64_t p = 0; p < r; ++p) fa += f.value[i * r + p] * a[p];
      const double g_y = -g * (y[i] - fa);
      const double di = softplus(raw.value[i]);
      if (z.needs_grad()) z.grad[i] += g_y / di;
      if (loc.needs_grad()) loc.grad[i] -= g_y / di;
      if (raw.needs_grad()) raw.grad[i] += (-g / di - g_y * y[i] / di) * sigmoid(raw.value[i]);
    }
    if (f.needs_grad()) {
      // d/dF of -1/2 (y^T y - b^T K^-1 b) - 1/2 logdet K  =  y a^T - F a a^T - F K^-1
      std::vector<double> m(static_cast<size_t>(r * r));
      for (int64_t p = 0; p < r; ++p)
        for (int64_t q = 0; q < r; ++q) m[p * r + q] = -a[p] * a[q] - k_inverse[p * r + q];
      add_f_times(f.value, m, d, r, g, f.grad);
      for (int64_t i = 0; i < d; ++i)
        for (int64_t q = 0; q < r; ++q) f.grad[i * r + q] += g * y[i] * a[q];
    }
  }
};

void check_shapes(const Var<double>& raw, const Var<double>& F, int64_t rank, const char* op) {
  require(rank >= 1 && F.size == raw.size * rank, PV_ERR_INTERNAL, std::string(op) + ": F must be D x rank");
}

}  // namespace

Var<double> lowrank_sample(Tape<double>& tape, const Var<double>& loc, const Var<double>& raw, const Var<double>& F,
                           int64_t rank, const Var<double>& e1, const Var<double>& e2) {
  check_shapes(raw, F, rank, "lowrank_sample");
  const int64_t d = loc.size;
  Var<double> z = tape.variable(d);
  double* w = tape.arena().allocate_array<double>(d);
  double* scale = tape.arena().allocate_array<double>(d);
  double* slope = tape.arena().allocate_array<double>(d);
#pragma omp parallel for schedule(static) if (d >= kParallelRows)
  for (int64_t i = 0; i < d; ++i) {
    double fe = e2.value[i];
    for (int64_t a = 0; a < rank; ++a) fe += F.value[i * rank + a] * e1.value[a];
    const SoftplusSigmoid<double> s = softplus_and_sigmoid(raw.value[i]);
    w[i] = fe, scale[i] = s.softplus, slope[i] = s.sigmoid;
    z.value[i] = loc.value[i] + s.softplus * fe;
  }
  tape.record<SampleNode>(loc, raw, F, e1, e2, z, rank, w, scale, slope);
  return z;
}

Var<double> lowrank_entropy(Tape<double>& tape, const Var<double>& raw, const Var<double>& F, int64_t rank) {
  check_shapes(raw, F, rank, "lowrank_entropy");
  const int64_t d = raw.size;
  const Capacitance c = capacitance(F.value, d, rank);
  double* d_log_scale = tape.arena().allocate_array<double>(d);
  double block_sum[kRowBlocks] = {};
#pragma omp parallel for schedule(static) if (d >= kParallelRows)
  for (int64_t block = 0; block < kRowBlocks; ++block) {
    double sum = 0;
    for (int64_t i = block_begin(d, block); i < block_begin(d, block + 1); ++i) {
      const SoftplusSigmoid<double> s = softplus_and_sigmoid(raw.value[i]);
      sum += std::log(s.softplus);
      d_log_scale[i] = s.sigmoid / s.softplus;
    }
    block_sum[block] = sum;
  }
  double sum_log_d = 0;
  for (double v : block_sum) sum_log_d += v;
  Var<double> h = tape.variable(1);
  h.value[0] = 0.5 * double(d) * (kLog2Pi + 1.0) + sum_log_d + 0.5 * c.logdet;
  double* inv = tape.arena().allocate_array<double>(rank * rank);
  const std::vector<double> k_inv = inverse(c);
  std::copy(k_inv.begin(), k_inv.end(), inv);
  tape.record<EntropyNode>(raw, F, h, rank, inv, d_log_scale);
  return h;
}

Var<double> lowrank_log_density(Tape<double>& tape, const Var<double>& z, const Var<double>& loc,
                                const Var<double>& raw, const Var<double>& F, int64_t rank) {
  check_shapes(raw, F, rank, "lowrank_log_density");
  const int64_t d = z.size;
  const Capacitance c = capacitance(F.value, d, rank);
  double* y = tape.arena().allocate_array<double>(d);
  std::vector<double> b(static_cast<size_t>(rank), 0.0);
  double yy = 0, sum_log_d = 0;
  for (int64_t i = 0; i < d; ++i) {
    const double di = softplus(raw.value[i]);
    y[i] = (z.value[i] - loc.value[i]) / di;
    yy += y[i] * y[i];
    sum_log_d += std::log(di);
    for (int64_t a = 0; a < rank; ++a) b[a] += F.value[i * rank + a] * y[i];
  }
  const std::vector<double> a_vec = solve(c, b);
  double ba = 0;
  for (int64_t p = 0; p < rank; ++p) ba += b[p] * a_vec[p];
  Var<double> out = tape.variable(1);
  out.value[0] = -0.5 * (yy - ba) - sum_log_d - 0.5 * c.logdet - 0.5 * double(d) * kLog2Pi;
  double* a = tape.arena().allocate_array<double>(rank);
  std::copy(a_vec.begin(), a_vec.end(), a);
  double* inv = tape.arena().allocate_array<double>(rank * rank);
  const std::vector<double> k_inv = inverse(c);
  std::copy(k_inv.begin(), k_inv.end(), inv);
  tape.record<LogDensityNode>(z, loc, raw, F, out, rank, y, a, inv);
  return out;
}

}  // namespace pv

#include "engine/likelihood.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "engine/gene_slots.h"
#include "kernels/dynamics.h"
#include "kernels/math.h"
#include "kernels/sampling.h"

namespace pv {
namespace {

constexpr double kEps = 1e-6;
constexpr int64_t kChunks = 64;  // fixed partition of the batch: thread-count independent sums
constexpr uint32_t kStateStream = 20;

// Everything pass 1 works out for one gene of the current cell, kept for passes 2 and 3.
struct GeneScratch {
  double x1, p1, softplus_x1, sig_t0;
  DynamicsWithGrad<double> dyn[2];  // induction (0), repression (1)
  double uu[2], ut[2], st[2];       // u_scale u; relu(.) + eps of u and s
  double g_ut[2], g_st[2], g_x1;    // gradients before the normaliser's share
  int state;                        // the drawn state in kSampled mode
};

// Per-gene gradient sums of one chunk, in the order of GeneSite plus the derived quantities.
struct ChunkSums {
  enum { kUInf = kGeneSites, kSInf, kSwitching, kRu, kRs, kSlots };
  std::vector<double> slot[kSlots];
  double value = 0;
  void reset(int64_t genes) {
    for (auto& s : slot) s.assign(static_cast<size_t>(genes), 0.0);
    value = 0;
  }
};

struct CountLogLik {
  double value, d_rate, d_log_r;
};

// The count's log-likelihood without its parameter-free -log(count!) (added per cell).
inline CountLogLik count_log_lik(double count, double rate, bool negative_binomial, double log_r) {
  if (!negative_binomial) {
    if (count == 0.0) return {-rate, -1.0, 0.0};
    return {count * std::log(rate) - rate, count / rate - 1.0, 0.0};
  }
  const NegBinomialMeanLogPmf<double> nb = negbinomial_mean_log_pmf(count, rate, log_r, kEps);
  return {nb.value + std::lgamma(count + 1.0), nb.d_mean, nb.d_log_dispersion};
}

void load_row(const io::CountMatrix& m, int64_t row, std::vector<double>* out) {
  const int64_t g = m.cols;
  if (!m.sparse) {
    const float* src = m.dense.data() + row * g;
    for (int64_t j = 0; j < g; ++j) (*out)[j] = src[j];
    return;
  }
  std::fill(out->begin(), out->end(), 0.0);
  for (int64_t p = m.indptr[row]; p < m.indptr[row + 1]; ++p) (*out)[m.indices[p]] = m.data[p];
}

double matrix_row_log_factorial(const io::CountMatrix& m, int64_t row) {
  double sum = 0;
  if (m.sparse) {
    for (int64_t p = m.indptr[row]; p < m.indptr[row + 1]; ++p) sum += std::lgamma(double(m.data[p]) + 1.0);
  } else {
    for (int64_t j = 0; j < m.cols; ++j) sum += std::lgamma(double(m.dense[row * m.cols + j]) + 1.0);
  }
  return sum;
}

}  // namespace

double row_log_factorial(const CountView& data, int64_t row) {
  return matrix_row_log_factorial(*data.unspliced, row) + matrix_row_log_factorial(*data.spliced, row);
}

double cell_gene_log_likelihood(const CountView& data, const ModelOptions& o, const LikelihoodInputs& in,
                                LikelihoodGradients* grad) {
  const int64_t G = data.genes(), B = in.batch;
  const bool nb = o.likelihood == Likelihood::kNegativeBinomial;
  const bool marginal = o.state == StateMode::kMarginal;
  const bool library = o.correct_library_size;
  const double* const* gene = in.gene;
  require(!nb || (in.log_dispersion_u && in.log_dispersion_s), PV_ERR_INTERNAL,
          "negative binomial needs dispersion parameters");
  require(!o.add_offset || (gene[kUOffset] && gene[kSOffset]), PV_ERR_INTERNAL, "add_offset needs offsets");

  // Gene-level quantities shared by all cells: starts, the state at the switch, switching time.
  std::vector<double> u0(static_cast<size_t>(G), 0.0), s0(static_cast<size_t>(G), 0.0);
  const std::vector<DynamicsWithGrad<double>> at_switch = switch_states(o, gene, G);
  std::vector<double> switching(static_cast<size_t>(G));
  for (int64_t g = 0; g < G; ++g) {
    if (o.add_offset) {
      u0[g] = gene[kUOffset][g];
      s0[g] = gene[kSOffset][g];
    }
    switching[g] = gene[kT0][g] + gene[kDtSwitching][g];
  }

  const int64_t chunks = std::max<int64_t>(1, std::min(kChunks, B));
  std::vector<ChunkSums> sums(static_cast<size_t>(chunks));
  if (grad) {
    grad->cell_time.assign(static_cast<size_t>(B), 0.0);
    grad->u_read_depth.assign(static_cast<size_t>(B), 0.0);
    grad->s_read_depth.assign(static_cast<size_t>(B), 0.0);
  }

#pragma omp parallel
  {
    std::vector<GeneScratch> scratch(static_cast<size_t>(G));
    std::vector<double> u_counts(static_cast<size_t>(G)), s_counts(static_cast<size_t>(G));
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      ChunkSums& acc = sums[chunk];
      acc.reset(G);
      for (int64_t b = B * chunk / chunks; b < B * (chunk + 1) / chunks; ++b) {
        const int64_t row = in.cells ? in.cells[b] : b;
        load_row(*data.unspliced, row, &u_counts);
        load_row(*data.spliced, row, &s_counts);
        const double t = in.cell_time[b];
        const double rd_u = in.u_read_depth[b], rd_s = in.s_read_depth[b];
        acc.value -= data.row_log_factorial ? data.row_log_factorial[row] : row_log_factorial(data, row);

        // Pass 1: dynamics of both states, the state probabilities, the normalisers.
        double norm_u = 0, norm_s = 0;
        for (int64_t g = 0; g < G; ++g) {
          GeneScratch& x = scratch[g];
          const double beta = gene[kBeta][g], gamma = gene[kGamma][g], u_scale = gene[kUScale][g];
          x.x1 = t - switching[g];
          const SoftplusSigmoid<double> induction = softplus_and_sigmoid(t - gene[kT0][g]);
          const SoftplusSigmoid<double> repression = softplus_and_sigmoid(x.x1);
          x.p1 = repression.sigmoid;
          x.softplus_x1 = repression.softplus;
          x.sig_t0 = induction.sigmoid;
          x.dyn[0] = mrna_dynamics_with_grad(induction.softplus, u0[g], s0[g], gene[kAlpha][g], beta, gamma);
          x.dyn[1] = mrna_dynamics_with_grad(repression.softplus, at_switch[g].u, at_switch[g].s, 0.0, beta, gamma);
          for (int k = 0; k < 2; ++k) {
            x.uu[k] = u_scale * x.dyn[k].u;
            x.ut[k] = (x.uu[k] > 0 ? x.uu[k] : 0.0) + kEps;
            x.st[k] = (x.dyn[k].s > 0 ? x.dyn[k].s : 0.0) + kEps;
          }
          if (marginal) {
            norm_u += (1 - x.p1) * x.ut[0] + x.p1 * x.ut[1];
            norm_s += (1 - x.p1) * x.st[0] + x.p1 * x.st[1];
          } else {
            if (in.fixed_states) {
              x.state = in.fixed_states[b * G + g];
            } else {
              CounterStream rng(in.state_seed, kStateStream, uint64_t(row) * uint64_t(G) + uint64_t(g));
              x.state = sample_bernoulli_logit(x.x1, rng) ? 1 : 0;
            }
            norm_u += x.ut[x.state];
            norm_s += x.st[x.state];
          }
        }

        // Pass 2: log-likelihood of both counts under each state, summed out or at the drawn one.
        double a_u = 0, a_s = 0;  // d/d(normaliser)
        double g_rd_u = 0, g_rd_s = 0;
        for (int64_t g = 0; g < G; ++g) {
          GeneScratch& x = scratch[g];
          const double log_ru = nb ? in.log_dispersion_u[g] : 0.0, log_rs = nb ? in.log_dispersion_s[g] : 0.0;
          double term[2], w[2] = {0, 0};
          CountLogLik lu[2], ls[2];
          double rate_u[2], rate_s[2];
          const int first = marginal ? 0 : x.state, last = marginal ? 1 : x.state;
          for (int k = first; k <= last; ++k) {
            rate_u[k] = library ? (x.ut[k] / norm_u + kEps) * rd_u : x.ut[k];
            rate_s[k] = library ? (x.st[k] / norm_s + kEps) * rd_s : x.st[k];
            lu[k] = count_log_lik(u_counts[g], rate_u[k], nb, log_ru);
            ls[k] = count_log_lik(s_counts[g], rate_s[k], nb, log_rs);
            // log sigmoid(x1) = x1 - softplus(x1); log sigmoid(-x1) = -softplus(x1)
            term[k] = (k == 1 ? x.x1 - x.softplus_x1 : -x.softplus_x1) + lu[k].value + ls[k].value;
          }
          if (marginal) {
            const LogSumExp2<double> lse = logsumexp2(term[0], term[1]);
            acc.value += lse.value;
            w[0] = lse.d_a;
            w[1] = lse.d_b;
          } else {
            acc.value += term[x.state];
            w[x.state] = 1.0;
          }
          if (!grad) continue;
          // d log p(k) / d x1: sigmoid(-x1) for k = 1, -sigmoid(x1) for k = 0.
          x.g_x1 = w[1] * (1 - x.p1) - w[0] * x.p1;
          for (int k = 0; k < 2; ++k) {
            x.g_ut[k] = x.g_st[k] = 0;
            if (w[k] == 0) continue;
            const double gu = w[k] * lu[k].d_rate, gs = w[k] * ls[k].d_rate;
            if (library) {
              x.g_ut[k] = gu * rd_u / norm_u;
              x.g_st[k] = gs * rd_s / norm_s;
              a_u -= gu * x.ut[k] * rd_u / (norm_u * norm_u);
              a_s -= gs * x.st[k] * rd_s / (norm_s * norm_s);
              g_rd_u += gu * (x.ut[k] / norm_u + kEps);
              g_rd_s += gs * (x.st[k] / norm_s + kEps);
            } else {
              x.g_ut[k] = gu;
              x.g_st[k] = gs;
            }
            if (nb) {
              acc.slot[ChunkSums::kRu][g] += w[k] * lu[k].d_log_r;
              acc.slot[ChunkSums::kRs][g] += w[k] * ls[k].d_log_r;
            }
          }
        }
        if (!grad) continue;

        // Pass 3: the normaliser's share, then back through relu, u_scale and both dynamics.
        double g_t = 0;
        for (int64_t g = 0; g < G; ++g) {
          GeneScratch& x = scratch[g];
          if (library) {
            if (marginal) {
              x.g_ut[0] += a_u * (1 - x.p1);
              x.g_ut[1] += a_u * x.p1;
              x.g_st[0] += a_s * (1 - x.p1);
              x.g_st[1] += a_s * x.p1;
              x.g_x1 += (a_u * (x.ut[1] - x.ut[0]) + a_s * (x.st[1] - x.st[0])) * x.p1 * (1 - x.p1);
            } else {
              x.g_ut[x.state] += a_u;
              x.g_st[x.state] += a_s;
            }
          }
          double g_dyn_u[2], g_dyn_s[2];
          for (int k = 0; k < 2; ++k) {
            const double g_uu = x.uu[k] > 0 ? x.g_ut[k] : 0.0;
            g_dyn_u[k] = g_uu * gene[kUScale][g];
            g_dyn_s[k] = x.dyn[k].s > 0 ? x.g_st[k] : 0.0;
            acc.slot[kUScale][g] += g_uu * x.dyn[k].u;
          }
          double in0[kDynInputs], in1[kDynInputs];
          for (int j = 0; j < kDynInputs; ++j) {
            in0[j] = g_dyn_u[0] * x.dyn[0].du[j] + g_dyn_s[0] * x.dyn[0].ds[j];
            in1[j] = g_dyn_u[1] * x.dyn[1].du[j] + g_dyn_s[1] * x.dyn[1].ds[j];
          }
          // Induction: tau0 = softplus(t - t0), start (u0, s0), rate alpha.
          g_t += in0[kDynTau] * x.sig_t0;
          acc.slot[kT0][g] -= in0[kDynTau] * x.sig_t0;
          if (o.add_offset) {
            acc.slot[kUOffset][g] += in0[kDynU0];
            acc.slot[kSOffset][g] += in0[kDynS0];
          }
          acc.slot[kAlpha][g] += in0[kDynAlpha];
          acc.slot[kBeta][g] += in0[kDynBeta] + in1[kDynBeta];
          acc.slot[kGamma][g] += in0[kDynGamma] + in1[kDynGamma];
          // Repression: tau1 = softplus(x1), start (u_inf, s_inf), rate 0.
          const double g_x1 = x.g_x1 + in1[kDynTau] * x.p1;
          acc.slot[ChunkSums::kUInf][g] += in1[kDynU0];
          acc.slot[ChunkSums::kSInf][g] += in1[kDynS0];
          g_t += g_x1;
          acc.slot[ChunkSums::kSwitching][g] -= g_x1;
        }
        grad->cell_time[b] = g_t;
        grad->u_read_depth[b] = library ? g_rd_u : 0.0;
        grad->s_read_depth[b] = library ? g_rd_s : 0.0;
      }
    }
  }

  // Reduce the chunks in order, then chain the derived gene quantities to the sites.
  double value = 0;
  for (const ChunkSums& acc : sums) value += acc.value;
  if (!grad) return value;
  ChunkSums total;
  total.reset(G);
  for (const ChunkSums& acc : sums)
    for (int s = 0; s < ChunkSums::kSlots; ++s)
      for (int64_t g = 0; g < G; ++g) total.slot[s][g] += acc.slot[s][g];
  // The same chain to the gene sites as the vectorised and CUDA paths, from their slot order.
  std::vector<double> slots(static_cast<size_t>(kGeneSlots * G));
  const std::pair<int, int> slot_of[] = {
      {kSlotAlpha, kAlpha}, {kSlotBeta, kBeta},     {kSlotGamma, kGamma},          {kSlotT0, kT0},
      {kSlotUScale, kUScale}, {kSlotU0, kUOffset}, {kSlotS0, kSOffset},           {kSlotUInf, ChunkSums::kUInf},
      {kSlotSInf, ChunkSums::kSInf}, {kSlotSwitch, ChunkSums::kSwitching}};
  for (const auto& [slot, source] : slot_of)
    std::copy(total.slot[source].begin(), total.slot[source].end(), slots.begin() + int64_t(slot) * G);
  chain_gene_slots(o, at_switch, slots, G, grad);
  if (nb) {
    grad->log_dispersion_u = total.slot[ChunkSums::kRu];
    grad->log_dispersion_s = total.slot[ChunkSums::kRs];
  }
  return value;
}

}  // namespace pv

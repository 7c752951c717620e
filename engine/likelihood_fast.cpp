// Compiled with -mavx2 -mfma -fopenmp-simd -fno-math-errno (engine/CMakeLists.txt) and entered
// only after fast_likelihood_available() has checked the CPU. Every loop over genes is branch-free
// so that GCC vectorises it and calls glibc's vector expf/logf/log1pf (libmvec).
#include "engine/likelihood_fast.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/gene_slots.h"
#include "kernels/dynamics.h"

extern "C" {
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float logf(float);
__attribute__((simd("notinbranch"))) float log1pf(float);
}

namespace pv {
namespace {

constexpr float kEps = 1e-6f;

// e^-x for x >= 0, with the argument clamped at 80 (e^-80 = 1.8e-35, as good as 0 here): glibc's
// vector expf and log1pf hand lanes outside their normal range to the scalar routines, which
// would make every underflowing lane cost a function call.
__attribute__((always_inline)) inline float exp_neg(float x) { return expf(-std::min(x, 80.0f)); }
constexpr int64_t kChunks = 64;  // as the reference path: thread-count independent sums

// e^-x, phi(x) = (1 - e^-x)/x and phi'(x) for x >= 0, branch-free: a short series below 0.05,
// the closed forms above (phi' as -(phi - e^-x)/x, which keeps float cancellation small).
struct DecayF {
  float e, phi, dphi;
};
__attribute__((always_inline)) inline DecayF decay_f(float x) {
  const float e = exp_neg(x);
  const float xs = std::max(x, 1e-30f);
  const float phi_c = (1.0f - e) / xs;
  const float dphi_c = -(phi_c - e) / xs;
  const float phi_s = 1.0f - x * (0.5f - x * (1.0f / 6 - x * (1.0f / 24 - x * (1.0f / 120))));
  const float dphi_s = -0.5f + x * (1.0f / 3 - x * (0.125f - x * (1.0f / 30 - x * (1.0f / 144))));
  const bool small = x < 0.05f;
  return {e, small ? phi_s : phi_c, small ? dphi_s : dphi_c};
}

// The partial derivatives pass 3 needs, for one state of one gene (rate 0 in repression).
struct DynF {
  float u, s;
  float du_tau, du_u0, du_alpha, du_beta;
  float ds_tau, ds_u0, ds_s0, ds_alpha, ds_beta, ds_gamma;
};
__attribute__((always_inline)) inline DynF dynamics_f(float tau, float u0, float s0, float alpha, float beta, float gamma) {
  const DecayF db = decay_f(beta * tau), dg = decay_f(gamma * tau);
  const bool b_low = beta <= gamma;
  const float lo = b_low ? beta : gamma, gap = b_low ? gamma - beta : beta - gamma;
  const DecayF dd = decay_f(gap * tau);
  const float e_lo = b_low ? db.e : dg.e;
  const float E = e_lo * dd.phi, e_dphi = e_lo * dd.dphi;
  const float d_lo = -tau * E - tau * e_dphi, d_hi = tau * e_dphi, dE_dtau = -lo * E + gap * e_dphi;
  const float dE_db = b_low ? d_lo : d_hi, dE_dg = b_low ? d_hi : d_lo;
  const float eu = db.e, es = dg.e, k = alpha - beta * u0;
  DynF r;
  r.u = u0 * eu + alpha * tau * db.phi;
  r.s = s0 * es + alpha * tau * dg.phi - k * tau * E;
  r.du_tau = k * eu;
  r.du_u0 = eu;
  r.du_alpha = tau * db.phi;
  r.du_beta = -tau * u0 * eu + alpha * tau * tau * db.dphi;
  r.ds_tau = -gamma * s0 * es + alpha * es - k * (E + tau * dE_dtau);
  r.ds_u0 = beta * tau * E;
  r.ds_s0 = es;
  r.ds_alpha = tau * dg.phi - tau * E;
  r.ds_beta = u0 * tau * E - k * tau * dE_db;
  r.ds_gamma = -s0 * tau * es + alpha * tau * tau * dg.dphi - k * tau * dE_dg;
  return r;
}

// Per-gene inputs of the step, as float arrays.
enum GeneArray { gAlpha, gBeta, gGamma, gT0, gSwitch, gUScale, gU0, gS0, gUInf, gSInf, kGeneArrays };

// Per-gene results of passes 1 and 2 for the current cell.
enum Scratch {
  sX1, sSp1, sP1, sSigT0, sUt0, sUt1, sSt0, sSt1, sMaskU0, sMaskU1, sMaskS0, sMaskS1, sU0, sU1,
  // state 0 partials
  a0DuTau, a0DuU0, a0DuAlpha, a0DuBeta, a0DsTau, a0DsU0, a0DsS0, a0DsAlpha, a0DsBeta, a0DsGamma,
  // state 1 partials (rate 0)
  a1DuTau, a1DuU0, a1DuBeta, a1DsTau, a1DsU0, a1DsS0, a1DsBeta, a1DsGamma,
  sGUt0, sGUt1, sGSt0, sGSt1, sGX1, sCountU, sCountS, kScratch
};

// Per-chunk gene gradient sums (float within a chunk, reduced across chunks in double), in the
// order of GeneSlot.
enum Slot { cAlpha = kSlotAlpha, cBeta = kSlotBeta, cGamma = kSlotGamma, cT0 = kSlotT0, cUScale = kSlotUScale,
            cU0 = kSlotU0, cS0 = kSlotS0, cUInf = kSlotUInf, cSInf = kSlotSInf, cSwitch = kSlotSwitch, kSlots = kGeneSlots };

}  // namespace

bool fast_likelihood_available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

bool fast_likelihood_covers(const ModelOptions& o) {
  return o.likelihood == Likelihood::kPoisson && o.state == StateMode::kMarginal;
}

double cell_gene_log_likelihood_fast(const CountView& data, const ModelOptions& o, const LikelihoodInputs& in,
                                     LikelihoodGradients* grad) {
  require(fast_likelihood_covers(o), PV_ERR_INTERNAL, "the fast likelihood does not cover these options");
  require(data.row_log_factorial != nullptr, PV_ERR_INTERNAL, "the fast likelihood needs the per-cell log-factorials");
  const int64_t G = data.genes(), B = in.batch;
  const bool library = o.correct_library_size;
  const double* const* gene = in.gene;

  // Gene-level inputs and the state at the switch (in double, once per step).
  std::vector<float> gv[kGeneArrays];
  for (auto& v : gv) v.resize(static_cast<size_t>(G));
  const std::vector<DynamicsWithGrad<double>> at_switch = switch_states(o, gene, G);
  for (int64_t g = 0; g < G; ++g) {
    const double u0 = o.add_offset ? gene[kUOffset][g] : 0.0, s0 = o.add_offset ? gene[kSOffset][g] : 0.0;
    gv[gAlpha][g] = float(gene[kAlpha][g]);
    gv[gBeta][g] = float(gene[kBeta][g]);
    gv[gGamma][g] = float(gene[kGamma][g]);
    gv[gT0][g] = float(gene[kT0][g]);
    gv[gSwitch][g] = float(gene[kT0][g] + gene[kDtSwitching][g]);
    gv[gUScale][g] = float(gene[kUScale][g]);
    gv[gU0][g] = float(u0);
    gv[gS0][g] = float(s0);
    gv[gUInf][g] = float(at_switch[g].u);
    gv[gSInf][g] = float(at_switch[g].s);
  }

  const int64_t chunks = std::max<int64_t>(1, std::min(kChunks, B));
  std::vector<std::vector<float>> sums(static_cast<size_t>(chunks));
  std::vector<double> chunk_value(static_cast<size_t>(chunks), 0.0);
  if (grad) {
    grad->cell_time.assign(static_cast<size_t>(B), 0.0);
    grad->u_read_depth.assign(static_cast<size_t>(B), 0.0);
    grad->s_read_depth.assign(static_cast<size_t>(B), 0.0);
  }

#pragma omp parallel
  {
    std::vector<float> scratch(static_cast<size_t>(kScratch * G));
    float* x[kScratch];
    for (int k = 0; k < kScratch; ++k) x[k] = scratch.data() + k * G;
    const float* alpha = gv[gAlpha].data();
    const float* beta = gv[gBeta].data();
    const float* gamma = gv[gGamma].data();
    const float* t0 = gv[gT0].data();
    const float* sw = gv[gSwitch].data();
    const float* u_scale = gv[gUScale].data();
    const float* u0 = gv[gU0].data();
    const float* s0 = gv[gS0].data();
    const float* u_inf = gv[gUInf].data();
    const float* s_inf = gv[gSInf].data();
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      std::vector<float>& acc_store = sums[chunk];
      acc_store.assign(static_cast<size_t>(kSlots * G), 0.0f);
      float* acc[kSlots];
      for (int k = 0; k < kSlots; ++k) acc[k] = acc_store.data() + k * G;
      double value = 0;
      for (int64_t b = B * chunk / chunks; b < B * (chunk + 1) / chunks; ++b) {
        const int64_t row = in.cells ? in.cells[b] : b;
        for (const auto& [matrix, out] : {std::pair{data.unspliced, x[sCountU]}, std::pair{data.spliced, x[sCountS]}}) {
          if (matrix->sparse) {
            std::fill(out, out + G, 0.0f);
            for (int64_t p = matrix->indptr[row]; p < matrix->indptr[row + 1]; ++p) out[matrix->indices[p]] = matrix->data[p];
          } else {
            std::copy(matrix->dense.begin() + row * G, matrix->dense.begin() + (row + 1) * G, out);
          }
        }
        const float t = float(in.cell_time[b]);
        const float rd_u = float(in.u_read_depth[b]), rd_s = float(in.s_read_depth[b]);

        // Pass 1: both states' dynamics with their partials, state probabilities, normalisers.
        float norm_u = 0, norm_s = 0;
#pragma omp simd reduction(+ : norm_u, norm_s)
        for (int64_t g = 0; g < G; ++g) {
          const float a = t - t0[g], x1 = t - sw[g];
          const float ea = exp_neg(std::fabs(a)), e1 = exp_neg(std::fabs(x1));
          const float sp_a = std::max(a, 0.0f) + log1pf(ea), sp1 = std::max(x1, 0.0f) + log1pf(e1);
          const float inv_a = 1.0f / (1.0f + ea), inv1 = 1.0f / (1.0f + e1);
          const float p1 = x1 >= 0 ? inv1 : e1 * inv1;
          const DynF d0 = dynamics_f(sp_a, u0[g], s0[g], alpha[g], beta[g], gamma[g]);
          const DynF d1 = dynamics_f(sp1, u_inf[g], s_inf[g], 0.0f, beta[g], gamma[g]);
          const float uu0 = u_scale[g] * d0.u, uu1 = u_scale[g] * d1.u;
          const float ut0 = std::max(uu0, 0.0f) + kEps, ut1 = std::max(uu1, 0.0f) + kEps;
          const float st0 = std::max(d0.s, 0.0f) + kEps, st1 = std::max(d1.s, 0.0f) + kEps;
          x[sX1][g] = x1;
          x[sSp1][g] = sp1;
          x[sP1][g] = p1;
          x[sSigT0][g] = a >= 0 ? inv_a : ea * inv_a;
          x[sUt0][g] = ut0, x[sUt1][g] = ut1, x[sSt0][g] = st0, x[sSt1][g] = st1;
          x[sMaskU0][g] = uu0 > 0 ? 1.0f : 0.0f, x[sMaskU1][g] = uu1 > 0 ? 1.0f : 0.0f;
          x[sMaskS0][g] = d0.s > 0 ? 1.0f : 0.0f, x[sMaskS1][g] = d1.s > 0 ? 1.0f : 0.0f;
          x[sU0][g] = d0.u, x[sU1][g] = d1.u;
          x[a0DuTau][g] = d0.du_tau, x[a0DuU0][g] = d0.du_u0, x[a0DuAlpha][g] = d0.du_alpha, x[a0DuBeta][g] = d0.du_beta;
          x[a0DsTau][g] = d0.ds_tau, x[a0DsU0][g] = d0.ds_u0, x[a0DsS0][g] = d0.ds_s0;
          x[a0DsAlpha][g] = d0.ds_alpha, x[a0DsBeta][g] = d0.ds_beta, x[a0DsGamma][g] = d0.ds_gamma;
          x[a1DuTau][g] = d1.du_tau, x[a1DuU0][g] = d1.du_u0, x[a1DuBeta][g] = d1.du_beta;
          x[a1DsTau][g] = d1.ds_tau, x[a1DsU0][g] = d1.ds_u0, x[a1DsS0][g] = d1.ds_s0;
          x[a1DsBeta][g] = d1.ds_beta, x[a1DsGamma][g] = d1.ds_gamma;
          norm_u += (1 - p1) * ut0 + p1 * ut1;
          norm_s += (1 - p1) * st0 + p1 * st1;
        }

        // Pass 2: the Poisson log-likelihoods of both states, summed out over k.
        // rate = ut' * scale + offset: (ut'/N + eps) * depth with library correction, else ut'.
        // No loop-invariant branch inside the loop, so that GCC vectorises one version of it.
        const float inv_u = 1.0f / norm_u, inv_s = 1.0f / norm_s;
        const float scale_u = library ? rd_u * inv_u : 1.0f, offset_u = library ? kEps * rd_u : 0.0f;
        const float scale_s = library ? rd_s * inv_s : 1.0f, offset_s = library ? kEps * rd_s : 0.0f;
        float cell_value = 0, a_u = 0, a_s = 0, g_rd_u = 0, g_rd_s = 0;
#pragma omp simd reduction(+ : cell_value, a_u, a_s, g_rd_u, g_rd_s)
        for (int64_t g = 0; g < G; ++g) {
          const float cu = x[sCountU][g], cs = x[sCountS][g];
          const float ut0 = x[sUt0][g], ut1 = x[sUt1][g], st0 = x[sSt0][g], st1 = x[sSt1][g];
          const float ru0 = ut0 * scale_u + offset_u, ru1 = ut1 * scale_u + offset_u;
          const float rs0 = st0 * scale_s + offset_s, rs1 = st1 * scale_s + offset_s;
          const float lu0 = cu * logf(ru0) - ru0, lu1 = cu * logf(ru1) - ru1;
          const float ls0 = cs * logf(rs0) - rs0, ls1 = cs * logf(rs1) - rs1;
          const float x1 = x[sX1][g], sp1 = x[sSp1][g], p1 = x[sP1][g];
          const float term0 = -sp1 + lu0 + ls0, term1 = x1 - sp1 + lu1 + ls1;
          const float hi = std::max(term0, term1);
          const float e = exp_neg(std::fabs(term0 - term1));
          cell_value += hi + log1pf(e);
          const float w_hi = 1.0f / (1.0f + e), w_lo = e * w_hi;
          const float w0 = term0 > term1 ? w_hi : w_lo, w1 = term0 > term1 ? w_lo : w_hi;
          x[sGX1][g] = w1 * (1 - p1) - w0 * p1;
          const float gu0 = w0 * (cu / ru0 - 1), gu1 = w1 * (cu / ru1 - 1);
          const float gs0 = w0 * (cs / rs0 - 1), gs1 = w1 * (cs / rs1 - 1);
          x[sGUt0][g] = gu0 * scale_u;
          x[sGUt1][g] = gu1 * scale_u;
          x[sGSt0][g] = gs0 * scale_s;
          x[sGSt1][g] = gs1 * scale_s;
          a_u -= (gu0 * ut0 + gu1 * ut1) * rd_u * inv_u * inv_u;
          a_s -= (gs0 * st0 + gs1 * st1) * rd_s * inv_s * inv_s;
          g_rd_u += gu0 * (ut0 * inv_u + kEps) + gu1 * (ut1 * inv_u + kEps);
          g_rd_s += gs0 * (st0 * inv_s + kEps) + gs1 * (st1 * inv_s + kEps);
        }
        value += double(cell_value) - data.row_log_factorial[row];
        if (!grad) continue;
        if (!library) a_u = a_s = 0;

        // Pass 3: the normaliser's share, then back through relu, u_scale and both dynamics.
        float g_t = 0;
#pragma omp simd reduction(+ : g_t)
        for (int64_t g = 0; g < G; ++g) {
          const float p1 = x[sP1][g], p0 = 1 - p1;
          const float g_ut0 = x[sGUt0][g] + a_u * p0, g_ut1 = x[sGUt1][g] + a_u * p1;
          const float g_st0 = x[sGSt0][g] + a_s * p0, g_st1 = x[sGSt1][g] + a_s * p1;
          const float g_x1_norm = (a_u * (x[sUt1][g] - x[sUt0][g]) + a_s * (x[sSt1][g] - x[sSt0][g])) * p1 * p0;
          const float g_uu0 = x[sMaskU0][g] * g_ut0, g_uu1 = x[sMaskU1][g] * g_ut1;
          const float gu0 = g_uu0 * u_scale[g], gu1 = g_uu1 * u_scale[g];
          const float gs0 = x[sMaskS0][g] * g_st0, gs1 = x[sMaskS1][g] * g_st1;
          acc[cUScale][g] += g_uu0 * x[sU0][g] + g_uu1 * x[sU1][g];
          const float g_tau0 = gu0 * x[a0DuTau][g] + gs0 * x[a0DsTau][g];
          const float g_tau1 = gu1 * x[a1DuTau][g] + gs1 * x[a1DsTau][g];
          acc[cU0][g] += gu0 * x[a0DuU0][g] + gs0 * x[a0DsU0][g];
          acc[cS0][g] += gs0 * x[a0DsS0][g];
          acc[cAlpha][g] += gu0 * x[a0DuAlpha][g] + gs0 * x[a0DsAlpha][g];
          acc[cBeta][g] += gu0 * x[a0DuBeta][g] + gs0 * x[a0DsBeta][g] + gu1 * x[a1DuBeta][g] + gs1 * x[a1DsBeta][g];
          acc[cGamma][g] += gs0 * x[a0DsGamma][g] + gs1 * x[a1DsGamma][g];
          acc[cUInf][g] += gu1 * x[a1DuU0][g] + gs1 * x[a1DsU0][g];
          acc[cSInf][g] += gs1 * x[a1DsS0][g];
          const float g_t0 = g_tau0 * x[sSigT0][g];
          acc[cT0][g] -= g_t0;
          const float g_x1 = x[sGX1][g] + g_x1_norm + g_tau1 * p1;
          acc[cSwitch][g] -= g_x1;
          g_t += g_t0 + g_x1;
        }
        grad->cell_time[b] = g_t;
        grad->u_read_depth[b] = library ? g_rd_u : 0.0;
        grad->s_read_depth[b] = library ? g_rd_s : 0.0;
      }
      chunk_value[chunk] = value;
    }
  }

  double value = 0;
  for (double v : chunk_value) value += v;
  if (!grad) return value;
  std::vector<double> total(static_cast<size_t>(kSlots * G), 0.0);
  for (const auto& acc : sums)
    for (size_t i = 0; i < total.size(); ++i) total[i] += acc[i];
  chain_gene_slots(o, at_switch, total, G, grad);
  return value;
}

}  // namespace pv

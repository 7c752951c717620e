// Compiled with -mavx2 -mfma -fopenmp-simd -fno-math-errno (engine/CMakeLists.txt) and entered
// only after fast_likelihood_available() has checked the CPU. Every loop over genes is branch-free
// and calls only the inline functions of engine/vector_math.h, so that GCC vectorises it whole.
//
// The work of a cell is cut into many short loops over the genes, each a few dozen to ~200
// instructions per 8 genes, passing values through per-gene scratch arrays. One loop for both
// states' dynamics was ~500 instructions per 8 genes along a ~200-cycle chain of dependent
// exponentials, logs and divisions: longer than the core's reorder window, so one iteration could
// not start before the last had nearly finished. Short loops let the core overlap iterations; the
// extra loads and stores cost less than the idle cycles they remove (13 % less time per call in
// alternating runs, bench/results/fit_cpu.md).
#include "engine/likelihood_fast.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <xmmintrin.h>

#include "engine/error.h"
#include "engine/gene_slots.h"
#include "engine/vector_math.h"
#include "kernels/dynamics.h"

namespace pv {
namespace {

using vmath::exp_neg;
using vmath::exp_neg_phi;
using vmath::ExpPhi;
using vmath::gap_decay;
using vmath::GapDecay;
using vmath::Log1pReciprocal;
using vmath::log1p_reciprocal_unit;
using vmath::log_positive;
using vmath::max_f;
using vmath::max_nonnegative;
using vmath::relu;

constexpr float kEps = 1e-6f;
constexpr int64_t kChunks = 64;  // as the reference path: thread-count independent sums
// For cell times t within this bound, e^-|t - t0| is taken as a product of e^+-t and the gene's
// e^-+t0: both factors are then normal floats (the gene's clamped to e^+-80 where it is not chosen).
constexpr double kProductTimes = 40.0;
const float kExpFloor = vmath::exp_neg(80.0f);  // exp_neg's clamp: e^-80

// The partial derivatives pass 3 needs, for one state of one gene, in this order from the state's
// first scratch array; the repression state (rate 0) leaves its alpha slots unwritten.
enum Partial { pDuTau, pDuU0, pDuAlpha, pDuBeta, pDsTau, pDsU0, pDsS0, pDsAlpha, pDsBeta, pDsGamma, kPartials };

// Flushes denormal floats to zero on this thread while it lives, then restores the thread's
// floating-point control word (the library must not change its caller's). Late in a fit some
// partials and products fall below 1.2e-38 (e^-beta tau near exp_neg's e^-80 floor times a small
// start or rate), and every denormal operand or result costs a microcode assist: a call on a
// pancreas model trained for 1200 epochs took 5 % longer without this (bench/results/fit_cpu.md).
// Values that small contribute nothing to the float sums here.
class FlushDenormals {
 public:
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero); }
  ~FlushDenormals() { _mm_setcsr(saved_); }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  const unsigned saved_;
};

struct UnsplicedSpliced {
  float u, s;
};

// One state's u, s at tau from the exponentials pb = e^-beta tau and pg = e^-gamma tau (with
// phi and phi' for the induction state; the repression state reads only .e), writing the partials
// to out[Partial][g]. They are written here rather than returned in a struct: a struct local inside
// an `omp simd` loop becomes a per-lane array that GCC can only fill with scatters, and it then
// leaves the whole loop scalar. kStart false: the state starts from the constant 0 (the induction
// state without offsets), so the partials in u0, s0 are left unwritten.
template <bool kInduction, bool kStart = true>
__attribute__((always_inline)) inline UnsplicedSpliced dynamics_f(float tau, float u0, float s0, float alpha, float beta,
                                                                  float gamma, float inv_gap, ExpPhi pb, ExpPhi pg,
                                                                  float* const* out, int64_t g) {
  const float eu = pb.e, es = pg.e;
  const GapDecay gd = gap_decay(tau, beta, gamma, inv_gap, eu, es);
  const float tau_E = gd.tau_E;
  const float k = alpha - beta * u0;
  if constexpr (kStart) {
    out[pDuU0][g] = eu;
    out[pDsU0][g] = beta * tau_E;
    out[pDsS0][g] = es;
  }
  out[pDsBeta][g] = u0 * tau_E - k * gd.tau_dE_dbeta;
  float u = u0 * eu, s = s0 * es - k * tau_E;
  float du_beta = -tau * u0 * eu, ds_gamma = -s0 * tau * es - k * gd.tau_dE_dgamma;
  if constexpr (kInduction) {  // the terms in alpha, which the repression state (rate 0) does without
    u += alpha * tau * pb.phi;
    s += alpha * tau * pg.phi;
    du_beta += alpha * tau * tau * pb.dphi;
    ds_gamma += alpha * tau * tau * pg.dphi;
    out[pDuAlpha][g] = tau * pb.phi;
    out[pDsAlpha][g] = tau * pg.phi - tau_E;
  }
  // The time derivatives are the ODE itself: du/dtau = alpha - beta u, ds/dtau = beta u - gamma s.
  out[pDuTau][g] = alpha - beta * u;
  out[pDsTau][g] = beta * u - gamma * s;
  out[pDuBeta][g] = du_beta;
  out[pDsGamma][g] = ds_gamma;
  return {u, s};
}

// Per-gene inputs of the step, as float arrays.
enum GeneArray {
  gAlpha, gBeta, gGamma, gInvGap, gT0, gSwitch, gExpT0, gExpNegT0, gExpSwitch, gExpNegSwitch,
  gUScale, gU0, gS0, gUInf, gSInf, kGeneArrays
};

// Per-gene results of passes 1 and 2 for the current cell.
enum Scratch {
  sX1, sSp1, sP1, sSigT0, sUt0, sUt1, sSt0, sSt1, sMaskU0, sMaskU1, sMaskS0, sMaskS1, sU0, sU1,
  s0Partials, s1Partials = s0Partials + kPartials,  // each state's Partial arrays
  // Each state's c_u log(rate_u) + c_s log(rate_s), and c / rate of each count and state: 0 where
  // the counts are 0, the only place logs are taken
  sLog0 = s1Partials + kPartials, sLog1, sRatioU0, sRatioU1, sRatioS0, sRatioS1, kScratch,
  // Arrays whose lives do not overlap share storage (a smaller footprint in L2): pass 1's
  // softplus(t - t0) (read last by the induction state, before the repression state writes its
  // mask) and the induction state's exponentials take arrays that the repression state writes
  // after the induction state has read them; the repression state's exponentials take the log
  // arrays, refilled with 0 after pass 1; pass 2's adjoints take the ratios they are made from
  // and a log array that pass 2a has read.
  sTau0 = sMaskU1, sEu0 = s1Partials, sPhiB, sDphiB, sEs0, sPhiG, sDphiG, sEu1 = sLog0, sEs1,
  sGUt0 = sRatioU0, sGUt1 = sRatioU1, sGSt0 = sRatioS0, sGSt1 = sRatioS1, sGX1 = sLog0
};

// One cell's nonzero counts of one layer, as (gene, count) lists, and their c log(rate), c / rate
// for both states. A CSR row without stored zeros is such a list already and is read in place.
struct RowNonzeros {
  std::vector<int32_t> gene_store;
  std::vector<float> count_store, log0, log1, ratio0, ratio1;
  const int32_t* gene = nullptr;
  const float* count = nullptr;
  int64_t size = 0;

  void load(const io::CountMatrix& m, int64_t row, bool stored_zeros) {
    const int64_t G = m.cols;
    if (log0.size() < size_t(G))
      for (auto* v : {&count_store, &log0, &log1, &ratio0, &ratio1}) v->resize(size_t(G));
    if (m.sparse && !stored_zeros) {
      gene = m.indices.data() + m.indptr[row];
      count = m.data.data() + m.indptr[row];
      size = m.indptr[row + 1] - m.indptr[row];
      return;
    }
    gene_store.resize(size_t(G));
    size = 0;
    if (m.sparse) {
      for (int64_t p = m.indptr[row]; p < m.indptr[row + 1]; ++p) {
        if (m.data[p] == 0) continue;
        gene_store[size] = m.indices[p], count_store[size++] = m.data[p];
      }
    } else {
      const float* dense = m.dense.data() + row * G;
      for (int64_t g = 0; g < G; ++g)
        if (dense[g] != 0) gene_store[size] = int32_t(g), count_store[size++] = dense[g];
    }
    gene = gene_store.data();
    count = count_store.data();
  }

  // rate = x * scale + offset for x = rate0 / rate1 at each nonzero gene; gathers, vectorised.
  void evaluate(const float* rate0, const float* rate1, float scale, float offset) {
    const int32_t* at = gene;
    const float* c = count;
    float *l0 = log0.data(), *l1 = log1.data(), *q0 = ratio0.data(), *q1 = ratio1.data();
#pragma omp simd
    for (int64_t p = 0; p < size; ++p) {
      const float r0 = rate0[at[p]] * scale + offset, r1 = rate1[at[p]] * scale + offset;
      l0[p] = c[p] * log_positive(r0), l1[p] = c[p] * log_positive(r1);
      q0[p] = c[p] / r0, q1[p] = c[p] / r1;
    }
  }

  // Adds the logs into the two per-state sums and writes the two ratios, at the nonzero genes.
  void scatter(float* l0, float* l1, float* q0, float* q1) const {
    for (int64_t p = 0; p < size; ++p) {
      const int32_t g = gene[p];
      l0[g] += log0[p], l1[g] += log1[p], q0[g] = ratio0[p], q1[g] = ratio1[p];
    }
  }
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
  const bool library = o.correct_library_size, offset = o.add_offset;
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
    gv[gInvGap][g] = vmath::inverse_gap(gene[kBeta][g], gene[kGamma][g]);
    gv[gT0][g] = float(gene[kT0][g]);
    gv[gSwitch][g] = float(gene[kT0][g] + gene[kDtSwitching][g]);
    // Clamped to e^+-80: a factor beyond it is only chosen for cell times beyond kProductTimes.
    const double t0 = std::clamp(gene[kT0][g], -80.0, 80.0);
    const double sw = std::clamp(gene[kT0][g] + gene[kDtSwitching][g], -80.0, 80.0);
    gv[gExpT0][g] = float(std::exp(t0)), gv[gExpNegT0][g] = float(std::exp(-t0));
    gv[gExpSwitch][g] = float(std::exp(sw)), gv[gExpNegSwitch][g] = float(std::exp(-sw));
    gv[gUScale][g] = float(gene[kUScale][g]);
    gv[gU0][g] = float(u0);
    gv[gS0][g] = float(s0);
    gv[gUInf][g] = float(at_switch[g].u);
    gv[gSInf][g] = float(at_switch[g].s);
  }

  const int64_t chunks = std::max<int64_t>(1, std::min(kChunks, B));
  // The first three quarters of the chunks share 90 % of the cells and the last quarter the rest:
  // threads take chunks in order, so the last to finish waits for one small chunk, not a full one.
  const int64_t big = chunks * 3 / 4;
  const auto chunk_start = [B, chunks, big](int64_t chunk) {
    if (chunk <= big) return B * 9 * chunk / (10 * std::max<int64_t>(big, 1));
    return B * 9 / 10 + (B - B * 9 / 10) * (chunk - big) / (chunks - big);
  };
  std::vector<std::vector<float>> sums(static_cast<size_t>(chunks));
  std::vector<double> chunk_value(static_cast<size_t>(chunks), 0.0);
  if (grad) {
    grad->cell_time.assign(static_cast<size_t>(B), 0.0);
    grad->u_read_depth.assign(static_cast<size_t>(B), 0.0);
    grad->s_read_depth.assign(static_cast<size_t>(B), 0.0);
  }

#pragma omp parallel
  {
    const FlushDenormals flush_denormals;
    std::vector<float> scratch(static_cast<size_t>(kScratch * G), 0.0f);
    RowNonzeros nonzero_u, nonzero_s;
    float* x[kScratch];
    for (int k = 0; k < kScratch; ++k) x[k] = scratch.data() + k * G;
    const float* alpha = gv[gAlpha].data();
    const float* beta = gv[gBeta].data();
    const float* gamma = gv[gGamma].data();
    const float* inv_gap = gv[gInvGap].data();
    const float* t0 = gv[gT0].data();
    const float* sw = gv[gSwitch].data();
    const float* exp_t0 = gv[gExpT0].data();
    const float* exp_neg_t0 = gv[gExpNegT0].data();
    const float* exp_sw = gv[gExpSwitch].data();
    const float* exp_neg_sw = gv[gExpNegSwitch].data();
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
      for (int64_t b = chunk_start(chunk); b < chunk_start(chunk + 1); ++b) {
        const int64_t row = in.cells ? in.cells[b] : b;
        nonzero_u.load(*data.unspliced, row, data.stored_zeros);
        nonzero_s.load(*data.spliced, row, data.stored_zeros);
        const float t = float(in.cell_time[b]);
        const float rd_u = float(in.u_read_depth[b]), rd_s = float(in.s_read_depth[b]);

        // Pass 1: both states' dynamics with their partials, state probabilities, normalisers.
        // 1a: e^-|t - t0| and e^-|t - switch|, parked in the arrays of the sigmoids made from them.
        // For |t| <= kProductTimes as products of e^+-t and the genes' e^-+t0, e^-+switch (taken in
        // double; within 1.5 ulp, and no exponential per gene), floored at exp_neg's clamp.
        if (std::fabs(in.cell_time[b]) <= kProductTimes) {
          const float e_t = float(std::exp(in.cell_time[b])), e_neg_t = float(std::exp(-in.cell_time[b]));
#pragma omp simd
          for (int64_t g = 0; g < G; ++g) {
            // Both factors read, then chosen: a load under a condition becomes a masked load.
            const float after_t0 = e_neg_t * exp_t0[g], before_t0 = e_t * exp_neg_t0[g];
            const float after_sw = e_neg_t * exp_sw[g], before_sw = e_t * exp_neg_sw[g];
            x[sSigT0][g] = max_nonnegative(t >= t0[g] ? after_t0 : before_t0, kExpFloor);
            x[sP1][g] = max_nonnegative(t >= sw[g] ? after_sw : before_sw, kExpFloor);
          }
        } else {
#pragma omp simd
          for (int64_t g = 0; g < G; ++g) {
            x[sSigT0][g] = exp_neg(std::fabs(t - t0[g]));
            x[sP1][g] = exp_neg(std::fabs(t - sw[g]));
          }
        }
        // 1b: the two softplus times and sigmoids.
#pragma omp simd
        for (int64_t g = 0; g < G; ++g) {
          const float a = t - t0[g], x1 = t - sw[g];
          const float ea = x[sSigT0][g], e1 = x[sP1][g];
          const Log1pReciprocal la = log1p_reciprocal_unit(ea), l1 = log1p_reciprocal_unit(e1);
          const float inv_a = la.reciprocal, inv1 = l1.reciprocal;
          x[sTau0][g] = relu(a) + la.log1p;
          x[sSp1][g] = relu(x1) + l1.log1p;
          x[sX1][g] = x1;
          x[sP1][g] = x1 >= 0 ? inv1 : e1 * inv1;
          x[sSigT0][g] = a >= 0 ? inv_a : ea * inv_a;
        }
        // 1c: each state's exponentials (with phi, phi' of the induction state's).
#pragma omp simd
        for (int64_t g = 0; g < G; ++g) {
          const float tau0 = x[sTau0][g];
          const ExpPhi pb = exp_neg_phi(beta[g] * tau0), pg = exp_neg_phi(gamma[g] * tau0);
          x[sEu0][g] = pb.e, x[sPhiB][g] = pb.phi, x[sDphiB][g] = pb.dphi;
          x[sEs0][g] = pg.e, x[sPhiG][g] = pg.phi, x[sDphiG][g] = pg.dphi;
        }
#pragma omp simd
        for (int64_t g = 0; g < G; ++g) {
          const float tau1 = x[sSp1][g];
          x[sEu1][g] = exp_neg(beta[g] * tau1), x[sEs1][g] = exp_neg(gamma[g] * tau1);
        }
        // 1d: the induction state (k = 0); without offsets it starts from 0, and nothing is
        // differentiated in its start (one version of the loop for each case).
        const auto induction_state = [&](auto with_offset) {
          constexpr bool kOffset = decltype(with_offset)::value;
#pragma omp simd
          for (int64_t g = 0; g < G; ++g) {
            const UnsplicedSpliced d0 = dynamics_f<true, kOffset>(
                x[sTau0][g], kOffset ? u0[g] : 0.0f, kOffset ? s0[g] : 0.0f, alpha[g], beta[g], gamma[g], inv_gap[g],
                ExpPhi{x[sEu0][g], x[sPhiB][g], x[sDphiB][g]}, ExpPhi{x[sEs0][g], x[sPhiG][g], x[sDphiG][g]},
                x + s0Partials, g);
            const float uu0 = u_scale[g] * d0.u;
            x[sUt0][g] = relu(uu0) + kEps, x[sSt0][g] = relu(d0.s) + kEps;
            x[sMaskU0][g] = uu0 > 0 ? 1.0f : 0.0f, x[sMaskS0][g] = d0.s > 0 ? 1.0f : 0.0f;
            x[sU0][g] = d0.u;
          }
        };
        if (offset) induction_state(std::true_type{});
        else induction_state(std::false_type{});
        // 1e: the repression state (k = 1) and the normalisers.
        float norm_u = 0, norm_s = 0;
#pragma omp simd reduction(+ : norm_u, norm_s)
        for (int64_t g = 0; g < G; ++g) {
          const UnsplicedSpliced d1 = dynamics_f<false>(x[sSp1][g], u_inf[g], s_inf[g], 0.0f, beta[g], gamma[g], inv_gap[g],
                                                        ExpPhi{x[sEu1][g], 0.0f, 0.0f}, ExpPhi{x[sEs1][g], 0.0f, 0.0f},
                                                        x + s1Partials, g);
          const float uu1 = u_scale[g] * d1.u;
          const float ut1 = relu(uu1) + kEps, st1 = relu(d1.s) + kEps;
          x[sUt1][g] = ut1, x[sSt1][g] = st1;
          x[sMaskU1][g] = uu1 > 0 ? 1.0f : 0.0f, x[sMaskS1][g] = d1.s > 0 ? 1.0f : 0.0f;
          x[sU1][g] = d1.u;
          const float p1 = x[sP1][g];
          norm_u += (1 - p1) * x[sUt0][g] + p1 * ut1;
          norm_s += (1 - p1) * x[sSt0][g] + p1 * st1;
        }

        // Pass 2: the Poisson log-likelihoods of both states, summed out over k; c log(rate) and
        // c / rate are taken at the nonzero counts only (a third of pancreas's spliced, a tenth of
        // its unspliced). rate = ut' * scale + offset: (ut'/N + eps) * depth with library correction, else ut'.
        // No loop-invariant branch inside the loop, so that GCC vectorises one version of it.
        const float inv_u = 1.0f / norm_u, inv_s = 1.0f / norm_s;
        const float scale_u = library ? rd_u * inv_u : 1.0f, offset_u = library ? kEps * rd_u : 0.0f;
        const float scale_s = library ? rd_s * inv_s : 1.0f, offset_s = library ? kEps * rd_s : 0.0f;
        nonzero_u.evaluate(x[sUt0], x[sUt1], scale_u, offset_u);
        nonzero_s.evaluate(x[sSt0], x[sSt1], scale_s, offset_s);
        std::fill(x[sLog0], x[sRatioS1] + G, 0.0f);  // pass 1 used two of them; the six are adjacent, one fill
        nonzero_u.scatter(x[sLog0], x[sLog1], x[sRatioU0], x[sRatioU1]);
        nonzero_s.scatter(x[sLog0], x[sLog1], x[sRatioS0], x[sRatioS1]);
        // 2a: each state's log joint; their difference and e^-|difference| overwrite x1 and
        // softplus(x1), which nothing reads after this loop; the larger is summed.
        float cell_hi = 0;
#pragma omp simd reduction(+ : cell_hi)
        for (int64_t g = 0; g < G; ++g) {
          const float ru0 = x[sUt0][g] * scale_u + offset_u, ru1 = x[sUt1][g] * scale_u + offset_u;
          const float rs0 = x[sSt0][g] * scale_s + offset_s, rs1 = x[sSt1][g] * scale_s + offset_s;
          const float x1 = x[sX1][g], sp1 = x[sSp1][g];
          const float term0 = -sp1 + (x[sLog0][g] - ru0 - rs0), term1 = x1 - sp1 + (x[sLog1][g] - ru1 - rs1);
          cell_hi += max_f(term0, term1);
          const float d = term0 - term1;
          x[sX1][g] = d;
          x[sSp1][g] = exp_neg(std::fabs(d));
        }
        // 2b: the logsumexp's log1p and weights, and the adjoints for pass 3. The normalisers' and
        // read depths' adjoints need only sum_g (g0 ut0 + g1 ut1) and sum_g (g0 + g1) per layer:
        // d rate / d N = -depth ut / N^2 and d rate / d depth = ut / N + eps.
        float cell_value = cell_hi, ug_u = 0, g_u = 0, ug_s = 0, g_s = 0;
#pragma omp simd reduction(+ : cell_value, ug_u, g_u, ug_s, g_s)
        for (int64_t g = 0; g < G; ++g) {
          const float ut0 = x[sUt0][g], ut1 = x[sUt1][g], st0 = x[sSt0][g], st1 = x[sSt1][g];
          const float p1 = x[sP1][g], d = x[sX1][g], e = x[sSp1][g];
          const bool first = d > 0;  // state 0's term is the larger
          const Log1pReciprocal le = log1p_reciprocal_unit(e);
          cell_value += le.log1p;
          const float w_hi = le.reciprocal, w_lo = e * w_hi;
          const float w0 = first ? w_hi : w_lo, w1 = first ? w_lo : w_hi;
          x[sGX1][g] = w1 * (1 - p1) - w0 * p1;
          const float gu0 = w0 * (x[sRatioU0][g] - 1), gu1 = w1 * (x[sRatioU1][g] - 1);
          const float gs0 = w0 * (x[sRatioS0][g] - 1), gs1 = w1 * (x[sRatioS1][g] - 1);
          x[sGUt0][g] = gu0, x[sGUt1][g] = gu1, x[sGSt0][g] = gs0, x[sGSt1][g] = gs1;  // in rate; pass 3 scales
          ug_u += gu0 * ut0 + gu1 * ut1, g_u += gu0 + gu1;
          ug_s += gs0 * st0 + gs1 * st1, g_s += gs0 + gs1;
        }
        value += double(cell_value) - data.row_log_factorial[row];
        if (!grad) continue;
        const float a_u = library ? -ug_u * rd_u * inv_u * inv_u : 0.0f, a_s = library ? -ug_s * rd_s * inv_s * inv_s : 0.0f;
        const float g_rd_u = ug_u * inv_u + kEps * g_u, g_rd_s = ug_s * inv_s + kEps * g_s;

        // Pass 3: the normaliser's share, then back through relu, u_scale and both dynamics.
        const float* const* d0 = x + s0Partials;
        const float* const* d1 = x + s1Partials;
        // 3: both states' shares, the normaliser's and the switch, in one loop (shared loads and one
        // update of the slots both states touch; as fast as the two loops it replaced).
        const auto backward = [&](auto with_offset) {
          constexpr bool kOffset = decltype(with_offset)::value;
          float sum_t = 0;
#pragma omp simd reduction(+ : sum_t)
          for (int64_t g = 0; g < G; ++g) {
            const float p1 = x[sP1][g], p0 = 1 - p1;
            const float us = u_scale[g];
            const float g_uu0 = x[sMaskU0][g] * (scale_u * x[sGUt0][g] + a_u * p0);
            const float gu0 = g_uu0 * us, gs0 = x[sMaskS0][g] * (scale_s * x[sGSt0][g] + a_s * p0);
            const float g_uu1 = x[sMaskU1][g] * (scale_u * x[sGUt1][g] + a_u * p1);
            const float gu1 = g_uu1 * us, gs1 = x[sMaskS1][g] * (scale_s * x[sGSt1][g] + a_s * p1);
            acc[cUScale][g] += g_uu0 * x[sU0][g] + g_uu1 * x[sU1][g];
            if constexpr (kOffset) {
              acc[cU0][g] += gu0 * d0[pDuU0][g] + gs0 * d0[pDsU0][g];
              acc[cS0][g] += gs0 * d0[pDsS0][g];
            }
            acc[cAlpha][g] += gu0 * d0[pDuAlpha][g] + gs0 * d0[pDsAlpha][g];
            acc[cBeta][g] += gu0 * d0[pDuBeta][g] + gs0 * d0[pDsBeta][g] + gu1 * d1[pDuBeta][g] + gs1 * d1[pDsBeta][g];
            acc[cGamma][g] += gs0 * d0[pDsGamma][g] + gs1 * d1[pDsGamma][g];
            acc[cUInf][g] += gu1 * d1[pDuU0][g] + gs1 * d1[pDsU0][g];
            acc[cSInf][g] += gs1 * d1[pDsS0][g];
            const float g_t0 = (gu0 * d0[pDuTau][g] + gs0 * d0[pDsTau][g]) * x[sSigT0][g];
            acc[cT0][g] -= g_t0;
            const float g_x1_norm = (a_u * (x[sUt1][g] - x[sUt0][g]) + a_s * (x[sSt1][g] - x[sSt0][g])) * p1 * p0;
            const float g_tau1 = gu1 * d1[pDuTau][g] + gs1 * d1[pDsTau][g];
            const float g_x1 = x[sGX1][g] + g_x1_norm + g_tau1 * p1;
            acc[cSwitch][g] -= g_x1;
            sum_t += g_t0 + g_x1;
          }
          return sum_t;
        };
        const float g_t = offset ? backward(std::true_type{}) : backward(std::false_type{});
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
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < int64_t(total.size()); ++i)
    for (const auto& acc : sums) total[i] += acc[i];  // chunk order: the same sum for any thread count
  chain_gene_slots(o, at_switch, total, G, grad);
  return value;
}

}  // namespace pv

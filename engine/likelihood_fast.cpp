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
//
// The per-gene arrays are stored in tiles of at most kPitch genes (see Tile below), so that a loop
// reaches all of them from one pointer, at a spacing chosen for the cache.
#include "engine/likelihood_fast.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include <xmmintrin.h>

#include "engine/error.h"
#include "engine/gene_slots.h"
#include "engine/vector_math.h"
#include "kernels/dynamics.h"
#include "pv_build_config.h"

#if PV_OPENMP
#include <omp.h>
#endif

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

// Genes in tiles. A tile holds a run of genes of every per-gene array of a kind, array k at
// k * kPitch floats from the tile's start, so inside a loop over a tile's genes each array is a
// constant offset from one pointer and the compiler addresses them all from one register. As
// separate arrays each took a pointer of its own; past the 16 general registers those were
// reloaded from the stack every iteration (29 of the backward pass's 95 instructions per 8 genes).
// The pitch is fixed, and so is the spacing of the arrays in the cache. With arrays G floats apart
// it was G's: at G = 1024 or 2048 every array began at the same 4 KiB offset, loads waited on
// unrelated stores to the same low address bits, and a call took 3-3.5 times as long as at G = 2000
// (bench/results/fit_cpu.md). 2000 floats (8000 bytes, -192 modulo 4 KiB) was among the best
// spacings measured; 2056 (+32) and 512 (0) were among the worst.
constexpr int64_t kPitch = 2000;

template <class T>
struct Tile {
  T* start;
  __attribute__((always_inline)) T* operator[](int64_t array) const { return start + array * kPitch; }
  // The same tile, its address hidden from the optimiser. Given a tile's address as a function of
  // the tile loop's counter, GCC strength-reduces every array's address across that loop into a
  // pointer of its own, and the spilled pointers are back.
  __attribute__((always_inline)) Tile opaque() const {
    T* p = start;
    asm("" : "+r"(p));
    return Tile{p};
  }
};

// The genes cut into `count` tiles of `length` genes (the last may be shorter), as even as a
// multiple of the vector width allows, so that no tile is a short remainder.
struct GeneTiles {
  int64_t genes, count, length;
  explicit GeneTiles(int64_t G)
      : genes(G), count(std::max<int64_t>(1, (G + kPitch - 1) / kPitch)), length(((G + count - 1) / count + 7) / 8 * 8) {}
  int64_t first(int64_t tile) const { return tile * length; }
  int64_t size(int64_t tile) const { return std::min(length, genes - tile * length); }
  // Where gene g of array 0 lies in tiles of `arrays` arrays each.
  int64_t place(int64_t g, int64_t arrays) const { return g / length * arrays * kPitch + g % length; }

  // Storage for `arrays` tiled arrays, resized to fit.
  void fit(std::vector<float>& store, int64_t arrays) const {
    if (store.size() != size_t(count * arrays * kPitch)) store.assign(size_t(count * arrays * kPitch), 0.0f);
  }
  // Zero at every gene of `arrays` tiled arrays; the rest of each pitch is never read.
  void clear(float* store, int64_t arrays) const {
    for (int64_t k = 0; k < count * arrays; ++k) std::fill_n(store + k * kPitch, size(k / arrays), 0.0f);
  }
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
                                                                  Tile<float> out, int64_t g) {
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

// Per-gene inputs of the step, as float arrays (tiled, shared by the threads).
enum GeneArray {
  gAlpha, gBeta, gGamma, gInvGap, gT0, gSwitch, gExpT0, gExpNegT0, gExpSwitch, gExpNegSwitch,
  gUScale, gU0, gS0, gUInf, gSInf, kGeneArrays
};

// Per-gene results of passes 1 and 2 for the current cell (tiled, one set per thread).
enum Scratch {
  // sUt0/1, sSt0/1: each state's relu(u_scale u) and relu(s), without the eps the rates add, so
  // that their being above 0 is the relus' derivative and no masks are kept
  sX1, sSp1, sP1, sSigT0, sUt0, sUt1, sSt0, sSt1,
  s0Partials, s1Partials = s0Partials + kPartials,  // each state's Partial arrays
  // Each state's c_u log(rate_u) + c_s log(rate_s), and c / rate of each count and state: 0 where
  // the counts are 0, the only place logs are taken
  sLog0 = s1Partials + kPartials, sLog1, sRatioU0, sRatioU1, sRatioS0, sRatioS1, kScratch,
  // Arrays whose lives do not overlap share storage (a smaller footprint in L2): pass 1's
  // softplus(t - t0) (read last by the induction state) and the induction state's exponentials
  // take partials that the repression state writes after the induction state has read them; the
  // repression state's exponentials take the log arrays, refilled with 0 after pass 1; pass 2's
  // adjoints take the ratios they are made from and a log array that pass 2a has read.
  sEu0 = s1Partials, sPhiB, sDphiB, sEs0, sPhiG, sDphiG, sTau0, sEu1 = sLog0, sEs1,
  sGUt0 = sRatioU0, sGUt1 = sRatioU1, sGSt0 = sRatioS0, sGSt1 = sRatioS1, sGX1 = sLog0
};

// One cell's nonzero counts of one layer, as (place, count) lists, and their c log(rate), c / rate
// for both states; a place is the gene's offset in the tiled scratch arrays (place_of[gene], or
// the gene itself when place_of is null: one tile). A CSR row without stored zeros is such a list
// already when the genes fit in one tile, and is then read in place.
struct RowNonzeros {
  std::vector<int32_t> place_store;
  std::vector<float> count_store, log0, log1, ratio0, ratio1;
  const int32_t* place = nullptr;
  const float* count = nullptr;
  int64_t size = 0;

  void load(const io::CountMatrix& m, int64_t row, bool stored_zeros, const int32_t* place_of) {
    const int64_t G = m.cols;
    if (log0.size() < size_t(G)) {
      place_store.resize(size_t(G));
      for (auto* v : {&count_store, &log0, &log1, &ratio0, &ratio1}) v->resize(size_t(G));
    }
    const auto place_at = [place_of](int32_t g) { return place_of ? place_of[g] : g; };
    if (m.sparse && !stored_zeros) {
      const int32_t* gene = m.indices.data() + m.indptr[row];
      count = m.data.data() + m.indptr[row];
      size = m.indptr[row + 1] - m.indptr[row];
      if (!place_of) {
        place = gene;
        return;
      }
      for (int64_t p = 0; p < size; ++p) place_store[p] = place_of[gene[p]];
      place = place_store.data();
      return;
    }
    size = 0;
    if (m.sparse) {
      for (int64_t p = m.indptr[row]; p < m.indptr[row + 1]; ++p) {
        if (m.data[p] == 0) continue;
        place_store[size] = place_at(m.indices[p]), count_store[size++] = m.data[p];
      }
    } else {
      const float* dense = m.dense.data() + row * G;
      for (int64_t g = 0; g < G; ++g)
        if (dense[g] != 0) place_store[size] = place_at(int32_t(g)), count_store[size++] = dense[g];
    }
    place = place_store.data();
    count = count_store.data();
  }

  // rate = x * scale + offset for x = rate0 / rate1 at each nonzero gene; gathers, vectorised.
  void evaluate(const float* rate0, const float* rate1, float scale, float offset) {
    const int32_t* at = place;
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
      const int32_t at = place[p];
      l0[at] += log0[p], l1[at] += log1[p], q0[at] = ratio0[p], q1[at] = ratio1[p];
    }
  }
};

// Per-chunk gene gradient sums (float within a chunk, reduced across chunks in double), in the
// order of GeneSlot.
enum Slot { cAlpha = kSlotAlpha, cBeta = kSlotBeta, cGamma = kSlotGamma, cT0 = kSlotT0, cUScale = kSlotUScale,
            cU0 = kSlotU0, cS0 = kSlotS0, cUInf = kSlotUInf, cSInf = kSlotSInf, cSwitch = kSlotSwitch, kSlots = kGeneSlots };

// What the fast path keeps between calls in LikelihoodGradients::scratch: its buffers, resized
// when the genes or threads change. Made afresh per call they were some megabytes of fresh pages
// (a 37-gene dataset's call took six times as long, in page faults).
struct FastBuffers final : LikelihoodScratch {
  std::vector<float> inputs;                // kGeneArrays tiled arrays
  std::vector<int32_t> place_of;            // each gene's place in the scratch arrays (more than one tile)
  std::vector<std::vector<float>> sums;     // per chunk: kSlots tiled arrays
  std::vector<double> chunk_value;
  struct Thread {
    std::vector<float> scratch;             // kScratch tiled arrays
    RowNonzeros nonzero_u, nonzero_s;
  };
  std::vector<Thread> threads;
};

FastBuffers& buffers_in(LikelihoodGradients* grad, std::unique_ptr<FastBuffers>& own) {
  if (!grad) return *(own = std::make_unique<FastBuffers>());
  if (!dynamic_cast<FastBuffers*>(grad->scratch.get())) grad->scratch = std::make_unique<FastBuffers>();
  return static_cast<FastBuffers&>(*grad->scratch);
}

int thread_count() {
#if PV_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_index() {
#if PV_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

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
  const GeneTiles tiles(G);
  const bool library = o.correct_library_size, offset = o.add_offset;
  const double* const* gene = in.gene;
  std::unique_ptr<FastBuffers> own_buffers;
  FastBuffers& buffers = buffers_in(grad, own_buffers);
  // The nonzero counts' places in the scratch arrays, when there is more than one tile (they
  // depend on G alone, so a map of the right size is the right map).
  std::vector<int32_t>& place_of = buffers.place_of;
  if (place_of.size() != (tiles.count > 1 ? size_t(G) : 0)) {
    place_of.resize(tiles.count > 1 ? size_t(G) : 0);
    for (size_t g = 0; g < place_of.size(); ++g) place_of[g] = int32_t(tiles.place(int64_t(g), kScratch));
  }
  const int32_t* const places = place_of.empty() ? nullptr : place_of.data();

  // Gene-level inputs and the state at the switch (in double, once per step).
  tiles.fit(buffers.inputs, kGeneArrays);
  float* const gene_store = buffers.inputs.data();
  const std::vector<DynamicsWithGrad<double>> at_switch = switch_states(o, gene, G);
  for (int64_t g = 0; g < G; ++g) {
    const Tile<float> v{gene_store + tiles.place(g, kGeneArrays)};
    const double u0 = o.add_offset ? gene[kUOffset][g] : 0.0, s0 = o.add_offset ? gene[kSOffset][g] : 0.0;
    v[gAlpha][0] = float(gene[kAlpha][g]);
    v[gBeta][0] = float(gene[kBeta][g]);
    v[gGamma][0] = float(gene[kGamma][g]);
    v[gInvGap][0] = vmath::inverse_gap(gene[kBeta][g], gene[kGamma][g]);
    v[gT0][0] = float(gene[kT0][g]);
    v[gSwitch][0] = float(gene[kT0][g] + gene[kDtSwitching][g]);
    // Clamped to e^+-80: a factor beyond it is only chosen for cell times beyond kProductTimes.
    const double t0 = std::clamp(gene[kT0][g], -80.0, 80.0);
    const double sw = std::clamp(gene[kT0][g] + gene[kDtSwitching][g], -80.0, 80.0);
    v[gExpT0][0] = float(std::exp(t0)), v[gExpNegT0][0] = float(std::exp(-t0));
    v[gExpSwitch][0] = float(std::exp(sw)), v[gExpNegSwitch][0] = float(std::exp(-sw));
    v[gUScale][0] = float(gene[kUScale][g]);
    v[gU0][0] = float(u0);
    v[gS0][0] = float(s0);
    v[gUInf][0] = float(at_switch[g].u);
    v[gSInf][0] = float(at_switch[g].s);
  }
  const auto gene_tile = [&](int64_t tile) {
    return Tile<const float>{gene_store + tile * kGeneArrays * kPitch}.opaque();
  };

  const int64_t chunks = std::max<int64_t>(1, std::min(kChunks, B));
  // The first three quarters of the chunks share 90 % of the cells and the last quarter the rest:
  // threads take chunks in order, so the last to finish waits for one small chunk, not a full one.
  const int64_t big = chunks * 3 / 4;
  const auto chunk_start = [B, chunks, big](int64_t chunk) {
    if (chunk <= big) return B * 9 * chunk / (10 * std::max<int64_t>(big, 1));
    return B * 9 / 10 + (B - B * 9 / 10) * (chunk - big) / (chunks - big);
  };
  std::vector<std::vector<float>>& sums = buffers.sums;
  sums.resize(static_cast<size_t>(chunks));
  for (auto& acc : sums) tiles.fit(acc, kSlots);
  std::vector<double>& chunk_value = buffers.chunk_value;
  chunk_value.assign(static_cast<size_t>(chunks), 0.0);
  buffers.threads.resize(std::max<size_t>(buffers.threads.size(), size_t(thread_count())));
  for (auto& thread : buffers.threads) tiles.fit(thread.scratch, kScratch);
  if (grad) {
    grad->cell_time.assign(static_cast<size_t>(B), 0.0);
    grad->u_read_depth.assign(static_cast<size_t>(B), 0.0);
    grad->s_read_depth.assign(static_cast<size_t>(B), 0.0);
  }

#pragma omp parallel
  {
    const FlushDenormals flush_denormals;
    FastBuffers::Thread& mine = buffers.threads[size_t(thread_index())];
    float* const scratch = mine.scratch.data();
    RowNonzeros &nonzero_u = mine.nonzero_u, &nonzero_s = mine.nonzero_s;
    const auto scratch_tile = [&](int64_t tile) { return Tile<float>{scratch + tile * kScratch * kPitch}.opaque(); };
    const Tile<float> all{scratch};  // the arrays as the nonzero counts' places see them
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      float* const acc_store = sums[chunk].data();
      tiles.clear(acc_store, kSlots);
      const auto acc_tile = [&](int64_t tile) { return Tile<float>{acc_store + tile * kSlots * kPitch}.opaque(); };
      double value = 0;
      for (int64_t b = chunk_start(chunk); b < chunk_start(chunk + 1); ++b) {
        const int64_t row = in.cells ? in.cells[b] : b;
        nonzero_u.load(*data.unspliced, row, data.stored_zeros, places);
        nonzero_s.load(*data.spliced, row, data.stored_zeros, places);
        const float t = float(in.cell_time[b]);
        const float rd_u = float(in.u_read_depth[b]), rd_s = float(in.s_read_depth[b]);
        // For |t| <= kProductTimes, e^-|t - t0| and e^-|t - switch| are taken as products of e^+-t
        // and the genes' e^-+t0, e^-+switch (in double; within 1.5 ulp, and no exponential per
        // gene), floored at exp_neg's clamp.
        const bool product = std::fabs(in.cell_time[b]) <= kProductTimes;
        const float e_t = float(std::exp(product ? in.cell_time[b] : 0.0));
        const float e_neg_t = float(std::exp(product ? -in.cell_time[b] : 0.0));

        // Pass 1: both states' dynamics with their partials, state probabilities, normalisers.
        float norm_u = 0, norm_s = 0;
        for (int64_t tile = 0; tile < tiles.count; ++tile) {
          const int64_t n = tiles.size(tile);
          const Tile<float> x = scratch_tile(tile);
          const Tile<const float> v = gene_tile(tile);
          // 1a: e^-|t - t0| and e^-|t - switch|, parked in the arrays of the sigmoids made from them.
          if (product) {
#pragma omp simd
            for (int64_t g = 0; g < n; ++g) {
              // Both factors read, then chosen: a load under a condition becomes a masked load.
              const float after_t0 = e_neg_t * v[gExpT0][g], before_t0 = e_t * v[gExpNegT0][g];
              const float after_sw = e_neg_t * v[gExpSwitch][g], before_sw = e_t * v[gExpNegSwitch][g];
              x[sSigT0][g] = max_nonnegative(t >= v[gT0][g] ? after_t0 : before_t0, kExpFloor);
              x[sP1][g] = max_nonnegative(t >= v[gSwitch][g] ? after_sw : before_sw, kExpFloor);
            }
          } else {
#pragma omp simd
            for (int64_t g = 0; g < n; ++g) {
              x[sSigT0][g] = exp_neg(std::fabs(t - v[gT0][g]));
              x[sP1][g] = exp_neg(std::fabs(t - v[gSwitch][g]));
            }
          }
          // 1b: the two softplus times and sigmoids.
#pragma omp simd
          for (int64_t g = 0; g < n; ++g) {
            const float a = t - v[gT0][g], x1 = t - v[gSwitch][g];
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
          for (int64_t g = 0; g < n; ++g) {
            const float tau0 = x[sTau0][g];
            const ExpPhi pb = exp_neg_phi(v[gBeta][g] * tau0), pg = exp_neg_phi(v[gGamma][g] * tau0);
            x[sEu0][g] = pb.e, x[sPhiB][g] = pb.phi, x[sDphiB][g] = pb.dphi;
            x[sEs0][g] = pg.e, x[sPhiG][g] = pg.phi, x[sDphiG][g] = pg.dphi;
          }
#pragma omp simd
          for (int64_t g = 0; g < n; ++g) {
            const float tau1 = x[sSp1][g];
            x[sEu1][g] = exp_neg(v[gBeta][g] * tau1), x[sEs1][g] = exp_neg(v[gGamma][g] * tau1);
          }
          // 1d: the induction state (k = 0); without offsets it starts from 0, and nothing is
          // differentiated in its start (one version of the loop for each case).
          const auto induction_state = [&](auto with_offset) {
            constexpr bool kOffset = decltype(with_offset)::value;
#pragma omp simd
            for (int64_t g = 0; g < n; ++g) {
              const UnsplicedSpliced d0 = dynamics_f<true, kOffset>(
                  x[sTau0][g], kOffset ? v[gU0][g] : 0.0f, kOffset ? v[gS0][g] : 0.0f, v[gAlpha][g], v[gBeta][g],
                  v[gGamma][g], v[gInvGap][g], ExpPhi{x[sEu0][g], x[sPhiB][g], x[sDphiB][g]},
                  ExpPhi{x[sEs0][g], x[sPhiG][g], x[sDphiG][g]}, Tile<float>{x[s0Partials]}, g);
              const float uu0 = v[gUScale][g] * d0.u;
              x[sUt0][g] = relu(uu0), x[sSt0][g] = relu(d0.s);
            }
          };
          if (offset) induction_state(std::true_type{});
          else induction_state(std::false_type{});
          // 1e: the repression state (k = 1) and the normalisers.
#pragma omp simd reduction(+ : norm_u, norm_s)
          for (int64_t g = 0; g < n; ++g) {
            const UnsplicedSpliced d1 = dynamics_f<false>(
                x[sSp1][g], v[gUInf][g], v[gSInf][g], 0.0f, v[gBeta][g], v[gGamma][g], v[gInvGap][g],
                ExpPhi{x[sEu1][g], 0.0f, 0.0f}, ExpPhi{x[sEs1][g], 0.0f, 0.0f}, Tile<float>{x[s1Partials]}, g);
            const float uu1 = v[gUScale][g] * d1.u;
            const float ut1 = relu(uu1), st1 = relu(d1.s);
            x[sUt1][g] = ut1, x[sSt1][g] = st1;
            const float p1 = x[sP1][g];
            norm_u += (1 - p1) * x[sUt0][g] + p1 * ut1;
            norm_s += (1 - p1) * x[sSt0][g] + p1 * st1;
          }
        }

        // Pass 2: the Poisson log-likelihoods of both states, summed out over k; c log(rate) and
        // c / rate are taken at the nonzero counts only (a third of pancreas's spliced, a tenth of
        // its unspliced). With ut' = relu(u_scale u) + eps, rate = (ut'/N + eps) * depth with
        // library correction, else ut': rate = ut * scale + offset for the stored ut = ut' - eps.
        // No loop-invariant branch inside the loop, so that GCC vectorises one version of it.
        norm_u += float(G) * kEps, norm_s += float(G) * kEps;  // each gene's eps, weighted 1 - p1 + p1
        const float inv_u = 1.0f / norm_u, inv_s = 1.0f / norm_s;
        const float scale_u = library ? rd_u * inv_u : 1.0f, offset_u = library ? kEps * (rd_u + scale_u) : kEps;
        const float scale_s = library ? rd_s * inv_s : 1.0f, offset_s = library ? kEps * (rd_s + scale_s) : kEps;
        nonzero_u.evaluate(all[sUt0], all[sUt1], scale_u, offset_u);
        nonzero_s.evaluate(all[sSt0], all[sSt1], scale_s, offset_s);
        for (int64_t tile = 0; tile < tiles.count; ++tile) {  // pass 1 used two of them; the six are adjacent, one fill
          const Tile<float> x = scratch_tile(tile);
          std::fill(x[sLog0], x[sRatioS1] + tiles.size(tile), 0.0f);
        }
        nonzero_u.scatter(all[sLog0], all[sLog1], all[sRatioU0], all[sRatioU1]);
        nonzero_s.scatter(all[sLog0], all[sLog1], all[sRatioS0], all[sRatioS1]);
        float cell_value = 0, ug_u = 0, g_u = 0, ug_s = 0, g_s = 0;
        for (int64_t tile = 0; tile < tiles.count; ++tile) {
          const int64_t n = tiles.size(tile);
          const Tile<float> x = scratch_tile(tile);
          // 2a: each state's log joint; their difference and e^-|difference| overwrite x1 and
          // softplus(x1), which nothing reads after this loop; the larger is summed.
          float tile_hi = 0;
#pragma omp simd reduction(+ : tile_hi)
          for (int64_t g = 0; g < n; ++g) {
            const float ru0 = x[sUt0][g] * scale_u + offset_u, ru1 = x[sUt1][g] * scale_u + offset_u;
            const float rs0 = x[sSt0][g] * scale_s + offset_s, rs1 = x[sSt1][g] * scale_s + offset_s;
            const float x1 = x[sX1][g], sp1 = x[sSp1][g];
            const float term0 = -sp1 + (x[sLog0][g] - ru0 - rs0), term1 = x1 - sp1 + (x[sLog1][g] - ru1 - rs1);
            tile_hi += max_f(term0, term1);
            const float d = term0 - term1;
            x[sX1][g] = d;
            x[sSp1][g] = exp_neg(std::fabs(d));
          }
          // 2b: the logsumexp's log1p and weights, and the adjoints for pass 3. The normalisers'
          // and read depths' adjoints need only sum_g (g0 ut0 + g1 ut1) and sum_g (g0 + g1) per
          // layer: d rate / d N = -depth ut / N^2 and d rate / d depth = ut / N + eps.
          cell_value += tile_hi;
#pragma omp simd reduction(+ : cell_value, ug_u, g_u, ug_s, g_s)
          for (int64_t g = 0; g < n; ++g) {
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
        }
        value += double(cell_value) - data.row_log_factorial[row];
        if (!grad) continue;
        ug_u += kEps * g_u, ug_s += kEps * g_s;  // the sums in ut' = ut + eps
        const float a_u = library ? -ug_u * rd_u * inv_u * inv_u : 0.0f, a_s = library ? -ug_s * rd_s * inv_s * inv_s : 0.0f;
        const float g_rd_u = ug_u * inv_u + kEps * g_u, g_rd_s = ug_s * inv_s + kEps * g_s;

        // Pass 3: the normaliser's share, then back through relu, u_scale and both dynamics, for
        // both states, the normaliser and the switch in one loop (shared loads and one update of
        // the slots both states touch; as fast as the two loops it replaced).
        float g_t = 0;
        for (int64_t tile = 0; tile < tiles.count; ++tile) {
          const int64_t n = tiles.size(tile);
          const Tile<float> x = scratch_tile(tile), acc = acc_tile(tile);
          const Tile<const float> v = gene_tile(tile);
          const Tile<const float> d0{x[s0Partials]}, d1{x[s1Partials]};
          const auto backward = [&](auto with_offset) {
            constexpr bool kOffset = decltype(with_offset)::value;
#pragma omp simd reduction(+ : g_t)
            for (int64_t g = 0; g < n; ++g) {
              const float p1 = x[sP1][g], p0 = 1 - p1;
              const float us = v[gUScale][g];
              // Through the relus: their derivative is 1 where the stored value is above 0.
              const float g_uu0 = x[sUt0][g] > 0 ? scale_u * x[sGUt0][g] + a_u * p0 : 0.0f;
              const float gu0 = g_uu0 * us, gs0 = x[sSt0][g] > 0 ? scale_s * x[sGSt0][g] + a_s * p0 : 0.0f;
              const float g_uu1 = x[sUt1][g] > 0 ? scale_u * x[sGUt1][g] + a_u * p1 : 0.0f;
              const float gu1 = g_uu1 * us, gs1 = x[sSt1][g] > 0 ? scale_s * x[sGSt1][g] + a_s * p1 : 0.0f;
              // d ut / d u_scale = u where the relu passes, = ut / u_scale: summed here as g ut, and
              // divided by u_scale once per gene after the sum over cells.
              acc[cUScale][g] += g_uu0 * x[sUt0][g] + g_uu1 * x[sUt1][g];
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
              g_t += g_t0 + g_x1;
            }
          };
          if (offset) backward(std::true_type{});
          else backward(std::false_type{});
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
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t slot = 0; slot < kSlots; ++slot)
    for (int64_t tile = 0; tile < tiles.count; ++tile) {
      double* out = total.data() + slot * G + tiles.first(tile);
      const int64_t from = (tile * kSlots + slot) * kPitch;
      for (const auto& acc : sums)  // chunk order: the same sum for any thread count
        for (int64_t g = 0; g < tiles.size(tile); ++g) out[g] += acc[from + g];
    }
  for (int64_t g = 0; g < G; ++g) {  // the u_scale sums were in ut = u_scale u: back to u
    const double u_scale = gene[kUScale][g];
    total[cUScale * G + g] = u_scale != 0 ? total[cUScale * G + g] / u_scale : 0.0;
  }
  chain_gene_slots(o, at_switch, total, G, grad);
  return value;
}

}  // namespace pv

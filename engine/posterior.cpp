#include "engine/posterior.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "engine/vector_math.h"
#include "kernels/dynamics.h"
#include "kernels/math.h"
#include "kernels/philox.h"
#include "kernels/sampling.h"

namespace pv {
namespace {

constexpr double kEps = 1e-6;
enum : uint32_t { kPosteriorGene = 50, kPosteriorCell = 51, kPosteriorCellGene = 52 };

GeneDraw draw_genes(const VelocityModel& model, uint64_t seed, int64_t sample) {
  const ParamLayout& l = model.layout();
  const std::vector<double>& p = model.params();
  const int64_t G = l.genes, D = l.gene_dim, R = l.rank;
  const uint64_t stream = (uint64_t(kPosteriorGene) << 48) | uint64_t(sample);
  std::vector<double> e1(static_cast<size_t>(R)), e2(static_cast<size_t>(D));
  normals_at(seed, stream, 0, R, e1.data());
  normals_at(seed, stream, uint64_t(R), D, e2.data());
  GeneDraw draw;
  draw.sample = sample;
  for (int s = 0; s < kGeneSites; ++s) {
    if (l.site_slot[s] < 0) continue;
    draw.site[s].resize(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      const int64_t i = int64_t(l.site_slot[s]) * G + g;
      double w = e2[i];
      for (int64_t a = 0; a < R; ++a) w += p[l.gene_factor + i * R + a] * e1[a];
      const double z = p[l.gene_loc + i] + softplus(p[l.gene_raw + i]) * w;
      draw.site[s][g] = gene_site_positive(s) ? std::exp(z) : z;
    }
  }
  draw.u_inf.resize(static_cast<size_t>(G));
  draw.s_inf.resize(static_cast<size_t>(G));
  draw.switching.resize(static_cast<size_t>(G));
  const bool offset = model.options().add_offset;
  for (int64_t g = 0; g < G; ++g) {
    const Dynamics<double> d =
        mrna_dynamics(draw.site[kDtSwitching][g], offset ? draw.site[kUOffset][g] : 0.0, offset ? draw.site[kSOffset][g] : 0.0,
                      draw.site[kAlpha][g], draw.site[kBeta][g], draw.site[kGamma][g]);
    draw.u_inf[g] = d.u;
    draw.s_inf[g] = d.s;
    draw.switching[g] = draw.site[kT0][g] + draw.site[kDtSwitching][g];
  }
  return draw;
}

// Per-gene inputs of a sample's cell x gene draws, in float for the vectorised loops below.
enum GeneInput { iSwitching, iT0, iAlpha, iBeta, iGamma, iInvGap, iU0, iS0, iUInf, iSInf, iUScale, kGeneInputs };

// One cell's state draw and (ut, st) in that state for every gene: float arithmetic over genes
// (engine/vector_math.h) in loops that GCC vectorises, the last with both states' inputs selected
// lane by lane. Each gene's uniform is the first of its own stream, CounterStream(seed,
// kPosteriorCellGene, first_id + g).uniform(), the same bits as a scalar draw; the state is
// uniform < sigmoid(x1) (repression; sigmoid in float); the dynamics are kernels/dynamics.h's
// formula. The double comparison has a loop of its own: GCC does not vectorise a loop that mixes
// it with the float work. No FMA in either build of this (target("avx2") below), so every CPU
// draws the same values.
__attribute__((always_inline)) inline void draw_cell_genes_body(uint64_t seed, uint64_t first_id, float cell_time,
                                                                const float* const* in, int64_t genes, double* uniform,
                                                                float* work, float* state, float* ut, float* st) {
  const uint64_t kind = uint64_t(kPosteriorCellGene) << 48, id_mask = (uint64_t(1) << 48) - 1;
#pragma omp simd
  for (int64_t g = 0; g < genes; ++g) {
    const Philox4 bits = philox_block(seed, kind | ((first_id + uint64_t(g)) & id_mask), 0);
    uniform[g] = uniform_from_words(bits.v[0], bits.v[1]);  // CounterStream's first uniform
  }
#pragma omp simd
  for (int64_t g = 0; g < genes; ++g) {  // sigmoid(x1), from e^-|x1|
    const float x1 = cell_time - in[iSwitching][g], e1 = vmath::exp_neg(std::fabs(x1));
    const float inv = 1.0f / (1.0f + e1);
    work[g] = x1 >= 0 ? inv : e1 * inv;
  }
  for (int64_t g = 0; g < genes; ++g) state[g] = uniform[g] < double(work[g]) ? 1.0f : 0.0f;
#pragma omp simd
  for (int64_t g = 0; g < genes; ++g) {
    const float x1 = cell_time - in[iSwitching][g], a = cell_time - in[iT0][g];
    const float e1 = vmath::exp_neg(std::fabs(x1)), ea = vmath::exp_neg(std::fabs(a));
    const bool repression = state[g] != 0.0f;
    const float y = repression ? x1 : a, ey = repression ? e1 : ea;
    const float tau = vmath::relu(y) + vmath::log1p_reciprocal_unit(ey).log1p;  // softplus(y)
    const float beta = in[iBeta][g], gamma = in[iGamma][g];
    // Both states' inputs are read, then chosen: a load under a condition would keep the loop scalar.
    const float u_inf = in[iUInf][g], s_inf = in[iSInf][g], u_start = in[iU0][g], s_start = in[iS0][g];
    const float alpha_on = in[iAlpha][g];
    const float u0 = repression ? u_inf : u_start, s0 = repression ? s_inf : s_start;
    const float alpha = repression ? 0.0f : alpha_on;
    const vmath::ExpPhi pb = vmath::exp_neg_phi(beta * tau), pg = vmath::exp_neg_phi(gamma * tau);
    const float tau_E = vmath::gap_decay(tau, beta, gamma, in[iInvGap][g], pb.e, pg.e).tau_E;
    const float u = u0 * pb.e + alpha * tau * pb.phi;
    const float s = s0 * pg.e + alpha * tau * pg.phi - (alpha - beta * u0) * tau_E;
    ut[g] = u * in[iUScale][g];
    st[g] = s;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) void draw_cell_genes_avx2(uint64_t seed, uint64_t first_id, float cell_time,
                                                          const float* const* in, int64_t genes, double* uniform,
                                                          float* work, float* state, float* ut, float* st) {
  draw_cell_genes_body(seed, first_id, cell_time, in, genes, uniform, work, state, ut, st);
}
#endif

void draw_cell_genes(uint64_t seed, uint64_t first_id, float cell_time, const float* const* in, int64_t genes,
                     double* uniform, float* work, float* state, float* ut, float* st) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return draw_cell_genes_avx2(seed, first_id, cell_time, in, genes, uniform, work, state, ut, st);
#endif
  draw_cell_genes_body(seed, first_id, cell_time, in, genes, uniform, work, state, ut, st);
}

void draw_cells(const VelocityModel& model, uint64_t seed, bool predictive_counts, const GeneDraw& genes,
                const std::vector<int64_t>& rows, CellChunkDraw* out) {
  const ParamLayout& l = model.layout();
  const ModelOptions& o = model.options();
  const std::vector<double>& p = model.params();
  const int64_t C = l.cells, G = l.genes, n = out->count;
  const uint64_t stream = (uint64_t(kPosteriorCell) << 48) | uint64_t(out->sample);
  for (int s = 0; s < kCellSites; ++s) out->cell[s].resize(static_cast<size_t>(n));
  for (auto* v : {&out->state, &out->ut, &out->st}) v->resize(static_cast<size_t>(n * G));
  for (auto* v : {&out->u, &out->s}) v->resize(predictive_counts ? static_cast<size_t>(n * G) : 0);
  const bool nb = o.likelihood == Likelihood::kNegativeBinomial;
  const bool offset = o.add_offset;
  std::vector<float> inputs(static_cast<size_t>(kGeneInputs * G));
  const float* in[kGeneInputs];
  for (int k = 0; k < kGeneInputs; ++k) in[k] = inputs.data() + k * G;
  for (int64_t g = 0; g < G; ++g) {
    float* column = inputs.data() + g;
    column[iSwitching * G] = float(genes.switching[g]);
    column[iT0 * G] = float(genes.site[kT0][g]);
    column[iAlpha * G] = float(genes.site[kAlpha][g]);
    column[iBeta * G] = float(genes.site[kBeta][g]);
    column[iGamma * G] = float(genes.site[kGamma][g]);
    column[iInvGap * G] = vmath::inverse_gap(genes.site[kBeta][g], genes.site[kGamma][g]);
    column[iU0 * G] = offset ? float(genes.site[kUOffset][g]) : 0.0f;
    column[iS0 * G] = offset ? float(genes.site[kSOffset][g]) : 0.0f;
    column[iUInf * G] = float(genes.u_inf[g]);
    column[iSInf * G] = float(genes.s_inf[g]);
    column[iUScale * G] = float(genes.site[kUScale][g]);
  }
#pragma omp parallel
  {
    std::vector<double> uniform(static_cast<size_t>(G)), ut_pos, st_pos;
    std::vector<float> work(static_cast<size_t>(G));
#pragma omp for schedule(dynamic, 8)
    for (int64_t b = 0; b < n; ++b) {
      const int64_t row = rows[out->first + b];
      double cell[kCellSites];
      for (int s = 0; s < kCellSites; ++s) {
        const int64_t i = s * C + row;
        const double e = normal_at(seed, stream, uint64_t(i));
        cell[s] = std::exp(p[l.cell_loc + i] + softplus(p[l.cell_raw + i]) * e);
        out->cell[s][b] = cell[s];
      }
      float* ut = out->ut.data() + b * G;
      float* st = out->st.data() + b * G;
      const uint64_t first_id = (uint64_t(out->sample) * uint64_t(C) + uint64_t(row)) * uint64_t(G);
      draw_cell_genes(seed, first_id, float(cell[kCellTime]), in, G, uniform.data(), work.data(), out->state.data() + b * G,
                      ut, st);
      if (!predictive_counts) continue;
      ut_pos.resize(static_cast<size_t>(G));
      st_pos.resize(static_cast<size_t>(G));
      double norm_u = 0, norm_s = 0;
      for (int64_t g = 0; g < G; ++g) {
        ut_pos[g] = std::max(double(ut[g]), 0.0) + kEps;
        st_pos[g] = std::max(double(st[g]), 0.0) + kEps;
        norm_u += ut_pos[g];
        norm_s += st_pos[g];
      }
      for (int64_t g = 0; g < G; ++g) {
        // Each cell-gene's stream continues after its state draw.
        CounterStream rng(seed, kPosteriorCellGene, first_id + uint64_t(g));
        sample_bernoulli_logit(0.0, rng);
        const double rate_u = o.correct_library_size ? (ut_pos[g] / norm_u + kEps) * cell[kUReadDepth] : ut_pos[g];
        const double rate_s = o.correct_library_size ? (st_pos[g] / norm_s + kEps) * cell[kSReadDepth] : st_pos[g];
        if (nb) {
          out->u[b * G + g] = float(sample_negative_binomial(rate_u, std::exp(p[l.dispersion_u + g]), rng));
          out->s[b * G + g] = float(sample_negative_binomial(rate_s, std::exp(p[l.dispersion_s + g]), rng));
        } else {
          out->u[b * G + g] = float(sample_poisson(rate_u, rng));
          out->s[b * G + g] = float(sample_poisson(rate_s, rng));
        }
      }
    }
  }
}

}  // namespace

std::vector<std::string> gene_level_keys(const ModelOptions& options) {
  std::vector<std::string> keys;
  for (int s = 0; s < kGeneSites; ++s)
    if (options.add_offset || (s != kUOffset && s != kSOffset)) keys.push_back(gene_site_name(s));
  for (const char* k : {"u_inf", "s_inf", "switching"}) keys.push_back(k);
  return keys;
}

void stream_posterior(const VelocityModel& model, const PosteriorOptions& options, const PosteriorConsumer& consume) {
  const int64_t C = model.layout().cells;
  require(options.num_samples > 0, PV_ERR_INVALID_ARGUMENT,
          "num_samples is " + std::to_string(options.num_samples) + " (must be > 0)");
  require(options.batch_size >= 0, PV_ERR_INVALID_ARGUMENT, "batch_size must be > 0");
  std::vector<int64_t> rows = options.cells;
  if (rows.empty()) {
    rows.resize(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) rows[c] = c;
  }
  for (int64_t r : rows)
    if (r < 0 || r >= C)
      fail(PV_ERR_INVALID_ARGUMENT,
           "cell index " + std::to_string(r) + " is out of range (the data has " + std::to_string(C) + " cells)");
  const int64_t n = int64_t(rows.size());
  const int64_t chunk = options.batch_size > 0 ? options.batch_size : n;
  CellChunkDraw cells;  // reused: S x C x G floats of fresh pages per sample cost more than drawing them
  for (int64_t sample = 0; sample < options.num_samples; ++sample) {
    const GeneDraw genes = draw_genes(model, options.seed, sample);
    for (int64_t first = 0; first < n; first += chunk) {
      cells.sample = sample;
      cells.first = first;
      cells.count = std::min(chunk, n - first);
      draw_cells(model, options.seed, options.predictive_counts, genes, rows, &cells);
      consume(genes, cells);
    }
  }
}

std::map<std::string, Array> generate_posterior_samples(const VelocityModel& model, const PosteriorOptions& options) {
  const int64_t S = options.num_samples, G = model.layout().genes;
  const int64_t C = options.cells.empty() ? model.layout().cells : int64_t(options.cells.size());
  require(double(S) * double(C) * double(G) * 4.0 * 5.0 < 64e9, PV_ERR_OUT_OF_MEMORY,
          "the S x C x G posterior arrays would need over 64 GB; stream them (stream_posterior) or summarise");
  std::map<std::string, Array> out;
  const std::vector<std::string> gene_keys = gene_level_keys(model.options());
  for (const std::string& k : gene_keys) out[k] = {{S, 1, G}, std::vector<float>(static_cast<size_t>(S * G))};
  for (int s = 0; s < kCellSites; ++s) out[cell_site_name(s)] = {{S, C, 1}, std::vector<float>(static_cast<size_t>(S * C))};
  for (const char* k : {"cell_gene_state", "ut", "st", "u", "s"})
    out[k] = {{S, C, G}, std::vector<float>(static_cast<size_t>(S * C * G))};
  stream_posterior(model, options, [&](const GeneDraw& genes, const CellChunkDraw& cells) {
    const int64_t s = cells.sample;
    if (cells.first == 0) {
      for (int site = 0; site < kGeneSites; ++site)
        if (!genes.site[site].empty())
          std::copy(genes.site[site].begin(), genes.site[site].end(), out[gene_site_name(site)].values.begin() + s * G);
      std::copy(genes.u_inf.begin(), genes.u_inf.end(), out["u_inf"].values.begin() + s * G);
      std::copy(genes.s_inf.begin(), genes.s_inf.end(), out["s_inf"].values.begin() + s * G);
      std::copy(genes.switching.begin(), genes.switching.end(), out["switching"].values.begin() + s * G);
    }
    for (int site = 0; site < kCellSites; ++site)
      std::copy(cells.cell[site].begin(), cells.cell[site].end(), out[cell_site_name(site)].values.begin() + s * C + cells.first);
    const std::pair<const char*, const std::vector<float>*> big[] = {
        {"cell_gene_state", &cells.state}, {"ut", &cells.ut}, {"st", &cells.st}, {"u", &cells.u}, {"s", &cells.s}};
    for (const auto& [key, values] : big)
      std::copy(values->begin(), values->end(), out[key].values.begin() + (s * C + cells.first) * G);
  });
  return out;
}

namespace {

void welford_update(double x, double n, double* mu, double* m) {
  const double delta = x - *mu;
  *mu += delta / n;
  *m += delta * (x - *mu);
}

}  // namespace

PosteriorSummariser::PosteriorSummariser(const VelocityModel& model, const PosteriorOptions& options)
    : samples_(options.num_samples),
      cells_(options.cells.empty() ? model.layout().cells : int64_t(options.cells.size())),
      genes_(model.layout().genes) {
  const size_t G = static_cast<size_t>(genes_), C = static_cast<size_t>(cells_);
  for (const std::string& k : gene_level_keys(model.options())) mean_[k].assign(G, 0.0), m2_[k].assign(G, 0.0);
  for (int s = 0; s < kCellSites; ++s) mean_[cell_site_name(s)].assign(C, 0.0), m2_[cell_site_name(s)].assign(C, 0.0);
  for (const char* k : {"ut", "st", "velocity"}) big_mean_[k].assign(C * G, 0.f), big_m2_[k].assign(C * G, 0.f);
}

void PosteriorSummariser::add(const GeneDraw& genes, const CellChunkDraw& cells) {
  const int64_t G = genes_;
  const double n = double(cells.sample + 1);
  if (cells.first == 0) {
    for (int site = 0; site < kGeneSites; ++site)
      for (size_t g = 0; g < genes.site[site].size(); ++g)
        welford_update(genes.site[site][g], n, &mean_[gene_site_name(site)][g], &m2_[gene_site_name(site)][g]);
    for (int64_t g = 0; g < G; ++g) {
      welford_update(genes.u_inf[g], n, &mean_["u_inf"][g], &m2_["u_inf"][g]);
      welford_update(genes.s_inf[g], n, &mean_["s_inf"][g], &m2_["s_inf"][g]);
      welford_update(genes.switching[g], n, &mean_["switching"][g], &m2_["switching"][g]);
    }
  }
  for (int site = 0; site < kCellSites; ++site)
    for (int64_t b = 0; b < cells.count; ++b)
      welford_update(cells.cell[site][b], n, &mean_[cell_site_name(site)][cells.first + b],
                     &m2_[cell_site_name(site)][cells.first + b]);
  float *mu_u = big_mean_["ut"].data(), *mu_s = big_mean_["st"].data(), *mu_v = big_mean_["velocity"].data();
  float *m2_u = big_m2_["ut"].data(), *m2_s = big_m2_["st"].data(), *m2_v = big_m2_["velocity"].data();
  // The cell x gene accumulators: Welford's update as welford_update, with 1/n once instead of a
  // division per value, written out so that the loop over genes vectorises.
  const double inv_n = 1.0 / n;
  const double *beta = genes.site[kBeta].data(), *gamma = genes.site[kGamma].data(), *u_scale = genes.site[kUScale].data();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < cells.count; ++b) {
    const float* ut_row = cells.ut.data() + b * G;
    const float* st_row = cells.st.data() + b * G;
    const int64_t row = (cells.first + b) * G;
#pragma omp simd
    for (int64_t g = 0; g < G; ++g) {
      const int64_t i = row + g;
      const double ut = ut_row[g], st = st_row[g];
      const double v = beta[g] * ut / u_scale[g] - gamma[g] * st;
      const double du = ut - mu_u[i], ds = st - mu_s[i], dv = v - mu_v[i];
      const double mu = mu_u[i] + du * inv_n, ms = mu_s[i] + ds * inv_n, mv = mu_v[i] + dv * inv_n;
      m2_u[i] = float(m2_u[i] + du * (ut - mu)), mu_u[i] = float(mu);
      m2_s[i] = float(m2_s[i] + ds * (st - ms)), mu_s[i] = float(ms);
      m2_v[i] = float(m2_v[i] + dv * (v - mv)), mu_v[i] = float(mv);
    }
  }
}

PosteriorSummary PosteriorSummariser::finish() {
  PosteriorSummary out;
  out.samples = samples_;
  out.cells = cells_;
  out.genes = genes_;
  const double dof = std::max<double>(1.0, double(samples_ - 1));  // sample sd, ddof = 1
  for (auto& [k, mu] : mean_) {
    out.mean[k] = std::move(mu);
    std::vector<double>& sd = out.sd[k];
    for (double q : m2_[k]) sd.push_back(std::sqrt(q / dof));
  }
  for (auto& [k, mu] : big_mean_) {
    out.mean[k].assign(mu.begin(), mu.end());
    std::vector<double>& sd = out.sd[k];
    sd.reserve(mu.size());
    for (float q : big_m2_[k]) sd.push_back(std::sqrt(double(q) / dof));
  }
  mean_.clear(), m2_.clear(), big_mean_.clear(), big_m2_.clear();
  return out;
}

PosteriorSummary summarise_posterior(const VelocityModel& model, const PosteriorOptions& options_in) {
  PosteriorOptions options = options_in;
  options.predictive_counts = false;
  PosteriorSummariser summariser(model, options);
  stream_posterior(model, options, [&](const GeneDraw& genes, const CellChunkDraw& cells) { summariser.add(genes, cells); });
  return summariser.finish();
}

}  // namespace pv

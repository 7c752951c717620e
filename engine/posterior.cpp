#include "engine/posterior.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
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
  std::vector<double> e1(static_cast<size_t>(R));
  for (int64_t a = 0; a < R; ++a) e1[a] = normal_at(seed, stream, uint64_t(a));
  GeneDraw draw;
  draw.sample = sample;
  for (int s = 0; s < kGeneSites; ++s) {
    if (l.site_slot[s] < 0) continue;
    draw.site[s].resize(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      const int64_t i = int64_t(l.site_slot[s]) * G + g;
      double w = normal_at(seed, stream, uint64_t(R + i));
      for (int64_t a = 0; a < R; ++a) w += p[l.gene_factor + i * R + a] * e1[a];
      const double z = p[l.gene_loc + i] + softplus(p[l.gene_raw + i]) * w;
      draw.site[s][g] = gene_site_positive(s) ? std::exp(z) : z;
    }
  }
  (void)D;
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
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t b = 0; b < n; ++b) {
    const int64_t row = rows[out->first + b];
    double cell[kCellSites];
    for (int s = 0; s < kCellSites; ++s) {
      const int64_t i = s * C + row;
      const double e = normal_at(seed, stream, uint64_t(i));
      cell[s] = std::exp(p[l.cell_loc + i] + softplus(p[l.cell_raw + i]) * e);
      out->cell[s][b] = cell[s];
    }
    float* state = out->state.data() + b * G;
    float* ut = out->ut.data() + b * G;
    float* st = out->st.data() + b * G;
    double norm_u = 0, norm_s = 0;
    std::vector<double> ut_pos(static_cast<size_t>(G)), st_pos(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      CounterStream rng(seed, kPosteriorCellGene, (uint64_t(out->sample) * uint64_t(C) + uint64_t(row)) * uint64_t(G) + uint64_t(g));
      const double x1 = cell[kCellTime] - genes.switching[g];
      const bool repression = sample_bernoulli_logit(x1, rng);
      const double beta = genes.site[kBeta][g], gamma = genes.site[kGamma][g];
      const Dynamics<double> d =
          repression ? mrna_dynamics(softplus(x1), genes.u_inf[g], genes.s_inf[g], 0.0, beta, gamma)
                     : mrna_dynamics(softplus(cell[kCellTime] - genes.site[kT0][g]), offset ? genes.site[kUOffset][g] : 0.0,
                                     offset ? genes.site[kSOffset][g] : 0.0, genes.site[kAlpha][g], beta, gamma);
      const double u_value = d.u * genes.site[kUScale][g];
      state[g] = repression ? 1.0f : 0.0f;
      ut[g] = float(u_value);
      st[g] = float(d.s);
      ut_pos[g] = std::max(u_value, 0.0) + kEps;
      st_pos[g] = std::max(d.s, 0.0) + kEps;
      norm_u += ut_pos[g];
      norm_s += st_pos[g];
    }
    if (!predictive_counts) continue;
    for (int64_t g = 0; g < G; ++g) {
      // Each cell-gene's stream continues after its state draw.
      CounterStream rng(seed, kPosteriorCellGene, (uint64_t(out->sample) * uint64_t(C) + uint64_t(row)) * uint64_t(G) + uint64_t(g));
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
  for (int64_t sample = 0; sample < options.num_samples; ++sample) {
    const GeneDraw genes = draw_genes(model, options.seed, sample);
    for (int64_t first = 0; first < n; first += chunk) {
      CellChunkDraw cells;
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
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < cells.count; ++b)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t i = (cells.first + b) * G + g;
      const double ut = cells.ut[b * G + g], st = cells.st[b * G + g];
      const double v = genes.site[kBeta][g] * ut / genes.site[kUScale][g] - genes.site[kGamma][g] * st;
      double m, q;
      m = mu_u[i], q = m2_u[i], welford_update(ut, n, &m, &q), mu_u[i] = float(m), m2_u[i] = float(q);
      m = mu_s[i], q = m2_s[i], welford_update(st, n, &m, &q), mu_s[i] = float(m), m2_s[i] = float(q);
      m = mu_v[i], q = m2_v[i], welford_update(v, n, &m, &q), mu_v[i] = float(m), m2_v[i] = float(q);
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

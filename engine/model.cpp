#include "engine/model.h"

#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/guide.h"
#include "engine/likelihood_fast.h"
#include "engine/ops.h"
#include "kernels/math.h"
#include "kernels/philox.h"

namespace pv {
namespace {

constexpr double kEps = 1e-6;
enum : uint32_t { kGeneNoise = 30, kCellNoise = 31, kStateSeed = 32, kInit = 33 };

double sample_sd(const std::vector<double>& x) {
  double mean = 0;
  for (double v : x) mean += v / double(x.size());
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  return x.size() > 1 ? std::sqrt(ss / double(x.size() - 1)) : 0.0;
}

// normals_at on every thread: each draw depends only on its index, so the blocks give the same
// numbers as one call.
void normals_parallel(uint64_t seed, uint64_t stream, uint64_t first, int64_t count, double* out) {
  constexpr int64_t kBlock = 1024;
#pragma omp parallel for schedule(static) if (count >= 4 * kBlock)
  for (int64_t at = 0; at < count; at += kBlock)
    normals_at(seed, stream, first + uint64_t(at), std::min(kBlock, count - at), out + at);
}

}  // namespace

bool use_fast_likelihood(const ModelOptions& o) {
#if defined(PV_FAST_LIKELIHOOD)
  return o.precision == Precision::kFast && fast_likelihood_covers(o) && fast_likelihood_available();
#else
  (void)o;
  return false;
#endif
}

ModelData make_model_data(std::shared_ptr<const io::AnnData> data) {
  require(data != nullptr, PV_ERR_INVALID_ARGUMENT, "no dataset");
  const auto s = data->layers.find("spliced"), u = data->layers.find("unspliced");
  require(s != data->layers.end() && u != data->layers.end(), PV_ERR_INVALID_ARGUMENT,
          "the dataset needs layers 'spliced' and 'unspliced'");
  require(s->second.rows == u->second.rows && s->second.cols == u->second.cols, PV_ERR_INVALID_ARGUMENT,
          "spliced and unspliced layers differ in shape");
  require(s->second.rows >= 2, PV_ERR_INVALID_ARGUMENT, "the model needs at least 2 cells");
  require(s->second.cols >= 1, PV_ERR_INVALID_ARGUMENT, "the model needs at least 1 gene");
  ModelData m;
  m.counts = {&u->second, &s->second};
  const std::vector<double> lib_u = io::library_sizes(*data, true);
  const std::vector<double> lib_s = io::library_sizes(*data, false);
  for (size_t c = 0; c < lib_u.size(); ++c) {
    if (!(std::isfinite(lib_u[c]) && lib_u[c] >= 0 && std::isfinite(lib_s[c]) && lib_s[c] >= 0))
      fail(PV_ERR_INVALID_ARGUMENT, "library size of cell " + std::to_string(c) + " is negative or not finite");
    m.log_library_u.push_back(std::log(lib_u[c] + kEps));
    m.log_library_s.push_back(std::log(lib_s[c] + kEps));
  }
  m.log_library_sd_u = sample_sd(m.log_library_u);
  m.log_library_sd_s = sample_sd(m.log_library_s);
  // All cells with the same library size would make the read-depth prior degenerate.
  if (!(m.log_library_sd_u > 0)) m.log_library_sd_u = 1.0;
  if (!(m.log_library_sd_s > 0)) m.log_library_sd_s = 1.0;
  m.row_log_factorial.resize(lib_u.size());
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < int64_t(lib_u.size()); ++c) m.row_log_factorial[c] = row_log_factorial(m.counts, c);
  m.counts.row_log_factorial = m.row_log_factorial.data();
  const auto zero_free = [](const io::CountMatrix& c) {
    return c.sparse && std::find(c.data.begin(), c.data.end(), 0.0f) == c.data.end();
  };
  m.counts.stored_zeros = !(zero_free(u->second) && zero_free(s->second));
  m.anndata = std::move(data);
  return m;
}

ParamLayout make_layout(int64_t genes, int64_t cells, const ModelOptions& o) {
  ParamLayout l;
  l.genes = genes;
  l.cells = cells;
  l.rank = o.guide_rank;
  int sites = 0;
  for (int s = 0; s < kGeneSites; ++s) {
    const bool present = o.add_offset || (s != kUOffset && s != kSOffset);
    l.site_slot[s] = present ? sites++ : -1;
  }
  l.gene_dim = sites * genes;
  int64_t at = 0;
  l.gene_loc = at, at += l.gene_dim;
  l.gene_raw = at, at += l.gene_dim;
  l.gene_factor = at, at += l.gene_dim * l.rank;
  l.cell_loc = at, at += kCellSites * cells;
  l.cell_raw = at, at += kCellSites * cells;
  if (o.likelihood == Likelihood::kNegativeBinomial) {
    l.dispersion_u = at, at += genes;
    l.dispersion_s = at, at += genes;
  }
  l.total = at;
  return l;
}

Var<double> log_joint(Tape<double>& tape, const ModelData& data, const ModelOptions& o, const LogJointInputs& in,
                      LikelihoodGradients* workspace) {
  const int64_t G = data.genes(), B = in.batch;
  Var<double> total = tape.constant(1, 0.0);
  auto constant = [&](double v) { return tape.constant(1, v); };
  if (o.include_prior) {
    const Var<double> zero = constant(0.0), one = constant(1.0);
    const double scales[kGeneSites] = {1.0, 1.0, 0.25, 1.0, 1.0, 1.0, 0.1, 1.0};
    for (int s = 0; s < kGeneSites; ++s) {
      if (in.gene[s].size == 0) continue;
      const Var<double> lp = s == kT0 ? ops::normal_log_prob_sum(tape, in.gene[s], zero, one)
                                      : ops::lognormal_log_prob_sum(tape, in.gene[s], zero, constant(scales[s]));
      total = ops::add(tape, total, lp);
    }
  }
  // Cell-level terms, scaled for minibatches.
  Var<double> cell = ops::lognormal_log_prob_sum(tape, in.cell[kUReadDepth], [&] {
    Var<double> loc = tape.constant(B);
    for (int64_t b = 0; b < B; ++b) loc.value[b] = data.log_library_u[in.cells ? in.cells[b] : b];
    return loc;
  }(), constant(data.log_library_sd_u));
  cell = ops::add(tape, cell, ops::lognormal_log_prob_sum(tape, in.cell[kSReadDepth], [&] {
    Var<double> loc = tape.constant(B);
    for (int64_t b = 0; b < B; ++b) loc.value[b] = data.log_library_s[in.cells ? in.cells[b] : b];
    return loc;
  }(), constant(data.log_library_sd_s)));
  if (o.include_prior)
    cell = ops::add(tape, cell, ops::lognormal_log_prob_sum(tape, in.cell[kCellTime], constant(0.0), constant(1.0)));

  // The fused likelihood: one node whose gradient was computed with its value.
  LikelihoodInputs li;
  for (int s = 0; s < kGeneSites; ++s) li.gene[s] = in.gene[s].size ? in.gene[s].value : nullptr;
  li.log_dispersion_u = in.dispersion_u.size ? in.dispersion_u.value : nullptr;
  li.log_dispersion_s = in.dispersion_s.size ? in.dispersion_s.value : nullptr;
  li.batch = B;
  li.cells = in.cells;
  li.cell_time = in.cell[kCellTime].value;
  li.u_read_depth = in.cell[kUReadDepth].value;
  li.s_read_depth = in.cell[kSReadDepth].value;
  li.state_seed = in.state_seed;
  li.fixed_states = in.fixed_states;
  Var<double> ll = tape.variable(1);
  ll.value[0] = data.device           ? data.device->evaluate(o, li, workspace)
                : use_fast_likelihood(o) ? cell_gene_log_likelihood_fast(data.counts, o, li, workspace)
                                         : cell_gene_log_likelihood(data.counts, o, li, workspace);

  struct LikelihoodNode : Node<double> {
    LogJointInputs in;
    Var<double> out;
    LikelihoodGradients* g;
    int64_t genes;
    LikelihoodNode(const LogJointInputs& i, Var<double> o_, LikelihoodGradients* g_, int64_t n) : in(i), out(o_), g(g_), genes(n) {}
    void backward() override {
      const double w = out.grad[0];
      for (int s = 0; s < kGeneSites; ++s)
        if (in.gene[s].needs_grad())
          for (int64_t j = 0; j < genes; ++j) in.gene[s].grad[j] += w * g->gene[s][j];
      if (in.dispersion_u.needs_grad())
        for (int64_t j = 0; j < genes; ++j) {
          in.dispersion_u.grad[j] += w * g->log_dispersion_u[j];
          in.dispersion_s.grad[j] += w * g->log_dispersion_s[j];
        }
      const std::vector<double>* cell[kCellSites] = {&g->cell_time, &g->u_read_depth, &g->s_read_depth};
      for (int s = 0; s < kCellSites; ++s)
        if (in.cell[s].needs_grad())
          for (int64_t b = 0; b < in.batch; ++b) in.cell[s].grad[b] += w * (*cell[s])[b];
    }
  };
  tape.record<LikelihoodNode>(in, ll, workspace, G);
  cell = ops::add(tape, cell, ll);
  return ops::add(tape, total, in.scale == 1.0 ? cell : ops::mul(tape, cell, constant(in.scale)));
}

VelocityModel::VelocityModel(ModelData data, const ModelOptions& options, uint64_t seed)
    : data_(std::move(data)), options_(options), seed_(seed) {
  require(options.guide_rank >= 1, PV_ERR_INVALID_ARGUMENT, "guide rank must be >= 1");
  require(options.num_particles >= 1, PV_ERR_INVALID_ARGUMENT, "num_particles must be >= 1");
  layout_ = make_layout(data_.genes(), data_.cells(), options_);
  const ParamLayout& l = layout_;
  params_.assign(static_cast<size_t>(l.total), 0.0);
  // Initialisation of MODEL.md section 4: locs 0, guide scales 0.1 sqrt(1/2) (genes) and 0.1
  // (cells) through softplus, F ~ N(0, 1/rank), NB dispersions log 1 = 0.
  const double gene_raw = std::log(std::expm1(0.1 * std::sqrt(0.5)));
  const double cell_raw = std::log(std::expm1(0.1));
  for (int64_t i = 0; i < l.gene_dim; ++i) params_[l.gene_raw + i] = gene_raw;
  const double f_sd = 1.0 / std::sqrt(double(l.rank));
  normals_at(seed_, uint64_t(kInit) << 48, 0, l.gene_dim * l.rank, params_.data() + l.gene_factor);
  for (int64_t i = 0; i < l.gene_dim * l.rank; ++i) params_[l.gene_factor + i] *= f_sd;
  for (int64_t i = 0; i < kCellSites * l.cells; ++i) params_[l.cell_raw + i] = cell_raw;
  // Read depths start at their prior median (the cell's log library size) rather than at 0:
  // from 0, Adam at lr 0.01 spends ~700 steps walking them to ~log(2000) while every other
  // gradient sees wrong rates (2000 x 200 simulation, 1000 epochs: cell-time Spearman 0.21
  // from 0, 0.997 from the median).
  if (options.init_read_depth_at_library) {
    for (int64_t c = 0; c < l.cells; ++c) {
      params_[l.cell_loc + kUReadDepth * l.cells + c] = data_.log_library_u[c];
      params_[l.cell_loc + kSReadDepth * l.cells + c] = data_.log_library_s[c];
    }
  }
}

double VelocityModel::loss(const std::vector<int64_t>& batch, uint64_t draw, std::vector<double>* grads) {
  const ParamLayout& l = layout_;
  const int64_t C = l.cells, G = l.genes, D = l.gene_dim, R = l.rank;
  const int64_t B = batch.empty() ? C : int64_t(batch.size());
  const bool full = batch.empty();
  tape_.rewind();
  grads->assign(static_cast<size_t>(l.total), 0.0);
  const Var<double> all = Tape<double>::external(params_.data(), grads->data(), l.total);
  const Var<double> loc = all.slice(l.gene_loc, D), raw = all.slice(l.gene_raw, D), factor = all.slice(l.gene_factor, D * R);

  int64_t* rows = nullptr;
  if (!full) {
    rows = tape_.arena().allocate_array<int64_t>(B);
    for (int64_t b = 0; b < B; ++b) rows[b] = batch[b];
  }
  const double scale = double(C) / double(B);
  const int particles = options_.num_particles;
  workspace_.resize(static_cast<size_t>(particles));

  Var<double> elbo = tape_.constant(1, 0.0);
  Var<double> cell_loc[kCellSites], cell_scale[kCellSites];
  for (int s = 0; s < kCellSites; ++s) {
    const Var<double> l_all = all.slice(l.cell_loc + s * C, C), r_all = all.slice(l.cell_raw + s * C, C);
    cell_loc[s] = full ? l_all : ops::gather(tape_, l_all, rows, B);
    cell_scale[s] = ops::softplus(tape_, full ? r_all : ops::gather(tape_, r_all, rows, B));
  }

  for (int p = 0; p < particles; ++p) {
    const uint64_t stream = draw * uint64_t(particles) + uint64_t(p);
    Var<double> e1 = tape_.constant(R), e2 = tape_.constant(D);
    normals_at(seed_, (uint64_t(kGeneNoise) << 48) | stream, 0, R, e1.value);
    normals_parallel(seed_, (uint64_t(kGeneNoise) << 48) | stream, uint64_t(R), D, e2.value);
    const Var<double> z = lowrank_sample(tape_, loc, raw, factor, R, e1, e2);
    const Var<double> positive = ops::exp(tape_, z);

    LogJointInputs in;
    for (int s = 0; s < kGeneSites; ++s) {
      if (l.site_slot[s] < 0) continue;
      const int64_t at = int64_t(l.site_slot[s]) * G;
      in.gene[s] = gene_site_positive(s) ? positive.slice(at, G) : z.slice(at, G);
    }
    if (l.dispersion_u >= 0) {
      in.dispersion_u = all.slice(l.dispersion_u, G);
      in.dispersion_s = all.slice(l.dispersion_s, G);
    }
    Var<double> cell_z[kCellSites];
    for (int s = 0; s < kCellSites; ++s) {
      Var<double> e = tape_.constant(B);
      const uint64_t cell_noise = (uint64_t(kCellNoise) << 48) | stream;
      if (full) normals_parallel(seed_, cell_noise, uint64_t(s * C), B, e.value);
      else
        for (int64_t b = 0; b < B; ++b) e.value[b] = normal_at(seed_, cell_noise, uint64_t(s * C + rows[b]));
      cell_z[s] = ops::add(tape_, cell_loc[s], ops::mul(tape_, cell_scale[s], e));
      in.cell[s] = ops::exp(tape_, cell_z[s]);
    }
    in.cells = rows;
    in.batch = B;
    in.scale = scale;
    in.state_seed = philox_block(seed_, (uint64_t(kStateSeed) << 48) | stream, 0).v[0] |
                    (uint64_t(philox_block(seed_, (uint64_t(kStateSeed) << 48) | stream, 0).v[1]) << 32);
    Var<double> particle = log_joint(tape_, data_, options_, in, &workspace_[p]);

    if (options_.entropy == EntropyMode::kSample) {
      // -log q(z) in constrained space: -(log q_u(z_u) - sum of the log-space coordinates).
      Var<double> log_q = lowrank_log_density(tape_, z, loc, raw, factor, R);
      for (int s = 0; s < kGeneSites; ++s)
        if (l.site_slot[s] >= 0 && gene_site_positive(s))
          log_q = ops::sub(tape_, log_q, ops::sum(tape_, z.slice(int64_t(l.site_slot[s]) * G, G)));
      Var<double> cell_log_q = tape_.constant(1, 0.0);
      for (int s = 0; s < kCellSites; ++s) {
        cell_log_q = ops::add(tape_, cell_log_q, ops::normal_log_prob_sum(tape_, cell_z[s], cell_loc[s], cell_scale[s]));
        cell_log_q = ops::sub(tape_, cell_log_q, ops::sum(tape_, cell_z[s]));
      }
      log_q = ops::add(tape_, log_q, ops::mul(tape_, cell_log_q, tape_.constant(1, scale)));
      particle = ops::sub(tape_, particle, log_q);
    }
    elbo = ops::add(tape_, elbo, ops::mul(tape_, particle, tape_.constant(1, 1.0 / particles)));
  }

  if (options_.entropy == EntropyMode::kAnalytic) {
    // Gene-level: Gaussian entropy plus E[log-Jacobian] = the locs of the log-space sites.
    Var<double> h = lowrank_entropy(tape_, raw, factor, R);
    for (int s = 0; s < kGeneSites; ++s)
      if (l.site_slot[s] >= 0 && gene_site_positive(s))
        h = ops::add(tape_, h, ops::sum(tape_, loc.slice(int64_t(l.site_slot[s]) * G, G)));
    // Cell-level: sum of 1/2 log(2 pi e) + log scale + loc, scaled like the other cell terms.
    Var<double> hc = tape_.constant(1, 0.5 * double(kCellSites * B) * (Constants<double>::log_2pi + 1.0));
    for (int s = 0; s < kCellSites; ++s) {
      hc = ops::add(tape_, hc, ops::sum(tape_, ops::log(tape_, cell_scale[s])));
      hc = ops::add(tape_, hc, ops::sum(tape_, cell_loc[s]));
    }
    h = ops::add(tape_, h, ops::mul(tape_, hc, tape_.constant(1, scale)));
    elbo = ops::add(tape_, elbo, h);
  }
  const Var<double> neg = ops::sum(tape_, elbo, -1.0);
  tape_.backward(neg);
  return neg.scalar();
}

}  // namespace pv

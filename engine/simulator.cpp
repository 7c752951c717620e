#include "engine/simulator.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/pca.h"
#include "kernels/dynamics.h"
#include "kernels/math.h"
#include "kernels/sampling.h"

namespace pv {
namespace {

// Stream kinds: separate counter spaces for unrelated draws.
enum : uint32_t { kGeneLatents = 1, kCellLatents = 2, kCellGene = 3 };
constexpr double kEps = 1e-6;
constexpr int kStages = 4;

struct Gene {
  double alpha, gamma, beta, u_offset, s_offset, t0, u_scale, dt_switching;
  double u0, s0, u_inf, s_inf, switching;
};

Gene draw_gene(uint64_t seed, int64_t g, bool add_offset) {
  CounterStream rng(seed, kGeneLatents, uint64_t(g));
  Gene x;
  // Priors of MODEL.md section 3, in the site order of the guide.
  x.alpha = std::exp(rng.normal());
  x.gamma = std::exp(rng.normal());
  x.beta = std::exp(0.25 * rng.normal());
  x.u_offset = std::exp(rng.normal());
  x.s_offset = std::exp(rng.normal());
  x.t0 = rng.normal();
  x.u_scale = std::exp(0.1 * rng.normal());
  x.dt_switching = std::exp(rng.normal());
  x.u0 = add_offset ? x.u_offset : 0.0;
  x.s0 = add_offset ? x.s_offset : 0.0;
  const Dynamics<double> at_switch = mrna_dynamics(x.dt_switching, x.u0, x.s0, x.alpha, x.beta, x.gamma);
  x.u_inf = at_switch.u;
  x.s_inf = at_switch.s;
  x.switching = x.t0 + x.dt_switching;
  return x;
}

void add_numeric(io::DataFrame* frame, const std::string& name, std::vector<double> values) {
  io::Column c;
  c.name = name;
  c.kind = io::Column::Kind::kNumeric;
  c.numeric = std::move(values);
  frame->columns.push_back(std::move(c));
}

io::CountMatrix to_csr(int64_t rows, int64_t cols, const std::vector<std::vector<std::pair<int32_t, float>>>& per_row) {
  io::CountMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.sparse = true;
  m.indptr.assign(size_t(rows + 1), 0);
  for (int64_t r = 0; r < rows; ++r) m.indptr[r + 1] = m.indptr[r] + int64_t(per_row[r].size());
  m.indices.resize(size_t(m.indptr[rows]));
  m.data.resize(size_t(m.indptr[rows]));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t p = m.indptr[r];
    for (const auto& [col, value] : per_row[r]) {
      m.indices[p] = col;
      m.data[p++] = value;
    }
  }
  return m;
}

}  // namespace

io::AnnData simulate(const SimulationOptions& o) {
  require(o.cells >= 2, PV_ERR_INVALID_ARGUMENT, "simulate: cells must be >= 2, got " + std::to_string(o.cells));
  require(o.genes >= 1, PV_ERR_INVALID_ARGUMENT, "simulate: genes must be >= 1, got " + std::to_string(o.genes));
  require(o.cells * o.genes <= (int64_t(1) << 40), PV_ERR_INVALID_ARGUMENT, "simulate: cells x genes is too large");
  require(o.mean_spliced > 0 && o.mean_unspliced > 0 && std::isfinite(o.mean_spliced) && std::isfinite(o.mean_unspliced),
          PV_ERR_INVALID_ARGUMENT, "simulate: mean counts must be positive and finite");
  require(o.depth_log_sd >= 0 && std::isfinite(o.depth_log_sd), PV_ERR_INVALID_ARGUMENT,
          "simulate: depth_log_sd must be >= 0");
  const int64_t C = o.cells, G = o.genes;

  std::vector<Gene> genes(static_cast<size_t>(G));
  for (int64_t g = 0; g < G; ++g) genes[g] = draw_gene(o.seed, g, o.add_offset);

  std::vector<double> cell_time(static_cast<size_t>(C)), u_depth(static_cast<size_t>(C)), s_depth(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    CounterStream rng(o.seed, kCellLatents, uint64_t(c));
    cell_time[c] = std::exp(rng.normal());
    u_depth[c] = std::exp(std::log(o.mean_unspliced * double(G)) + o.depth_log_sd * rng.normal());
    s_depth[c] = std::exp(std::log(o.mean_spliced * double(G)) + o.depth_log_sd * rng.normal());
  }

  std::vector<std::vector<std::pair<int32_t, float>>> u_rows(static_cast<size_t>(C)), s_rows(static_cast<size_t>(C));
  std::vector<double> u_total(static_cast<size_t>(C)), s_total(static_cast<size_t>(C));
#pragma omp parallel
  {
    std::vector<double> ut(static_cast<size_t>(G)), st(static_cast<size_t>(G));
#pragma omp for schedule(dynamic, 16)
    for (int64_t c = 0; c < C; ++c) {
      const double t = cell_time[c];
      double norm_u = 0, norm_s = 0;
      for (int64_t g = 0; g < G; ++g) {
        const Gene& x = genes[g];
        CounterStream rng(o.seed, kCellGene, uint64_t(c * G + g));
        const bool repression = sample_bernoulli_logit(t - x.switching, rng);
        const Dynamics<double> d =
            repression ? mrna_dynamics(softplus(t - x.switching), x.u_inf, x.s_inf, 0.0, x.beta, x.gamma)
                       : mrna_dynamics(softplus(t - x.t0), x.u0, x.s0, x.alpha, x.beta, x.gamma);
        ut[g] = std::max(d.u * x.u_scale, 0.0) + kEps;
        st[g] = std::max(d.s, 0.0) + kEps;
        norm_u += ut[g];
        norm_s += st[g];
      }
      double su = 0, ss = 0;
      for (int64_t g = 0; g < G; ++g) {
        // Continue each cell-gene's own stream after its state draw.
        CounterStream rng(o.seed, kCellGene, uint64_t(c * G + g));
        sample_bernoulli_logit(0.0, rng);
        const double u = sample_poisson((ut[g] / norm_u + kEps) * u_depth[c], rng);
        const double s = sample_poisson((st[g] / norm_s + kEps) * s_depth[c], rng);
        if (u > 0) u_rows[c].push_back({int32_t(g), float(u)});
        if (s > 0) s_rows[c].push_back({int32_t(g), float(s)});
        su += u;
        ss += s;
      }
      u_total[c] = su;
      s_total[c] = ss;
    }
  }

  io::AnnData data;
  data.layers["unspliced"] = to_csr(C, G, u_rows);
  data.layers["spliced"] = to_csr(C, G, s_rows);
  data.X = std::make_unique<io::CountMatrix>(data.layers["spliced"]);

  data.obs.index.resize(size_t(C));
  for (int64_t c = 0; c < C; ++c) data.obs.index[c] = "cell" + std::to_string(c);
  data.var.index.resize(size_t(G));
  for (int64_t g = 0; g < G; ++g) data.var.index[g] = "gene" + std::to_string(g);

  add_numeric(&data.obs, "true_t", cell_time);
  // Stages: cell-time quartiles, a categorical for plots and transition metrics.
  std::vector<double> sorted = cell_time;
  std::sort(sorted.begin(), sorted.end());
  io::Column stage;
  stage.name = "true_stage";
  stage.kind = io::Column::Kind::kCategorical;
  stage.ordered = true;
  for (int k = 0; k < kStages; ++k) stage.categories.push_back("stage" + std::to_string(k + 1));
  for (int64_t c = 0; c < C; ++c) {
    const int64_t rank = std::lower_bound(sorted.begin(), sorted.end(), cell_time[c]) - sorted.begin();
    stage.codes.push_back(int32_t(std::min<int64_t>(kStages - 1, rank * kStages / C)));
  }
  data.obs.columns.push_back(std::move(stage));
  add_numeric(&data.obs, "u_lib_size_raw", u_total);
  add_numeric(&data.obs, "s_lib_size_raw", s_total);

  auto gene_column = [&](const char* name, double Gene::*field) {
    std::vector<double> v(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) v[g] = genes[g].*field;
    add_numeric(&data.var, name, std::move(v));
  };
  gene_column("true_alpha", &Gene::alpha);
  gene_column("true_beta", &Gene::beta);
  gene_column("true_gamma", &Gene::gamma);
  gene_column("true_t0", &Gene::t0);
  gene_column("true_dt_switching", &Gene::dt_switching);
  gene_column("true_switching", &Gene::switching);
  gene_column("true_u_scale", &Gene::u_scale);
  if (o.add_offset) {
    gene_column("true_u_offset", &Gene::u_offset);
    gene_column("true_s_offset", &Gene::s_offset);
  }

  // Embedding: PCA of log1p(counts per 10k) of the spliced layer.
  const int64_t components = std::max<int64_t>(2, std::min<int64_t>(o.pca_components, std::min(C - 1, G)));
  if (G >= 2) {
    const PcaResult p = log_expression_pca(data.layers["spliced"], components, o.seed);
    io::DenseMatrix<double> x_pca{C, p.components, p.scores};
    io::DenseMatrix<double> x_umap{C, 2, std::vector<double>(size_t(2 * C))};
    for (int64_t c = 0; c < C; ++c) {
      x_umap.values[2 * c] = p.scores[c * p.components];
      x_umap.values[2 * c + 1] = p.components > 1 ? p.scores[c * p.components + 1] : 0.0;
    }
    data.obsm["X_pca"] = std::move(x_pca);
    data.obsm["X_umap"] = std::move(x_umap);
  }

  io::UnsValue sim;
  sim.kind = io::UnsValue::Kind::kDict;
  auto number = [](double v) { io::UnsValue x; x.kind = io::UnsValue::Kind::kNumber; x.number = v; return x; };
  auto integer = [](int64_t v) { io::UnsValue x; x.kind = io::UnsValue::Kind::kInteger; x.integer = v; return x; };
  sim.dict["seed"] = integer(int64_t(o.seed));
  sim.dict["cells"] = integer(C);
  sim.dict["genes"] = integer(G);
  sim.dict["mean_spliced"] = number(o.mean_spliced);
  sim.dict["mean_unspliced"] = number(o.mean_unspliced);
  sim.dict["depth_log_sd"] = number(o.depth_log_sd);
  sim.dict["add_offset"] = integer(o.add_offset ? 1 : 0);
  data.uns.kind = io::UnsValue::Kind::kDict;
  data.uns.dict["simulation"] = std::move(sim);
  return data;
}

}  // namespace pv

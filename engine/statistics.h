// Posterior statistics on the CPU: scVelo's velocity projection (kNN graph, velocity graph,
// transition probabilities, embedded velocity), the direct PCA projection, and the uncertainty
// tests (Rayleigh, Benjamini-Hochberg). Contract: shared/spec/STATISTICS.md. All arrays are
// row-major; cells index rows.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/posterior.h"

namespace pv {

// Rayleigh test of uniformity of n angles (radians), astropy's `rayleightest`: z = n R^2,
// p = exp(-z) t with the small-sample correction t when n < 50. Not clipped, so it may exceed 1.
double rayleigh_p_value(const double* angles_rad, int64_t n);

// Benjamini-Hochberg adjusted p-values (statsmodels `fdr_bh`), capped at 1, in the input order.
std::vector<double> benjamini_hochberg(const std::vector<double>& p);

// Exact Euclidean k nearest neighbours. Row i of `index` / `distance` (k entries) starts with i
// itself (distance 0), then the others by increasing distance, ties by increasing index.
struct Knn {
  int64_t cells = 0, k = 0;
  std::vector<int64_t> index;    // cells x k
  std::vector<double> distance;  // cells x k
};

Knn knn_graph(const double* x, int64_t cells, int64_t dims, int64_t k = 30);

// scVelo's velocity graph as CSR over cells. Row i holds every candidate j != i (i's neighbours
// and their neighbours, ascending j) with the cosine pi_ij of the centred velocity V_i and the
// centred displacement X_j - X_i (0 where a norm is 0); `self_transition` holds s_i.
struct VelocityGraph {
  int64_t cells = 0;
  std::vector<int64_t> indptr;  // cells + 1
  std::vector<int64_t> indices;
  std::vector<double> cosine;   // in [-1, 1]
  std::vector<double> self_transition;  // cells: clip(P98(c) - c_i, 0, 1), c_i = max(0, max_j pi_ij)
};

// X (expression) and V (velocity) are cells x genes. Genes whose velocity has a NaN are dropped.
// `sqrt_transform` applies sign(v) sqrt|v| to V and to every displacement before centring
// (scVelo's choice for its 'stochastic' mode only; off for Pyro-Velocity).
VelocityGraph velocity_graph(const float* X, const float* V, int64_t cells, int64_t genes, const Knn& knn,
                             bool sqrt_transform = false);

// Expected displacement in an embedding (cells x dims_used, all columns used) under the
// transition probabilities of `graph` (scale 10, self-transitions, negative cosines). Returns
// cells x dims_used; a cell whose transition row is empty gets NaN. `autoscale` divides by
// 3 x matplotlib's quiver scale, computed from the first two columns.
std::vector<double> velocity_embedding(const VelocityGraph& graph, const double* embedding, int64_t cells,
                                       int64_t dims_used = 2, bool autoscale = true);

// (V - column means of V) . pcs, with pcs genes x comps (the PCA loadings); cells x comps.
// A NaN in a gene's velocity makes every projection NaN, so pass only finite genes.
std::vector<double> direct_pca_projection(const float* V, int64_t cells, int64_t genes, const double* pcs,
                                          int64_t comps);

// compute_statistics_from_posterior_samples (MODEL.md section 7), streaming over samples so no
// S x C x G array is held. kNN on obsm "X_pca" (all columns, `neighbours` incl. self); embedding
// obsm "X_<basis>" (its first two columns). Rows follow `posterior.cells` (empty: all cells).
struct StatisticsOptions {
  std::string basis = "umap";
  int64_t neighbours = 30;
  // genes x pca_components, the loadings of the PCA that produced X_pca: enables the pca_* keys
  // (projection onto the first two components). Empty: those keys are left out.
  std::vector<double> pca_loadings;
  int64_t pca_components = 0;
  // The displacement X_j - X_i in the velocity graph uses the posterior-mean st for every sample
  // (as Pyro-Velocity sets its `spliced_pyro` layer); true: each sample's own st.
  bool spliced_per_sample = false;
};

// Per-gene ranking (MODEL.md section 7), each value averaged over samples:
// mean_mae = -mean_c |s_obs - s_pred| / mean_c s_obs (s_pred: the posterior predictive s) and
// time_correlation = Pearson(st, cell_time) over cells (0 when either is constant). Ranks are
// 1 for the largest value, ties averaged (pandas rank(ascending=False)). `genes`: the 300 genes
// with the largest mean_mae, of those the 4 with the largest time_correlation (ties by index).
struct GeneRanking {
  std::vector<double> mean_mae, time_correlation;
  std::vector<double> mean_mae_rank, time_correlation_rank;
  std::vector<int64_t> genes;
};

// The ranks and the selection above, from the per-gene averages.
GeneRanking rank_genes(std::vector<double> mean_mae, std::vector<double> time_correlation);

// Array keys and shapes: vector_field_posterior_samples (S, C, 2), vector_field_posterior_mean
// (C, 2), embeds_magnitude and embeds_angle (S, C), fdri (C), original_spaces_embeds_magnitude
// (S, C), ut_mean, st_mean, ut_std, st_std (C, G; std with ddof = 0, numpy's default), and with
// loadings pca_vector_field_posterior_samples (S, C, 2), pca_embeds_angle (S, C), pca_fdri (C).
// A cell with any NaN angle (an empty transition row) gets fdri NaN; BH runs over the others.
struct PosteriorStatistics {
  std::map<std::string, Array> arrays;
  GeneRanking gene_ranking;
};
PosteriorStatistics compute_statistics(const VelocityModel& model, const PosteriorOptions& posterior,
                                       const StatisticsOptions& options = {});

}  // namespace pv

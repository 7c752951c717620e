// Posterior statistics on the CPU: scVelo's velocity projection (kNN graph, velocity graph,
// transition probabilities, embedded velocity), the direct PCA projection, and the uncertainty
// tests (Rayleigh, Benjamini-Hochberg). Contract: shared/spec/STATISTICS.md. All arrays are
// row-major; cells index rows.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/neighbours.h"
#include "engine/posterior.h"
#include "io/anndata.h"

namespace pv {

// Rayleigh test of uniformity of n angles (radians), astropy's `rayleightest`: z = n R^2,
// p = exp(-z) t with the small-sample correction t when n < 50. Not clipped, so it may exceed 1.
double rayleigh_p_value(const double* angles_rad, int64_t n);

// Benjamini-Hochberg adjusted p-values (statsmodels `fdr_bh`), capped at 1, in the input order.
std::vector<double> benjamini_hochberg(const std::vector<double>& p);

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

// velocity_graph of each of `fields` velocity fields V[f] (cells x genes) against one X, faster than
// one at a time: the candidates and the displacement norms are shared, and each displacement is
// read once for every field (products in float32; cosines agree with velocity_graph to ~1e-5).
// Fields with a NaN fall back to velocity_graph, one at a time.
std::vector<VelocityGraph> velocity_graphs(const float* X, const float* const* V, int64_t fields, int64_t cells,
                                           int64_t genes, const Knn& knn);

// What velocity_graphs shares between fields, kept for several batches against the same X (which
// must outlive it): each cell's candidates and the norms of the centred displacements to them.
struct DisplacementPlan {
  DisplacementPlan(const float* X, int64_t cells, int64_t genes, const Knn& knn);
  const float* X;
  int64_t cells, genes;
  std::vector<std::vector<int64_t>> candidates;
  std::vector<std::vector<double>> displacement_norm;
  // Every cell once, neighbours next to each other (breadth first over the kNN graph): cells
  // visited in this order share most candidates, whose rows are then still in cache.
  std::vector<int64_t> order;
};
// As above with a plan; fields with a NaN are refused.
std::vector<VelocityGraph> velocity_graphs(const DisplacementPlan& plan, const float* const* V, int64_t fields);

// Expected displacement in an embedding (cells x dims_used, all columns used) under the
// transition probabilities of `graph` (scale 10, self-transitions, negative cosines). Returns
// cells x dims_used; a cell whose transition row is empty gets NaN. `autoscale` divides by
// 3 x matplotlib's quiver scale, computed from the first two columns.
std::vector<double> velocity_embedding(const VelocityGraph& graph, const double* embedding, int64_t cells,
                                       int64_t dims_used = 2, bool autoscale = true);
// velocity_embedding's autoscale, in place on embedded (cells x dims, dims >= 2).
void autoscale_embedded(const double* embedding, int64_t cells, int64_t dims, double* embedded);

// s_i = clip(P98(c) - c_i, 0, 1) from the row confidences c_i = max(0, max_j pi_ij).
std::vector<double> self_transitions(const std::vector<double>& confidence);

// One velocity field (cells x genes): an array, or made a cell's row at a time from a posterior
// sample as V = rate ut - gamma st (rate = beta / u_scale; rate and gamma per gene), so that
// samples held in memory need no copy of their velocities.
struct VelocityField {
  const float* values = nullptr;  // the array; null: from the sample below
  const float *ut = nullptr, *st = nullptr;
  const double *rate = nullptr, *gamma = nullptr;
};

// velocity_graphs then velocity_embedding (two columns, autoscaled) of velocity fields against one
// X, on the CPU or on the GPU (graph and projection in float32 there; the CPU path is the reference
// the CUDA tests hold it to). What the fields share (X, the candidates, the displacement norms, the
// embedding) is prepared once; X and the embedding must outlive the projector.
class FieldProjector {
 public:
  FieldProjector(const float* X, int64_t cells, int64_t genes, const Knn& knn, const double* embedding, Device device);
  ~FieldProjector();
  FieldProjector(const FieldProjector&) = delete;
  FieldProjector& operator=(const FieldProjector&) = delete;
  // Embedded velocities, fields x cells x 2. Fields with a NaN are refused.
  std::vector<double> project(const float* const* V, int64_t fields);
  std::vector<double> project(const VelocityField* fields, int64_t count);

 private:
  int64_t cells_, genes_;
  const double* embedding_;
  std::unique_ptr<DisplacementPlan> plan_;             // CPU
  std::vector<std::vector<double>> directions_;        // CPU: per cell, (dx, dy) per candidate
  std::unique_ptr<class DeviceVelocityProjection> device_;  // CUDA
};

// (V - column means of V) . pcs, with pcs genes x comps (the PCA loadings); cells x comps.
// A NaN in a gene's velocity makes every projection NaN, so pass only finite genes.
std::vector<double> direct_pca_projection(const float* V, int64_t cells, int64_t genes, const double* pcs,
                                          int64_t comps);

// compute_statistics_from_posterior_samples (MODEL.md section 7), streaming over samples so no
// S x C x G array need be held. kNN on obsm "X_pca" (all columns, `neighbours` incl. self, at most
// the number of cells);
// embedding obsm "X_<basis>" (its first two columns).
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
  // The second pass (each velocity against the mean st) reuses pass 1's velocities when S x C x G
  // float32 fits in this many bytes and the samples are not in memory; otherwise it visits them again.
  int64_t sample_cache_bytes = int64_t(1) << 30;
  // Where the velocity graphs against the mean st and their projection run (kCuda:
  // PV_ERR_NO_DEVICE without a GPU). With spliced_per_sample the samples' own graphs stay on the CPU.
  Device device = Device::kCpu;
  // The kNN space when obsm has no X_pca (cells x dims); prepare_statistics fills it.
  io::DenseMatrix<double> knn_space;
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
  Knn knn;  // the kNN graph the projection used, over the samples' cells (for connectivities)
};

// One posterior sample as the statistics read it: cells x genes row-major ut, st and the
// predictive spliced counts s, the cell times, and the gene rates of V = beta ut / u_scale - gamma st.
struct StatisticsSample {
  const float* ut = nullptr;
  const float* st = nullptr;
  const float* s = nullptr;  // null when the visit was asked without counts
  const float* cell_time = nullptr;
  const double* beta = nullptr;
  const double* gamma = nullptr;
  const double* u_scale = nullptr;
};
// Visits the S samples in order, the same samples on every call; `with_counts` false lets the
// source skip the predictive counts.
using StatisticsSamples =
    std::function<void(bool with_counts, const std::function<void(const StatisticsSample&)>& visit)>;

struct StatisticsInput {
  const io::AnnData* anndata = nullptr;    // obsm X_pca and X_<basis>, one row per data cell
  const io::CountMatrix* spliced = nullptr;  // the observed spliced counts (data cells x genes)
  std::vector<int64_t> rows;               // the data rows the samples cover (empty: all)
  int64_t samples = 0, genes = 0;
  bool samples_in_memory = false;  // visiting them again is cheap: no velocity cache
  // All S samples when they are held in memory (each with its counts): the first pass then sweeps
  // each block of cells through every sample while the block's moments are in cache, and refuses
  // a non-finite ut, st or s by name.
  std::vector<StatisticsSample> held;
};

PosteriorStatistics compute_statistics(const StatisticsInput& input, const StatisticsSamples& samples,
                                       const StatisticsOptions& options = {});

// The model's own posterior draws (posterior.num_samples with posterior.seed), never all held.
// With a summariser, the first pass also feeds it every chunk, so the caller gets
// summarise_posterior's summary of the same draws without drawing them again.
PosteriorStatistics compute_statistics(const VelocityModel& model, const PosteriorOptions& posterior,
                                       const StatisticsOptions& options = {}, PosteriorSummariser* summariser = nullptr);

// Samples held in memory (generate_posterior_samples' keys ut, st, s, beta, gamma, cell_time and
// optionally u_scale) over every cell of `anndata`, whose layers["spliced"] are the observed counts.
PosteriorStatistics compute_statistics(const io::AnnData& anndata, const std::map<std::string, Array>& samples,
                                       const StatisticsOptions& options = {});

// Fills in options what the statistics need but the data may lack: knn_space when obsm has no
// X_pca (a PCA of log expression with min(30, cells - 1, genes) components; `note` says so) and pca_loadings
// (varm "PCs" when present with X_pca, else from the PCA of log expression with as many components
// as X_pca has columns).
void prepare_statistics(const io::AnnData& data, StatisticsOptions* options, uint64_t seed, std::string* note = nullptr);

}  // namespace pv

// Benchmark metrics of a velocity result against known cluster transitions: cross-boundary
// direction correctness (CBDir) and in-cluster coherence (ICCoh), UniTVelo's definitions
// (shared/spec/STATISTICS.md, "Benchmark metrics"). Arrays are row-major; cells index rows.
// Cluster codes index `categories`; code -1 (missing) belongs to no cluster.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/statistics.h"

namespace pv {

using Transition = std::pair<std::string, std::string>;  // (from cluster, to cluster)

struct TransitionScore {
  std::string from, to;
  double score;   // NaN when no cell of `from` has a neighbour in `to`
  int64_t cells;  // cells of `from` that contributed
};

// CBDir per edge A -> B: for each cell i of A with a finite embedded velocity V_i and at least
// one kNN neighbour j in B, the mean over those j of cos(E_j - E_i, V_i) (0 where a norm is 0);
// the edge's score is the mean over such cells. `embedding` and `velocity_embedded` are cells x 2;
// `knn` is over the same cells. Unknown cluster names are PV_ERR_INVALID_ARGUMENT.
std::vector<TransitionScore> cross_boundary_direction(const double* embedding, const double* velocity_embedded,
                                                      const std::vector<int32_t>& cluster_codes,
                                                      const std::vector<std::string>& categories, const Knn& knn,
                                                      const std::vector<Transition>& transitions);

// The mean over the edges that have a score; NaN when none has.
double cross_boundary_direction_total(const std::vector<TransitionScore>& scores);

// ICCoh: for each cell i in a cluster, the mean of cos(V_i, V_j) over its kNN neighbours j in the
// same cluster (i itself included; 0 where a norm is 0); a cluster's score is the mean over its
// cells. V is cells x genes (gene-space velocity); genes with a NaN anywhere are left out, as in
// the velocity graph. One entry per category, in category order; NaN for a cluster without cells.
std::vector<std::pair<std::string, double>> in_cluster_coherence(const float* V, int64_t cells, int64_t genes,
                                                                 const std::vector<int32_t>& cluster_codes,
                                                                 const std::vector<std::string>& categories,
                                                                 const Knn& knn);

// The mean over the clusters that have a score; NaN when none has.
double in_cluster_coherence_total(const std::vector<std::pair<std::string, double>>& scores);

// Parses "A>B, B>C" into edges (names may hold spaces; the spaces around them are dropped).
// "A>{B, C}" is shorthand for A>B, A>C. The word "pancreas" stands for the pancreas preset:
// Ductal>Ngn3 low EP, Ngn3 low EP>Ngn3 high EP, Ngn3 high EP>Pre-endocrine,
// Pre-endocrine>{Alpha, Beta, Delta, Epsilon}. Every name must be one of `categories` (an error
// names it and lists them); a malformed item is PV_ERR_INVALID_ARGUMENT too.
std::vector<Transition> parse_transitions(const std::string& text, const std::vector<std::string>& categories);

}  // namespace pv

// Draws a dataset from the model's own generative process (MODEL.md section 3): gene kinetics and
// switching times, cell times and read depths, the discrete state, and Poisson counts through the
// library-size normaliser. Every draw is counter-based, so a seed gives the same data on any
// number of threads.
#pragma once

#include <cstdint>

#include "io/anndata.h"

namespace pv {

struct SimulationOptions {
  int64_t cells = 2000;
  int64_t genes = 200;
  uint64_t seed = 0;
  double mean_spliced = 10.0;    // average spliced count per gene per cell (sets the read depth)
  double mean_unspliced = 5.0;
  double depth_log_sd = 0.3;     // spread of log read depth across cells
  bool add_offset = false;       // draw u0, s0 (the paper's model2); else start from 0
  int64_t pca_components = 10;   // obsm X_pca; X_umap holds its first two components
};

// Layers spliced/unspliced (and X = spliced) as CSR raw counts; obs true_t, true_stage,
// u_lib_size_raw, s_lib_size_raw; var true_alpha, true_beta, true_gamma, true_t0,
// true_dt_switching, true_switching, true_u_scale (and true_u_offset, true_s_offset);
// obsm X_pca, X_umap; uns simulation (the options).
io::AnnData simulate(const SimulationOptions& options);

}  // namespace pv

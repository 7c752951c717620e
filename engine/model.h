// The Pyro-Velocity model and its guide as one object: the data it was built on, the variational
// parameters in one flat buffer, and the negative ELBO with its gradient for a batch of cells.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/likelihood.h"
#include "engine/model_options.h"
#include "engine/tape.h"
#include "io/anndata.h"

namespace pv {

// What the model needs of a dataset: counts, log library sizes and their spread, gene names.
struct ModelData {
  std::shared_ptr<const io::AnnData> anndata;
  CountView counts;
  std::vector<double> log_library_u, log_library_s;  // log(U_c + eps), log(S_c + eps)
  double log_library_sd_u = 1, log_library_sd_s = 1;  // standard deviation over cells, ddof = 1
  std::vector<double> row_log_factorial;               // see CountView
  std::shared_ptr<class DeviceLikelihood> device;      // set: the likelihood runs on the GPU
  int64_t cells() const { return counts.cells(); }
  int64_t genes() const { return counts.genes(); }
};

// Whether log_joint evaluates the likelihood with the float32 fast path for these options here.
bool use_fast_likelihood(const ModelOptions& options);

// Validates the layers "spliced"/"unspliced" of `data` and computes the library statistics.
ModelData make_model_data(std::shared_ptr<const io::AnnData> data);

// Where each block of parameters lives in the flat buffer.
struct ParamLayout {
  int64_t genes = 0, cells = 0, rank = 0, gene_dim = 0;  // gene_dim D = sites x genes
  int site_slot[kGeneSites];                              // block of each site in the gene vector, -1 if absent
  int64_t gene_loc = 0, gene_raw = 0, gene_factor = 0;    // D, D, D x rank
  int64_t cell_loc = 0, cell_raw = 0;                     // kCellSites x cells each
  int64_t dispersion_u = -1, dispersion_s = -1;           // genes each (negative binomial only)
  int64_t total = 0;
};
ParamLayout make_layout(int64_t genes, int64_t cells, const ModelOptions& options);

// The model's log joint density on the tape, for a batch: gene priors (include_prior),
// cell_time priors (include_prior) and read-depth priors, and the fused likelihood. Cell-level
// and likelihood terms are multiplied by `scale` (C / B for minibatches).
struct LogJointInputs {
  Var<double> gene[kGeneSites];  // constrained values, genes each (offsets empty without add_offset)
  Var<double> dispersion_u, dispersion_s;
  Var<double> cell[kCellSites];  // constrained values, batch each
  const int64_t* cells = nullptr;  // data rows of the batch (null: all, in order)
  int64_t batch = 0;
  double scale = 1.0;
  uint64_t state_seed = 0;
  const int32_t* fixed_states = nullptr;
};
Var<double> log_joint(Tape<double>& tape, const ModelData& data, const ModelOptions& options,
                      const LogJointInputs& in, LikelihoodGradients* workspace);

class VelocityModel {
 public:
  VelocityModel(ModelData data, const ModelOptions& options, uint64_t seed);

  const ModelData& data() const { return data_; }
  const ModelOptions& options() const { return options_; }
  const ParamLayout& layout() const { return layout_; }
  uint64_t seed() const { return seed_; }
  std::vector<double>& params() { return params_; }
  // Runs the fused likelihood on the GPU from now on (null: back to the CPU).
  void use_device(std::shared_ptr<class DeviceLikelihood> device) { data_.device = std::move(device); }
  bool on_device() const { return data_.device != nullptr; }
  const std::vector<double>& params() const { return params_; }

  // A Monte-Carlo estimate of -ELBO for the batch (empty: all cells), with its gradient
  // written into `grads` (resized, overwritten). `draw` selects the step's random numbers.
  double loss(const std::vector<int64_t>& batch, uint64_t draw, std::vector<double>* grads);

 private:
  ModelData data_;
  ModelOptions options_;
  ParamLayout layout_;
  uint64_t seed_;
  std::vector<double> params_;
  Tape<double> tape_;
  std::vector<LikelihoodGradients> workspace_;  // one per particle: each node keeps its own
};

}  // namespace pv

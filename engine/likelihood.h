// The fused cell x gene operation of the model (MODEL.md section 3): both states' dynamics, the
// library-size normaliser, Poisson / negative-binomial log-likelihoods and the state's log-prior,
// with k summed out or drawn, for a batch of cells; value and gradient in one pass. Reductions
// run over a fixed partition of the batch, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model_options.h"
#include "io/anndata.h"

namespace pv {

struct CountView {
  const io::CountMatrix* unspliced = nullptr;
  const io::CountMatrix* spliced = nullptr;
  // Per cell: sum over genes of log(u!) + log(s!), the parameter-free part of the count
  // likelihoods, added once per cell rather than per cell-gene and state. Null: computed.
  const double* row_log_factorial = nullptr;
  // False when both layers are CSR without stored zeros, so their rows can be read as nonzero lists as they are.
  bool stored_zeros = true;
  int64_t cells() const { return spliced->rows; }
  int64_t genes() const { return spliced->cols; }
};

// Per-gene values of the sites (constrained scale; u_offset / s_offset may be null without
// add_offset) and, for the negative binomial, the log-dispersions; per-cell latents of a batch.
struct LikelihoodInputs {
  const double* gene[kGeneSites] = {};
  const double* log_dispersion_u = nullptr;
  const double* log_dispersion_s = nullptr;
  int64_t batch = 0;
  const int64_t* cells = nullptr;  // data rows of the batch (null: rows 0..batch-1)
  const double* cell_time = nullptr;
  const double* u_read_depth = nullptr;
  const double* s_read_depth = nullptr;
  uint64_t state_seed = 0;  // for StateMode::kSampled: the step's seed
  const int32_t* fixed_states = nullptr;  // kSampled with given states (tests): batch x genes
};

// What a likelihood path keeps from call to call, so that a training step allocates nothing (the
// fast path's buffers); each path defines its own.
struct LikelihoodScratch {
  virtual ~LikelihoodScratch() = default;
};

// d(log-likelihood)/d(each input); arrays sized like the inputs. Gene arrays are overwritten.
struct LikelihoodGradients {
  std::vector<double> gene[kGeneSites];
  std::vector<double> log_dispersion_u, log_dispersion_s;
  std::vector<double> cell_time, u_read_depth, s_read_depth;
  std::unique_ptr<LikelihoodScratch> scratch;  // made and kept by the path that uses it
};

// Sum over the batch's cells and all genes of the per-cell-gene log-likelihood (including the
// state's log-prior); fills `grad` when non-null.
// sum_g log(u[row, g]!) + log(s[row, g]!)
double row_log_factorial(const CountView& data, int64_t row);

double cell_gene_log_likelihood(const CountView& data, const ModelOptions& options, const LikelihoodInputs& in,
                                LikelihoodGradients* grad);

}  // namespace pv

// The model's options (the PyroVelocity constructor parameters the engine implements).
#pragma once

#include <cstdint>
#include <string>

namespace pv {

enum class Likelihood { kPoisson, kNegativeBinomial };
// How the discrete induction/repression state k enters: summed out exactly per cell-gene
// (default), or drawn from its prior at every step as the reference's full-batch trainer does.
enum class StateMode { kMarginal, kSampled };
// The guide's entropy: analytic (default), or the reference's single-sample -log q(z).
enum class EntropyMode { kAnalytic, kSample };

// Arithmetic of the fused cell x gene operation: a float32 path vectorised over genes where the
// CPU and the options allow it (Poisson, k summed out), else, or on request, the float64 reference.
enum class Precision { kFast, kDouble };

struct ModelOptions {
  Likelihood likelihood = Likelihood::kPoisson;
  bool include_prior = false;
  bool add_offset = false;
  bool correct_library_size = true;
  StateMode state = StateMode::kMarginal;
  EntropyMode entropy = EntropyMode::kAnalytic;
  // Start the read-depth guide locs at the log library size (their prior median); false keeps
  // the reference's 0.
  bool init_read_depth_at_library = true;
  Precision precision = Precision::kFast;
  int guide_rank = 10;
  int num_particles = 1;
};

Likelihood parse_likelihood(const std::string& name);  // "Poisson" | "NegativeBinomial"
const char* likelihood_name(Likelihood likelihood);

// Gene-level sites in the guide's order; offsets exist only with add_offset.
enum GeneSite { kAlpha = 0, kGamma, kBeta, kUOffset, kSOffset, kT0, kUScale, kDtSwitching, kGeneSites };
const char* gene_site_name(int site);
bool gene_site_positive(int site);  // log-normal sites (everything but t0)

// Cell-level sites, in the order of the cell guide's parameter blocks.
enum CellSite { kCellTime = 0, kUReadDepth, kSReadDepth, kCellSites };
const char* cell_site_name(int site);

}  // namespace pv

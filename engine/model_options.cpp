#include "engine/model_options.h"

#include "engine/error.h"

namespace pv {

Likelihood parse_likelihood(const std::string& name) {
  if (name == "Poisson") return Likelihood::kPoisson;
  if (name == "NegativeBinomial") return Likelihood::kNegativeBinomial;
  fail(PV_ERR_INVALID_ARGUMENT, "likelihood '" + name + "' is not supported (expected Poisson or NegativeBinomial)");
}

const char* likelihood_name(Likelihood likelihood) {
  return likelihood == Likelihood::kPoisson ? "Poisson" : "NegativeBinomial";
}

const char* gene_site_name(int site) {
  static const char* names[kGeneSites] = {"alpha", "gamma", "beta", "u_offset", "s_offset", "t0", "u_scale", "dt_switching"};
  return names[site];
}

bool gene_site_positive(int site) { return site != kT0; }

const char* cell_site_name(int site) {
  static const char* names[kCellSites] = {"cell_time", "u_read_depth", "s_read_depth"};
  return names[site];
}

}  // namespace pv

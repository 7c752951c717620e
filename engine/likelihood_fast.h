// A float32, structure-of-arrays evaluation of the fused likelihood, vectorised over genes (AVX2
// and FMA, with the inline exp/log of engine/vector_math.h). It covers the default configuration (Poisson counts, k summed
// out, with or without library-size correction and offsets); engine/likelihood.cpp's double
// path stays the reference it is tested against, and is used for everything else.
#pragma once

#include "engine/likelihood.h"

namespace pv {

// True when this build has the fast path and the CPU runs it (AVX2 + FMA).
bool fast_likelihood_available();
bool fast_likelihood_covers(const ModelOptions& options);

double cell_gene_log_likelihood_fast(const CountView& data, const ModelOptions& options, const LikelihoodInputs& in,
                                     LikelihoodGradients* grad);

}  // namespace pv

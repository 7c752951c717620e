// The gene-level guide (MODEL.md section 4): a low-rank multivariate Normal in unconstrained
// space, q = N(loc, W W^T + diag(d^2)) with W = diag(d) F and d = softplus(raw). Three tape ops:
// the reparameterised sample, the analytic entropy, and the log-density (for the reference's
// single-sample entropy), each one node with a hand-written backward.
#pragma once

#include <cstdint>

#include "engine/tape.h"

namespace pv {

// z = loc + d * (F e1 + e2); F is D x R row-major, e1 has R entries, e2 has D.
Var<double> lowrank_sample(Tape<double>& tape, const Var<double>& loc, const Var<double>& raw, const Var<double>& F,
                           int64_t rank, const Var<double>& e1, const Var<double>& e2);

// Gaussian entropy D/2 log(2 pi e) + sum log d + 1/2 logdet(I + F^T F) (matrix determinant lemma).
Var<double> lowrank_entropy(Tape<double>& tape, const Var<double>& raw, const Var<double>& F, int64_t rank);

// log N(z; loc, W W^T + diag(d^2)) by the Woodbury identity, differentiable in z and all parameters.
Var<double> lowrank_log_density(Tape<double>& tape, const Var<double>& z, const Var<double>& loc,
                                const Var<double>& raw, const Var<double>& F, int64_t rank);

}  // namespace pv

// The per-gene gradient sums that the vectorised CPU path and the CUDA kernel accumulate over
// cells, and their chain to the gene sites through the switch state (u_inf, s_inf) and the
// switching time (t0 + dt_switching).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/likelihood.h"
#include "kernels/dynamics.h"

namespace pv {

// Same order as pv::cuda::DeviceGeneSlot.
enum GeneSlot { kSlotAlpha, kSlotBeta, kSlotGamma, kSlotT0, kSlotUScale, kSlotU0, kSlotS0, kSlotUInf, kSlotSInf, kSlotSwitch, kGeneSlots };

// (u_inf, s_inf) = mrna_dynamics(dt_switching, u0, s0, alpha, beta, gamma) per gene, with partials.
std::vector<DynamicsWithGrad<double>> switch_states(const ModelOptions& options, const double* const* gene, int64_t genes);

// grad->gene[site][g] from slots (kGeneSlots x genes, slot-major).
void chain_gene_slots(const ModelOptions& options, const std::vector<DynamicsWithGrad<double>>& at_switch,
                      const std::vector<double>& slots, int64_t genes, LikelihoodGradients* grad);

}  // namespace pv

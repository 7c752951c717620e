#include "engine/gene_slots.h"

namespace pv {

std::vector<DynamicsWithGrad<double>> switch_states(const ModelOptions& o, const double* const* gene, int64_t G) {
  std::vector<DynamicsWithGrad<double>> at_switch(static_cast<size_t>(G));
  for (int64_t g = 0; g < G; ++g) {
    const double u0 = o.add_offset ? gene[kUOffset][g] : 0.0, s0 = o.add_offset ? gene[kSOffset][g] : 0.0;
    at_switch[g] = mrna_dynamics_with_grad(gene[kDtSwitching][g], u0, s0, gene[kAlpha][g], gene[kBeta][g], gene[kGamma][g]);
  }
  return at_switch;
}

void chain_gene_slots(const ModelOptions& o, const std::vector<DynamicsWithGrad<double>>& at_switch,
                      const std::vector<double>& slots, int64_t G, LikelihoodGradients* grad) {
  auto slot = [&](int s, int64_t g) { return slots[size_t(s * G + g)]; };
  for (int s = 0; s < kGeneSites; ++s) grad->gene[s].assign(static_cast<size_t>(G), 0.0);
  for (int64_t g = 0; g < G; ++g) {
    grad->gene[kAlpha][g] = slot(kSlotAlpha, g);
    grad->gene[kBeta][g] = slot(kSlotBeta, g);
    grad->gene[kGamma][g] = slot(kSlotGamma, g);
    grad->gene[kUScale][g] = slot(kSlotUScale, g);
    grad->gene[kT0][g] = slot(kSlotT0, g) + slot(kSlotSwitch, g);
    grad->gene[kDtSwitching][g] = slot(kSlotSwitch, g);
    if (o.add_offset) {
      grad->gene[kUOffset][g] = slot(kSlotU0, g);
      grad->gene[kSOffset][g] = slot(kSlotS0, g);
    }
    const double gu = slot(kSlotUInf, g), gs = slot(kSlotSInf, g);
    const DynamicsWithGrad<double>& d = at_switch[g];
    grad->gene[kDtSwitching][g] += gu * d.du[kDynTau] + gs * d.ds[kDynTau];
    grad->gene[kAlpha][g] += gu * d.du[kDynAlpha] + gs * d.ds[kDynAlpha];
    grad->gene[kBeta][g] += gu * d.du[kDynBeta] + gs * d.ds[kDynBeta];
    grad->gene[kGamma][g] += gu * d.du[kDynGamma] + gs * d.ds[kDynGamma];
    if (o.add_offset) {
      grad->gene[kUOffset][g] += gu * d.du[kDynU0] + gs * d.ds[kDynU0];
      grad->gene[kSOffset][g] += gu * d.du[kDynS0] + gs * d.ds[kDynS0];
    }
  }
}

}  // namespace pv

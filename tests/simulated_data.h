// A small simulated dataset with a PCA, as the statistics tests need one.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/simulator.h"
#include "io/anndata.h"

namespace pv::testing {

inline std::shared_ptr<io::AnnData> simulated_data(int64_t cells, int64_t genes, uint64_t seed, int64_t pca_components) {
  SimulationOptions simulation;
  simulation.cells = cells;
  simulation.genes = genes;
  simulation.seed = seed;
  simulation.pca_components = pca_components;
  return std::make_shared<io::AnnData>(simulate(simulation));
}

}  // namespace pv::testing

// The saved form of a fitted model: one HDF5 file with the variational parameters, the options,
// the gene and cell names it was fitted to, the loss history and the version that wrote it. Written through a temporary file renamed into place.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pv::io {

struct SavedModel {
  std::string version;                        // pvengine version that wrote the file
  std::map<std::string, std::string> options;  // option name -> value, as text
  uint64_t seed = 0;
  std::vector<double> params;
  std::vector<std::string> genes, cells;
  std::vector<double> loss_history, validation_loss_history;
};

void save_model_file(const std::string& path, const SavedModel& model);
SavedModel load_model_file(const std::string& path);

}  // namespace pv::io

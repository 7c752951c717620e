// --posterior-out: every posterior array (MODEL.md section 6 keys, float32, with their shapes)
// as a dataset of one HDF5 file, plus the gene and cell names; numpy/h5py read it directly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pv::io {

struct NamedArray {
  std::vector<int64_t> shape;
  const std::vector<float>* values;
};

void write_posterior_file(const std::string& path, const std::map<std::string, NamedArray>& arrays,
                          const std::vector<std::string>& genes, const std::vector<std::string>& cells);

}  // namespace pv::io

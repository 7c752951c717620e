#include "io/posterior_file.h"

#include "engine/error.h"
#include "io/h5ad_files.h"
#include "io/hdf5_util.h"

namespace pv::io {

void write_posterior_file(const std::string& path, const std::map<std::string, NamedArray>& arrays,
                          const std::vector<std::string>& genes, const std::vector<std::string>& cells) {
  h5::Session session;
  check_output_directory(path);
  AtomicOutput out(path);
  h5::write_string_attribute(out.file(), "format", "pvengine-posterior-samples");
  for (const auto& [key, array] : arrays) {
    std::vector<hsize_t> dims(array.shape.begin(), array.shape.end());
    h5::write_array<float>(out.file(), key, dims, array.values->data(), path + ": " + key);
  }
  h5::write_strings(out.file(), "genes", genes, path);
  h5::write_strings(out.file(), "cells", cells, path);
  out.commit();
}

}  // namespace pv::io

#include "io/model_file.h"

#include <sys/stat.h>

#include "engine/error.h"
#include "io/h5ad_files.h"
#include "io/hdf5_util.h"

namespace pv::io {
namespace {

constexpr const char* kFormat = "pvengine-model";
constexpr int64_t kFormatVersion = 1;

void write_doubles(hid_t loc, const std::string& name, const std::vector<double>& v, const std::string& what) {
  h5::write_array<double>(loc, name, {hsize_t(v.size())}, v.data(), what + ": " + name);
}

std::vector<double> read_doubles(hid_t loc, const std::string& name, const std::string& what) {
  if (h5::node_kind(loc, name) != h5::NodeKind::kDataset) fail(PV_ERR_FORMAT, what + ": missing dataset '" + name + "'");
  h5::Handle d = h5::check(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), PV_ERR_FORMAT, what + ": cannot open " + name);
  return h5::read_numeric<double>({d.get(), false, what + ": " + name});
}

std::vector<std::string> read_string_list(hid_t loc, const std::string& name, const std::string& what) {
  if (h5::node_kind(loc, name) != h5::NodeKind::kDataset) fail(PV_ERR_FORMAT, what + ": missing dataset '" + name + "'");
  h5::Handle d = h5::check(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), PV_ERR_FORMAT, what + ": cannot open " + name);
  return h5::read_strings({d.get(), false, what + ": " + name});
}

}  // namespace

void save_model_file(const std::string& path, const SavedModel& m) {
  h5::Session session;
  check_output_directory(path);
  const std::string what = path;
  AtomicOutput out(path);
  {
    const hid_t f = out.file();
    h5::write_string_attribute(f, "format", kFormat);
    h5::write_string_attribute(f, "pvengine_version", m.version);
    h5::write_scalar<int64_t>(f, "format_version", kFormatVersion, what);
    h5::write_scalar<int64_t>(f, "seed", int64_t(m.seed), what);
    {
      h5::Handle options = h5::create_group(f, "options", what);
      for (const auto& [key, value] : m.options) h5::write_string_scalar(options, key, value, what);
    }
    write_doubles(f, "params", m.params, what);
    h5::write_strings(f, "genes", m.genes, what);
    h5::write_strings(f, "cells", m.cells, what);
    write_doubles(f, "loss_history", m.loss_history, what);
    write_doubles(f, "validation_loss_history", m.validation_loss_history, what);
  }
  out.commit();
}

SavedModel load_model_file(const std::string& path) {
  h5::Session session;
  struct stat info;
  if (stat(path.c_str(), &info) != 0) fail(PV_ERR_IO, "model file '" + path + "' does not exist");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(PV_ERR_FORMAT, "'" + path + "' is not an HDF5 file (not a saved pvengine model)");
  h5::Handle f = h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), PV_ERR_IO, "cannot open '" + path + "'");
  const std::string what = path;
  const auto format = h5::string_attribute(f, "format", what);
  if (!format || *format != kFormat) fail(PV_ERR_FORMAT, "'" + path + "' is not a saved pvengine model (no format attribute '" + kFormat + "')");
  SavedModel m;
  m.version = h5::string_attribute(f, "pvengine_version", what).value_or("unknown");
  auto scalar = [&](hid_t loc, const std::string& name) {
    const std::vector<double> v = read_doubles(loc, name, what);
    if (v.size() != 1) fail(PV_ERR_FORMAT, what + ": '" + name + "' is not a scalar");
    return v[0];
  };
  const int64_t format_version = int64_t(scalar(f, "format_version"));
  if (format_version != kFormatVersion)
    fail(PV_ERR_UNSUPPORTED, what + ": model file format " + std::to_string(format_version) + " is not supported (this build reads " +
                                 std::to_string(kFormatVersion) + ")");
  m.seed = uint64_t(scalar(f, "seed"));
  {
    h5::Handle options = h5::check(H5Gopen2(f, "options", H5P_DEFAULT), PV_ERR_FORMAT, what + ": missing group options");
    for (const std::string& key : h5::child_names(options)) {
      h5::Handle d = h5::check(H5Dopen2(options, key.c_str(), H5P_DEFAULT), PV_ERR_FORMAT, what + ": options/" + key);
      const std::vector<std::string> v = h5::read_strings({d.get(), false, what + ": options/" + key});
      if (v.size() != 1) fail(PV_ERR_FORMAT, what + ": options/" + key + " is not a string");
      m.options[key] = v[0];
    }
  }
  m.params = read_doubles(f, "params", what);
  m.genes = read_string_list(f, "genes", what);
  m.cells = read_string_list(f, "cells", what);
  m.loss_history = read_doubles(f, "loss_history", what);
  m.validation_loss_history = read_doubles(f, "validation_loss_history", what);
  return m;
}

}  // namespace pv::io

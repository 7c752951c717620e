// Built instead of the HDF5 reader and writer when PV_HDF5 is OFF: the io API keeps its shape and
// every file operation reports PV_ERR_UNSUPPORTED, so callers need no #if of their own.
#include "io/h5ad_layers.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "io/model_file.h"
#include "io/posterior_file.h"

#include "engine/error.h"

namespace pv::io {

namespace {
[[noreturn]] void no_hdf5(const std::string& path) {
  fail(PV_ERR_UNSUPPORTED, path + ": this build has no HDF5 support (configure with -DPV_HDF5=ON "
                                  "and libhdf5 installed to read and write .h5ad files)");
}
}  // namespace

AnnData read_h5ad(const std::string& path, const ReadOptions&) { no_hdf5(path); }

H5adSummary describe_h5ad(const std::string& path) { no_hdf5(path); }

DenseMatrix<float> read_dense_layer(const std::string& path, const std::string&) { no_hdf5(path); }

void write_h5ad(const std::string& path, const AnnData&) { no_hdf5(path); }

void write_h5ad_with_additions(const std::string& input_path, const std::string&, const Additions&) {
  no_hdf5(input_path);
}

void save_model_file(const std::string& path, const SavedModel&) { no_hdf5(path); }

SavedModel load_model_file(const std::string& path) { no_hdf5(path); }

void write_posterior_file(const std::string& path, const std::map<std::string, NamedArray>&, const std::vector<std::string>&,
                          const std::vector<std::string>&) {
  no_hdf5(path);
}

}  // namespace pv::io

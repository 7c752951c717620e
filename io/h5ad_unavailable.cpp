// Built instead of the HDF5 reader and writer when PV_HDF5 is OFF: the io API keeps its shape and
// every file operation reports PV_ERR_UNSUPPORTED, so callers need no #if of their own.
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"

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

void write_h5ad(const std::string& path, const AnnData&) { no_hdf5(path); }

void write_h5ad_with_additions(const std::string& input_path, const std::string&, const Additions&) {
  no_hdf5(input_path);
}

}  // namespace pv::io

// Reading one layer of an .h5ad file that is not a count layer (e.g. the dense velocity_pyro that
// `pvengine fit` writes), without the count checks read_h5ad applies to spliced/unspliced.
//
// Status codes of the pv::Error thrown: PV_ERR_IO (file missing or unreadable), PV_ERR_FORMAT
// (not AnnData, or the layer is not a 2-D numeric array), PV_ERR_INVALID_ARGUMENT (no such layer;
// the message lists the layers in the file), PV_ERR_UNSUPPORTED (this build has no HDF5 support).
#pragma once

#include <string>

#include "io/anndata.h"

namespace pv::io {

// layers/<name> as stored, converted to float (NaN and Inf kept). The shape is not checked
// against obs/var; the caller compares it with what it read from the same file.
DenseMatrix<float> read_dense_layer(const std::string& path, const std::string& name);

}  // namespace pv::io

// Writing .h5ad files that anndata >= 0.8, scanpy and scvelo open unchanged
// (../shared/spec/H5AD.md). Both writers build "<output>.tmp-<pid>" and rename it onto the output
// only when complete, so a failure never leaves a partial file (the temporary is removed).
//
// Status codes of the pv::Error thrown:
//   PV_ERR_INVALID_ARGUMENT  inconsistent data (a column, layer or obsm array whose length or
//                            shape disagrees with obs/var, an invalid CSR matrix, an empty or
//                            '/'-containing name), or output path == input path;
//   PV_ERR_IO                the output directory is missing or unwritable, or writing fails;
//   PV_ERR_FORMAT            (additions) the input is not an AnnData file;
//   PV_ERR_UNSUPPORTED       this build has no HDF5 support.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/anndata.h"

namespace pv::io {

// Writes every element of `data`: obs and var (an empty index becomes "0".."n-1"), X if set,
// layers (dense CountMatrix as float32, sparse as csr_matrix), obsm (float64), empty
// varm/obsp/varp, and uns. Numeric columns are float64, or int64 when is_integer.
void write_h5ad(const std::string& path, const AnnData& data);

// What write_h5ad_with_additions adds to a copy of an existing file. Elements with the name of an
// existing one replace it; new obs/var columns are appended to the frame's column-order.
struct Additions {
  std::vector<Column> obs_columns, var_columns;
  std::map<std::string, DenseMatrix<float>> layers;   // n_obs x n_vars
  std::map<std::string, DenseMatrix<double>> obsm;    // n_obs rows
  std::map<std::string, CountMatrix> obsp;            // n_obs x n_obs, any float values (a cell graph)
  std::map<std::string, UnsValue> uns;                // top-level uns keys
};

// Copies the whole of input_path (every element and root attribute, as stored) to output_path
// with `additions` added. The input is opened read-only and never modified; output_path must not
// be input_path. Checks the paths and the additions' shapes before writing anything.
void write_h5ad_with_additions(const std::string& input_path, const std::string& output_path,
                               const Additions& additions);

}  // namespace pv::io

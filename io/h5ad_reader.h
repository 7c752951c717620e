// Reading .h5ad files (../shared/spec/H5AD.md): the two count layers, obs/var, obsm and uns into
// an AnnData, validated; and a data-free summary of a file for `pvengine inspect`.
//
// Status codes of the pv::Error thrown:
//   PV_ERR_IO                the file is missing, a directory or unreadable;
//   PV_ERR_FORMAT            not HDF5, not AnnData (no obs/var), or an element is malformed
//                            (wrong rank, missing datasets, unknown encoding, a count layer
//                            whose shape disagrees with obs/var);
//   PV_ERR_INVALID_ARGUMENT  the data cannot be used: a requested layer is absent, spliced and
//                            unspliced differ in shape, zero cells or genes, a broken CSR/CSC
//                            structure, negative, NaN/Inf or (unless allowed) non-integer counts;
//   PV_ERR_UNSUPPORTED       this build has no HDF5 support.
// Every message names the file and the element at fault. The file is opened read-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/anndata.h"

namespace pv::io {

struct ReadOptions {
  // "auto": layers raw_spliced/raw_unspliced when both exist (Pyro-Velocity's copy_raw_counts
  // makes them), else spliced/unspliced.
  std::string spliced_layer = "auto", unspliced_layer = "auto";
  // Accept count layers holding non-whole numbers (e.g. ambient-corrected counts).
  bool allow_non_integer = false;
  // Also read X (structure checked; values may be anything finite or not).
  bool read_X = false;
};

// The returned AnnData holds layers["spliced"] and layers["unspliced"] (CSR when stored sparse,
// CSC converted to CSR), whatever their names in the file (recorded in result.source), obs and
// var (numeric, string and categorical columns; nullable ones as numbers with NaN for missing
// values), every 2-D numeric obsm array as double, and uns (scalars, strings, 1-D arrays and
// nested dicts). Elements it cannot represent are listed in result.source.skipped.
AnnData read_h5ad(const std::string& path, const ReadOptions& options = ReadOptions());

// What a file holds, read from metadata only (no matrix is loaded).
struct ElementSummary {
  std::string name;            // key within its container ("spliced", "clusters", "X_umap")
  std::string encoding;        // encoding-type attribute ("csr_matrix", "array", "categorical"...)
  std::string dtype;           // on-disk values: "float32", "int64", "string", "bool"...
  std::vector<int64_t> shape;  // dense shape, or the sparse matrix's shape attribute
  int64_t nnz = -1;            // stored entries of a sparse matrix, else -1
  int64_t n_categories = -1;   // categorical columns, else -1
  bool ordered = false;        // categorical columns
};

struct H5adSummary {
  std::string path;
  std::string encoding_type, encoding_version;  // of the root ("anndata", "0.1.0")
  int64_t n_obs = 0, n_vars = 0;
  bool has_X = false;
  ElementSummary X;
  std::vector<ElementSummary> layers, obs_columns, var_columns, obsm, varm, obsp, varp, uns;
};

H5adSummary describe_h5ad(const std::string& path);

}  // namespace pv::io

// The C ABI's datasets: from an .h5ad file or from caller arrays, validated the same way.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "bindings_c/include/pvengine.h"
#include "bindings_c/src/dataset_handle.h"
#include "bindings_c/src/guard.h"
#include "engine/checks.h"
#include "io/count_checks.h"
#include "io/h5ad_reader.h"

namespace {

using pv::io::CountMatrix;

void check_shape(int64_t n_cells, int64_t n_genes) {
  pv::io::check_count_shape(n_cells, n_genes, "the dataset (n_cells, n_genes)");
  pv::require(n_cells <= INT64_MAX / n_genes, PV_ERR_INVALID_ARGUMENT,
              "n_cells x n_genes = " + std::to_string(n_cells) + " x " + std::to_string(n_genes) +
                  " overflows 64 bits");
  pv::require(n_genes <= INT32_MAX, PV_ERR_INVALID_ARGUMENT,
              "n_genes is " + std::to_string(n_genes) + " (at most 2^31 - 1 genes)");
}

// The dataset's number of cells (obs_axis) or genes.
int64_t dataset_extent(const pv_dataset* dataset, bool obs_axis) {
  pv::check_not_null(dataset, "dataset");
  const auto spliced = dataset->data->layers.find("spliced");
  pv::require(spliced != dataset->data->layers.end(), PV_ERR_INTERNAL, "dataset has no spliced layer");
  return obs_axis ? spliced->second.rows : spliced->second.cols;
}

// A key and a rows x cols block of finite values whose rows match the axis.
void check_annotation(const char* key, const double* values, int64_t rows, int64_t cols, const char* rows_name,
                      int64_t axis_length, const char* axis_name) {
  pv::check_not_null(key, "key");
  pv::require(*key != '\0', PV_ERR_INVALID_ARGUMENT, "key is empty");
  pv::require(rows == axis_length, PV_ERR_INVALID_ARGUMENT,
              std::string(rows_name) + " is " + std::to_string(rows) + " but the dataset has " +
                  std::to_string(axis_length) + " " + (axis_name + 2) + " (" + key + ")");
  pv::require(cols >= 1 && cols <= INT32_MAX, PV_ERR_INVALID_ARGUMENT,
              "cols is " + std::to_string(cols) + " (" + key + "); must be >= 1");
  pv::check_not_null(values, "values");
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(values[i]))
      pv::fail(PV_ERR_INVALID_ARGUMENT, std::string(key) + "[" + std::to_string(i / cols) + "][" +
                                            std::to_string(i % cols) + "] is " + std::to_string(values[i]) +
                                            " (values must be finite)");
}

CountMatrix dense_counts(int64_t n_cells, int64_t n_genes, const double* values, const char* name) {
  pv::check_not_null(values, name);
  pv::io::CountLayout layout;
  layout.rows = n_cells;
  layout.cols = n_genes;
  const int64_t n = n_cells * n_genes;
  pv::io::check_count_values(values, n, name, false, "", layout);
  CountMatrix matrix;
  matrix.rows = n_cells;
  matrix.cols = n_genes;
  matrix.dense.assign(values, values + n);
  return matrix;
}

CountMatrix csr_counts(int64_t n_cells, int64_t n_genes, const int64_t* indptr,
                       const int32_t* indices, const double* data, const char* prefix) {
  const pv::io::CsrNames names{std::string(prefix) + "indptr", std::string(prefix) + "indices",
                               std::string(prefix) + "data"};
  pv::check_not_null(indptr, names.indptr.c_str());
  // indptr is checked before indices and data are touched, so nnz below is trustworthy.
  const int64_t nnz = indptr[n_cells];
  if (nnz > 0) {
    pv::check_not_null(indices, names.indices.c_str());
    pv::check_not_null(data, names.data.c_str());
  }
  pv::io::check_compressed_structure(n_cells, n_genes, indptr, n_cells + 1, indices,
                                     nnz < 0 ? 0 : nnz, nnz < 0 ? 0 : nnz, names);
  pv::io::CountLayout layout;
  layout.rows = n_cells;
  layout.cols = n_genes;
  layout.indptr = indptr;
  layout.indices = indices;
  pv::io::check_count_values(data, nnz, names.data, false, "", layout);
  CountMatrix matrix;
  matrix.rows = n_cells;
  matrix.cols = n_genes;
  matrix.sparse = true;
  matrix.indptr.assign(indptr, indptr + n_cells + 1);
  matrix.indices.assign(indices, indices + nnz);
  matrix.data.assign(data, data + nnz);
  return matrix;
}

void publish(CountMatrix spliced, CountMatrix unspliced, pv_dataset** out) {
  auto dataset = std::make_unique<pv_dataset>();
  dataset->data->layers["spliced"] = std::move(spliced);
  dataset->data->layers["unspliced"] = std::move(unspliced);
  *out = dataset.release();
}

}  // namespace

extern "C" {

pv_status pv_dataset_open_h5ad(const char* path, const char* spliced_layer,
                               const char* unspliced_layer, pv_dataset** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(out, "out");
    *out = nullptr;
    pv::check_not_null(path, "path");
    pv::io::ReadOptions options;
    if (spliced_layer) options.spliced_layer = spliced_layer;
    if (unspliced_layer) options.unspliced_layer = unspliced_layer;
    auto dataset = std::make_unique<pv_dataset>();
    *dataset->data = pv::io::read_h5ad(path, options);
    *out = dataset.release();
  });
}

pv_status pv_dataset_from_dense(int64_t n_cells, int64_t n_genes, const double* spliced,
                                const double* unspliced, pv_dataset** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(out, "out");
    *out = nullptr;
    check_shape(n_cells, n_genes);
    CountMatrix s = dense_counts(n_cells, n_genes, spliced, "spliced");
    CountMatrix u = dense_counts(n_cells, n_genes, unspliced, "unspliced");
    publish(std::move(s), std::move(u), out);
  });
}

pv_status pv_dataset_from_csr(int64_t n_cells, int64_t n_genes, const int64_t* s_indptr,
                              const int32_t* s_indices, const double* s_data,
                              const int64_t* u_indptr, const int32_t* u_indices,
                              const double* u_data, pv_dataset** out) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(out, "out");
    *out = nullptr;
    check_shape(n_cells, n_genes);
    CountMatrix s = csr_counts(n_cells, n_genes, s_indptr, s_indices, s_data, "s_");
    CountMatrix u = csr_counts(n_cells, n_genes, u_indptr, u_indices, u_data, "u_");
    publish(std::move(s), std::move(u), out);
  });
}

pv_status pv_dataset_shape(const pv_dataset* dataset, int64_t* n_cells, int64_t* n_genes) {
  return pv::guarded(__func__, [&] {
    pv::check_not_null(dataset, "dataset");
    const auto spliced = dataset->data->layers.find("spliced");
    pv::require(spliced != dataset->data->layers.end(), PV_ERR_INTERNAL,
                "dataset has no spliced layer");
    if (n_cells) *n_cells = spliced->second.rows;
    if (n_genes) *n_genes = spliced->second.cols;
  });
}

pv_status pv_dataset_set_obs(pv_dataset* dataset, const char* key, int64_t n, const double* values) {
  return pv::guarded(__func__, [&] {
    const int64_t cells = dataset_extent(dataset, true);
    check_annotation(key, values, n, 1, "n", cells, "n_cells");
    pv::io::Column column;
    column.name = key;
    column.numeric.assign(values, values + n);
    auto& columns = dataset->data->obs.columns;
    for (pv::io::Column& existing : columns)
      if (existing.name == key) {
        existing = std::move(column);
        return;
      }
    columns.push_back(std::move(column));
  });
}

pv_status pv_dataset_set_obsm(pv_dataset* dataset, const char* key, int64_t rows, int64_t cols, const double* values) {
  return pv::guarded(__func__, [&] {
    const int64_t cells = dataset_extent(dataset, true);
    check_annotation(key, values, rows, cols, "rows", cells, "n_cells");
    dataset->data->obsm[key] = pv::io::DenseMatrix<double>{rows, cols, std::vector<double>(values, values + rows * cols)};
  });
}

pv_status pv_dataset_set_varm(pv_dataset* dataset, const char* key, int64_t rows, int64_t cols, const double* values) {
  return pv::guarded(__func__, [&] {
    const int64_t genes = dataset_extent(dataset, false);
    check_annotation(key, values, rows, cols, "rows", genes, "n_genes");
    dataset->data->varm[key] = pv::io::DenseMatrix<double>{rows, cols, std::vector<double>(values, values + rows * cols)};
  });
}

void pv_dataset_free(pv_dataset* dataset) { delete dataset; }

}  // extern "C"

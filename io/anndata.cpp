#include "io/anndata.h"

#include "engine/error.h"

namespace pv::io {

int64_t CountMatrix::nnz() const {
  if (sparse) return static_cast<int64_t>(data.size());
  int64_t count = 0;
  for (float v : dense) count += (v != 0.0f);
  return count;
}

double CountMatrix::row_sum(int64_t row) const {
  require(row >= 0 && row < rows, PV_ERR_INVALID_ARGUMENT,
          "row_sum: row " + std::to_string(row) + " is out of range for " + std::to_string(rows) +
              " rows");
  double sum = 0;
  if (sparse) {
    for (int64_t k = indptr[row]; k < indptr[row + 1]; ++k) sum += data[k];
  } else {
    const float* values = dense.data() + row * cols;
    for (int64_t j = 0; j < cols; ++j) sum += values[j];
  }
  return sum;
}

const Column* DataFrame::find(const std::string& name) const {
  for (const Column& column : columns) {
    if (column.name == name) return &column;
  }
  return nullptr;
}

std::vector<double> library_sizes(const AnnData& data, bool unspliced) {
  const char* layer_name = unspliced ? "unspliced" : "spliced";
  const char* column_name = unspliced ? "u_lib_size_raw" : "s_lib_size_raw";
  const auto layer = data.layers.find(layer_name);
  const int64_t n_cells = layer != data.layers.end() ? layer->second.rows
                                                     : static_cast<int64_t>(data.obs.index.size());
  if (const Column* column = data.obs.find(column_name)) {
    require(column->kind == Column::Kind::kNumeric, PV_ERR_INVALID_ARGUMENT,
            std::string("library_sizes: obs column '") + column_name + "' is not numeric");
    require(static_cast<int64_t>(column->numeric.size()) == n_cells, PV_ERR_INVALID_ARGUMENT,
            std::string("library_sizes: obs column '") + column_name + "' has " +
                std::to_string(column->numeric.size()) + " values for " + std::to_string(n_cells) +
                " cells");
    return column->numeric;
  }
  require(layer != data.layers.end(), PV_ERR_INVALID_ARGUMENT,
          std::string("library_sizes: no obs column '") + column_name + "' and no layer '" +
              layer_name + "' to sum");
  std::vector<double> sizes(static_cast<size_t>(n_cells));
  for (int64_t i = 0; i < n_cells; ++i) sizes[i] = layer->second.row_sum(i);
  return sizes;
}

}  // namespace pv::io

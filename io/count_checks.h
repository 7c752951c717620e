// Validation of count matrices, shared by the h5ad reader and the C ABI's pv_dataset_from_*:
// the same input is refused with the same message whether it came from a file or from arrays.
// Every failure is PV_ERR_INVALID_ARGUMENT and names the array, the entry and the value.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "engine/error.h"

namespace pv::io {

// How to name the arrays in messages: "pancreas.h5ad: layers/spliced/indptr" or "s_indptr".
struct CsrNames {
  std::string indptr, indices, data;
};

// Where entry k of a values array sits, so that a message can say "(cell 12, gene 40)".
// Compressed layouts give indptr/indices (of the compressed axis, already checked); dense
// layouts leave them null and are row-major.
struct CountLayout {
  int64_t rows = 0, cols = 0;
  const int64_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  bool column_major = false;  // CSC: indptr runs over columns and indices are rows
};

namespace detail {
[[noreturn]] void fail_indptr_size(const CsrNames& names, int64_t size, int64_t expected);
[[noreturn]] void fail_indptr_start(const CsrNames& names, int64_t first);
[[noreturn]] void fail_indptr_decreasing(const CsrNames& names, int64_t at, int64_t value,
                                         int64_t previous);
[[noreturn]] void fail_indptr_end(const CsrNames& names, int64_t last, int64_t indices_size);
[[noreturn]] void fail_data_size(const CsrNames& names, int64_t data_size, int64_t indices_size);
[[noreturn]] void fail_index_range(const CsrNames& names, int64_t at, int64_t index, int64_t extent,
                                   const char* minor_axis, int64_t major, const char* major_axis);
[[noreturn]] void fail_count_value(const std::string& name, int64_t at, double value,
                                   const char* problem, const CountLayout& layout,
                                   const std::string& how_to_allow);
}  // namespace detail

// The matrix has at least one cell and one gene.
void check_count_shape(int64_t rows, int64_t cols, const std::string& what);

// A compressed sparse matrix with `major` compressed rows (CSR) or columns (CSC): indptr has
// major + 1 entries, starts at 0, never decreases and ends at the number of stored entries;
// data and indices have that many entries; every index lies in [0, minor).
template <class Index>
void check_compressed_structure(int64_t major, int64_t minor, const int64_t* indptr,
                                int64_t indptr_size, const Index* indices, int64_t indices_size,
                                int64_t data_size, const CsrNames& names,
                                bool column_major = false) {
  if (indptr_size != major + 1) detail::fail_indptr_size(names, indptr_size, major + 1);
  if (indptr[0] != 0) detail::fail_indptr_start(names, indptr[0]);
  for (int64_t i = 1; i <= major; ++i) {
    if (indptr[i] < indptr[i - 1]) detail::fail_indptr_decreasing(names, i, indptr[i], indptr[i - 1]);
  }
  if (indptr[major] != indices_size) detail::fail_indptr_end(names, indptr[major], indices_size);
  if (data_size != indices_size) detail::fail_data_size(names, data_size, indices_size);
  const char* major_axis = column_major ? "column" : "row";
  const char* minor_axis = column_major ? "rows" : "columns";
  for (int64_t m = 0; m < major; ++m) {
    for (int64_t k = indptr[m]; k < indptr[m + 1]; ++k) {
      const int64_t index = static_cast<int64_t>(indices[k]);
      if (index < 0 || index >= minor) {
        detail::fail_index_range(names, k, index, minor, minor_axis, m, major_axis);
      }
    }
  }
}

// Raw counts: every value finite and >= 0, and a whole number unless allow_non_integer.
// `how_to_allow` ends the non-integer message, telling the caller how to accept such values.
template <class T>
void check_count_values(const T* values, int64_t n, const std::string& name,
                        bool allow_non_integer, const std::string& how_to_allow,
                        const CountLayout& layout) {
  for (int64_t k = 0; k < n; ++k) {
    const double v = static_cast<double>(values[k]);
    if (!std::isfinite(v)) {
      detail::fail_count_value(name, k, v, "must be finite", layout, how_to_allow);
    }
    if (v < 0) detail::fail_count_value(name, k, v, "counts must be >= 0", layout, how_to_allow);
    if (!allow_non_integer && v != std::floor(v)) {
      detail::fail_count_value(name, k, v, nullptr, layout, how_to_allow);
    }
  }
}

}  // namespace pv::io

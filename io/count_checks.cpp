#include "io/count_checks.h"

#include <algorithm>
#include <sstream>

namespace pv::io {

namespace {

std::string format_value(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

// "(cell 3, gene 17)" for entry k, or "" when the layout does not say.
std::string locate(const CountLayout& layout, int64_t k) {
  int64_t row = -1, col = -1;
  if (layout.indptr && layout.indices) {
    const int64_t major = layout.column_major ? layout.cols : layout.rows;
    // The compressed axis entry m holding k: the last m with indptr[m] <= k.
    const int64_t* end = layout.indptr + major + 1;
    const int64_t m = std::upper_bound(layout.indptr, end, k) - layout.indptr - 1;
    if (m < 0 || m >= major) return "";
    (layout.column_major ? col : row) = m;
    (layout.column_major ? row : col) = layout.indices[k];
  } else if (layout.cols > 0) {
    row = k / layout.cols;
    col = k % layout.cols;
  } else {
    return "";
  }
  return " (cell " + std::to_string(row) + ", gene " + std::to_string(col) + ")";
}

}  // namespace

void check_count_shape(int64_t rows, int64_t cols, const std::string& what) {
  if (rows <= 0 || cols <= 0) {
    fail(PV_ERR_INVALID_ARGUMENT, what + " has " + std::to_string(rows) + " cells x " +
                                      std::to_string(cols) +
                                      " genes (needs at least one cell and one gene)");
  }
}

namespace detail {

void fail_indptr_size(const CsrNames& names, int64_t size, int64_t expected) {
  fail(PV_ERR_INVALID_ARGUMENT, names.indptr + " has " + std::to_string(size) +
                                    " entries (expected " + std::to_string(expected) +
                                    ": one per row or column, plus one)");
}

void fail_indptr_start(const CsrNames& names, int64_t first) {
  fail(PV_ERR_INVALID_ARGUMENT,
       names.indptr + "[0] is " + std::to_string(first) + " (indptr must start at 0)");
}

void fail_indptr_decreasing(const CsrNames& names, int64_t at, int64_t value, int64_t previous) {
  fail(PV_ERR_INVALID_ARGUMENT, names.indptr + "[" + std::to_string(at) + "] = " +
                                    std::to_string(value) + " is less than " + names.indptr + "[" +
                                    std::to_string(at - 1) + "] = " + std::to_string(previous) +
                                    " (indptr must be non-decreasing)");
}

void fail_indptr_end(const CsrNames& names, int64_t last, int64_t indices_size) {
  fail(PV_ERR_INVALID_ARGUMENT, names.indptr + " ends at " + std::to_string(last) + " but " +
                                    names.indices + " has " + std::to_string(indices_size) +
                                    " entries (indptr must end at nnz)");
}

void fail_data_size(const CsrNames& names, int64_t data_size, int64_t indices_size) {
  fail(PV_ERR_INVALID_ARGUMENT, names.data + " has " + std::to_string(data_size) + " entries but " +
                                    names.indices + " has " + std::to_string(indices_size) +
                                    " (they must match)");
}

void fail_index_range(const CsrNames& names, int64_t at, int64_t index, int64_t extent,
                      const char* minor_axis, int64_t major, const char* major_axis) {
  fail(PV_ERR_INVALID_ARGUMENT, names.indices + "[" + std::to_string(at) + "] = " +
                                    std::to_string(index) + " (in " + major_axis + " " +
                                    std::to_string(major) + ") is out of range for " +
                                    std::to_string(extent) + " " + minor_axis);
}

void fail_count_value(const std::string& name, int64_t at, double value, const char* problem,
                      const CountLayout& layout, const std::string& how_to_allow) {
  std::string message = name + "[" + std::to_string(at) + "] = " + format_value(value) +
                        locate(layout, at);
  if (problem) {
    message += ": " + std::string(problem);
  } else {
    message += ": not a whole number (raw integer counts expected";
    if (!how_to_allow.empty()) message += "; " + how_to_allow;
    message += ")";
  }
  fail(PV_ERR_INVALID_ARGUMENT, message);
}

}  // namespace detail
}  // namespace pv::io

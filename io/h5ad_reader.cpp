#include "io/h5ad_reader.h"

#include <climits>
#include <cmath>
#include <cstring>
#include <sstream>

#include "io/count_checks.h"
#include "io/h5ad_files.h"
#include "io/hdf5_util.h"

namespace pv::io {

namespace {

using h5::Handle;
using h5::NodeKind;
using h5::Readable;

// Deeper uns nesting than this is treated as a cycle of hard links.
constexpr int kMaxUnsDepth = 32;

// Names an element of the file being read, for messages: "data/pancreas.h5ad: layers/spliced".
struct Where {
  std::string file;
  std::string operator()(const std::string& element) const { return file + ": " + element; }
};

std::string join(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string encoding_of(hid_t object, const Where& where, const std::string& element) {
  return h5::string_attribute(object, "encoding-type", where(element)).value_or("");
}

Handle open_group(hid_t loc, const std::string& path, const Where& where) {
  return h5::check(H5Gopen2(loc, path.c_str(), H5P_DEFAULT), PV_ERR_FORMAT,
                   "cannot open group " + where(path));
}

Handle open_dataset(hid_t loc, const std::string& path, const Where& where) {
  return h5::check(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), PV_ERR_FORMAT,
                   "cannot open dataset " + where(path));
}

std::string format_number(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

// Strings, or numbers printed as strings (numeric categories, numeric indices).
std::vector<std::string> read_labels(const Readable& source) {
  if (h5::type_info(source).type_class == H5T_STRING) return h5::read_strings(source);
  const std::vector<double> numbers = h5::read_numeric<double>(source);
  std::vector<std::string> labels;
  labels.reserve(numbers.size());
  for (double v : numbers) labels.push_back(format_number(v));
  return labels;
}

// ---- Dataframes ----------------------------------------------------------------------------

void require_length(const Readable& source, int64_t expected) {
  const std::vector<int64_t> dims = h5::shape(source);
  if (dims.size() != 1 || dims[0] != expected) {
    std::string got = "a scalar";
    if (!dims.empty()) {
      got = "shape (";
      for (size_t i = 0; i < dims.size(); ++i) got += (i ? ", " : "") + std::to_string(dims[i]);
      got += ")";
    }
    fail(PV_ERR_FORMAT, source.what + " has " + got + " (expected " + std::to_string(expected) +
                            " values, one per row of its dataframe)");
  }
}

void check_codes(const std::vector<int32_t>& codes, size_t n_categories, const std::string& what) {
  for (size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] < -1 || codes[i] >= static_cast<int64_t>(n_categories)) {
      fail(PV_ERR_FORMAT, what + "[" + std::to_string(i) + "] = " + std::to_string(codes[i]) +
                              " is not a valid code for " + std::to_string(n_categories) +
                              " categories");
    }
  }
}

bool read_ordered(hid_t object, const Where& where, const std::string& element) {
  if (!h5::has_attribute(object, "ordered")) return false;
  const Handle attribute = h5::check(H5Aopen(object, "ordered", H5P_DEFAULT), PV_ERR_FORMAT,
                                     "cannot open " + where(element) + " attribute 'ordered'");
  const std::vector<int64_t> value =
      h5::read_numeric<int64_t>({attribute, true, where(element) + " attribute 'ordered'"});
  return !value.empty() && value[0] != 0;
}

// The anndata 0.7 categorical: integer codes whose attribute "categories" is an object
// reference to the categories dataset (obs/__categories/<column>).
bool is_legacy_categorical(hid_t dataset) {
  if (!h5::has_attribute(dataset, "categories")) return false;
  const Handle attribute(H5Aopen(dataset, "categories", H5P_DEFAULT));
  if (!attribute.valid()) return false;
  const Handle type(H5Aget_type(attribute));
  return type.valid() && H5Tget_class(type) == H5T_REFERENCE;
}

Handle open_legacy_categories(hid_t dataset, const std::string& what) {
  const Handle attribute = h5::check(H5Aopen(dataset, "categories", H5P_DEFAULT), PV_ERR_FORMAT,
                                     "cannot open " + what + " attribute 'categories'");
  hobj_ref_t reference;
  h5::check(H5Aread(attribute, H5T_STD_REF_OBJ, &reference), PV_ERR_FORMAT,
            "cannot read " + what + " attribute 'categories' (an object reference)");
  return h5::check(H5Rdereference2(dataset, H5P_DEFAULT, H5R_OBJECT, &reference), PV_ERR_FORMAT,
                   what + ": its 'categories' reference points nowhere");
}

// One column; false when its encoding is one this reader does not represent.
bool read_column(hid_t frame, const std::string& frame_name, const std::string& name, int64_t rows,
                 const Where& where, Column& column) {
  const std::string element = frame_name + "/" + name;
  column.name = name;
  const NodeKind kind = h5::node_kind(frame, name);
  if (kind == NodeKind::kDataset) {
    const Handle dataset = open_dataset(frame, name, where);
    const Readable source{dataset, false, where(element)};
    require_length(source, rows);
    const h5::TypeInfo info = h5::type_info(source);
    if (info.type_class == H5T_STRING) {
      column.kind = Column::Kind::kString;
      column.strings = h5::read_strings(source);
      return true;
    }
    if (!info.is_numeric()) return false;
    if (is_legacy_categorical(dataset)) {
      column.kind = Column::Kind::kCategorical;
      column.codes = h5::read_numeric<int32_t>(source);
      const Handle categories = open_legacy_categories(dataset, where(element));
      const std::string categories_what = where(element) + " categories";
      column.categories = read_labels({categories, false, categories_what});
      column.ordered = read_ordered(categories, where, element + " categories");
      check_codes(column.codes, column.categories.size(), where(element));
      return true;
    }
    column.kind = Column::Kind::kNumeric;
    column.is_integer = info.type_class != H5T_FLOAT;
    column.numeric = h5::read_numeric<double>(source);
    return true;
  }
  if (kind != NodeKind::kGroup) return false;
  const Handle group = open_group(frame, name, where);
  const std::string encoding = encoding_of(group, where, element);
  if (encoding == "categorical") {
    for (const char* part : {"codes", "categories"}) {
      if (h5::node_kind(group, part) != NodeKind::kDataset) {
        fail(PV_ERR_FORMAT, where(element) + " is categorical but has no '" + part + "' dataset");
      }
    }
    const Handle codes = open_dataset(group, "codes", where);
    const Readable codes_source{codes, false, where(element + "/codes")};
    require_length(codes_source, rows);
    if (h5::type_info(codes_source).type_class != H5T_INTEGER) {
      fail(PV_ERR_FORMAT, codes_source.what + " holds " + h5::type_info(codes_source).name() +
                              " values (expected integer codes)");
    }
    const Handle categories = open_dataset(group, "categories", where);
    column.kind = Column::Kind::kCategorical;
    column.codes = h5::read_numeric<int32_t>(codes_source);
    column.categories = read_labels({categories, false, where(element + "/categories")});
    column.ordered = read_ordered(group, where, element);
    check_codes(column.codes, column.categories.size(), codes_source.what);
    return true;
  }
  const bool nullable_number = encoding == "nullable-integer" || encoding == "nullable-boolean";
  if (nullable_number || encoding == "nullable-string-array") {
    for (const char* part : {"values", "mask"}) {
      if (h5::node_kind(group, part) != NodeKind::kDataset) {
        fail(PV_ERR_FORMAT, where(element) + " is " + encoding + " but has no '" + part + "' dataset");
      }
    }
    const Handle values = open_dataset(group, "values", where);
    const Handle mask_dataset = open_dataset(group, "mask", where);
    const Readable values_source{values, false, where(element + "/values")};
    const Readable mask_source{mask_dataset, false, where(element + "/mask")};
    require_length(values_source, rows);
    require_length(mask_source, rows);
    const std::vector<int64_t> mask = h5::read_numeric<int64_t>(mask_source);
    if (!nullable_number) {
      column.kind = Column::Kind::kString;
      column.strings = h5::read_strings(values_source);
      for (int64_t i = 0; i < rows; ++i) {
        if (mask[i]) column.strings[i].clear();
      }
      return true;
    }
    column.kind = Column::Kind::kNumeric;
    column.numeric = h5::read_numeric<double>(values_source);
    bool any_missing = false;
    for (int64_t i = 0; i < rows; ++i) {
      if (mask[i]) {
        column.numeric[i] = std::nan("");
        any_missing = true;
      }
    }
    // Missing values need NaN, which an integer column cannot hold.
    column.is_integer = !any_missing;
    return true;
  }
  return false;
}

// A dataframe's column names: its column-order attribute, or (older writers) every child but the
// index and the legacy __categories group.
std::vector<std::string> frame_column_names(hid_t frame, const std::string& frame_name, const std::string& index_name,
                                            const Where& where) {
  if (auto order = h5::string_array_attribute(frame, "column-order", where(frame_name))) return *order;
  std::vector<std::string> names;
  for (const std::string& child : h5::child_names(frame))
    if (child != index_name && child != "__categories") names.push_back(child);
  return names;
}

DataFrame read_dataframe(hid_t file, const std::string& frame_name, const Where& where,
                         std::vector<std::string>& skipped) {
  const NodeKind kind = h5::node_kind(file, frame_name);
  if (kind == NodeKind::kDataset) {
    fail(PV_ERR_FORMAT, where(frame_name) + " is a dataset (AnnData before 0.7 stored dataframes "
                                            "as compound datasets); re-save it with anndata >= 0.8");
  }
  const Handle frame = open_group(file, frame_name, where);
  std::string index_name = h5::string_attribute(frame, "_index", where(frame_name)).value_or("");
  if (index_name.empty()) {
    for (const char* candidate : {"_index", "index"}) {
      if (h5::node_kind(frame, candidate) == NodeKind::kDataset) {
        index_name = candidate;
        break;
      }
    }
  }
  if (index_name.empty() || h5::node_kind(frame, index_name) != NodeKind::kDataset) {
    fail(PV_ERR_FORMAT, where(frame_name) + " has no index dataset (looked for the '_index' "
                                            "attribute, '_index' and 'index')");
  }
  DataFrame result;
  {
    const Handle index = open_dataset(frame, index_name, where);
    const Readable source{index, false, where(frame_name + "/" + index_name)};
    if (h5::shape(source).size() != 1) fail(PV_ERR_FORMAT, source.what + " is not 1-D");
    result.index = read_labels(source);
  }
  const int64_t rows = static_cast<int64_t>(result.index.size());

  const std::vector<std::string> names = frame_column_names(frame, frame_name, index_name, where);
  for (const std::string& name : names) {
    if (h5::node_kind(frame, name) == NodeKind::kMissing) {
      fail(PV_ERR_FORMAT, where(frame_name) + ": column '" + name +
                              "' is listed in column-order but absent");
    }
    Column column;
    if (read_column(frame, frame_name, name, rows, where, column)) {
      result.columns.push_back(std::move(column));
    } else {
      skipped.push_back(frame_name + "/" + name + " (unsupported column encoding)");
    }
  }
  return result;
}

// ---- Matrices ------------------------------------------------------------------------------

enum class Layout { kDense, kCsr, kCsc };

// What a matrix element is, from its metadata.
struct MatrixHeader {
  std::string element;  // path in the file
  Layout layout = Layout::kDense;
  int64_t rows = 0, cols = 0;
  h5::TypeInfo values_type;
  int64_t stored = -1;  // entries of a sparse matrix
};

std::string shape_text(int64_t rows, int64_t cols) {
  return std::to_string(rows) + " x " + std::to_string(cols);
}

MatrixHeader probe_matrix(hid_t file, const std::string& element, const Where& where) {
  MatrixHeader header;
  header.element = element;
  const NodeKind kind = h5::node_kind(file, element);
  if (kind == NodeKind::kDataset) {
    const Handle dataset = open_dataset(file, element, where);
    const Readable source{dataset, false, where(element)};
    const std::vector<int64_t> dims = h5::shape(source);
    if (dims.size() != 2) {
      fail(PV_ERR_FORMAT, where(element) + " is a " + std::to_string(dims.size()) +
                              "-D array (expected a 2-D cells x genes matrix)");
    }
    header.values_type = h5::type_info(source);
    if (!header.values_type.is_numeric()) {
      fail(PV_ERR_FORMAT, where(element) + " holds " + header.values_type.name() +
                              " values (expected numbers)");
    }
    header.rows = dims[0];
    header.cols = dims[1];
    return header;
  }
  if (kind != NodeKind::kGroup) {
    fail(PV_ERR_FORMAT, where(element) + " is neither a dataset nor a group");
  }
  const Handle group = open_group(file, element, where);
  std::string encoding = encoding_of(group, where, element);
  std::optional<std::vector<int64_t>> dims = h5::int_array_attribute(group, "shape", where(element));
  if (encoding.empty()) {
    // anndata < 0.7 marked sparse groups with h5sparse_format / h5sparse_shape.
    const std::string legacy = h5::string_attribute(group, "h5sparse_format", where(element)).value_or("");
    if (legacy == "csr" || legacy == "csc") encoding = legacy + "_matrix";
    if (!dims) dims = h5::int_array_attribute(group, "h5sparse_shape", where(element));
  }
  if (encoding != "csr_matrix" && encoding != "csc_matrix") {
    fail(PV_ERR_FORMAT, where(element) + " has encoding '" + encoding +
                            "' (expected a dense array, csr_matrix or csc_matrix)");
  }
  header.layout = encoding == "csr_matrix" ? Layout::kCsr : Layout::kCsc;
  if (!dims || dims->size() != 2 || (*dims)[0] < 0 || (*dims)[1] < 0) {
    fail(PV_ERR_FORMAT, where(element) + " has no valid 'shape' attribute (2 non-negative integers)");
  }
  header.rows = (*dims)[0];
  header.cols = (*dims)[1];
  for (const char* part : {"data", "indices", "indptr"}) {
    if (h5::node_kind(group, part) != NodeKind::kDataset) {
      fail(PV_ERR_FORMAT, where(element) + " is a " + encoding + " without a '" + part + "' dataset");
    }
    const Handle dataset = open_dataset(group, part, where);
    const Readable source{dataset, false, where(element + "/" + part)};
    if (h5::shape(source).size() != 1) fail(PV_ERR_FORMAT, source.what + " is not 1-D");
    const h5::TypeInfo info = h5::type_info(source);
    if (std::strcmp(part, "data") == 0) {
      if (!info.is_numeric()) {
        fail(PV_ERR_FORMAT, source.what + " holds " + info.name() + " values (expected numbers)");
      }
      header.values_type = info;
      header.stored = h5::element_count(source);
    } else if (info.type_class != H5T_INTEGER) {
      fail(PV_ERR_FORMAT, source.what + " holds " + info.name() + " values (expected integers)");
    }
  }
  return header;
}

// How the values of a matrix are checked after its structure.
struct ValueChecks {
  bool counts = true;  // finite, >= 0, whole unless allow_non_integer
  bool allow_non_integer = false;
};

const char* const kHowToAllow = "set ReadOptions::allow_non_integer to accept non-integer values";

// Reads values as float, checking them at the precision they were stored in: float64 data is
// checked before narrowing, so 2.0000001 is not mistaken for a whole count.
std::vector<float> read_values(const Readable& source, const h5::TypeInfo& type,
                               const ValueChecks& checks, const CountLayout& layout) {
  if (type.type_class == H5T_FLOAT && type.size > 4) {
    const std::vector<double> wide = h5::read_numeric<double>(source);
    if (checks.counts) {
      check_count_values(wide.data(), static_cast<int64_t>(wide.size()), source.what,
                         checks.allow_non_integer, kHowToAllow, layout);
    }
    return std::vector<float>(wide.begin(), wide.end());
  }
  std::vector<float> values = h5::read_numeric<float>(source);
  if (checks.counts) {
    check_count_values(values.data(), static_cast<int64_t>(values.size()), source.what,
                       checks.allow_non_integer, kHowToAllow, layout);
  }
  return values;
}

// Indices as int32 (HDF5 widens u8/u16/i8/i16/i32 on the fly); wider types are read as int64,
// checked against the extent, then narrowed.
std::vector<int32_t> read_indices(const Readable& source, int64_t major, int64_t minor,
                                  const std::vector<int64_t>& indptr, int64_t data_size,
                                  const CsrNames& names, bool column_major) {
  const h5::TypeInfo type = h5::type_info(source);
  const int64_t size = h5::element_count(source);
  const bool fits = type.is_signed ? type.size <= 4 : type.size <= 2;
  if (fits) {
    const std::vector<int32_t> indices = h5::read_numeric<int32_t>(source);
    check_compressed_structure(major, minor, indptr.data(), static_cast<int64_t>(indptr.size()),
                               indices.data(), size, data_size, names, column_major);
    return indices;
  }
  const std::vector<int64_t> wide = h5::read_numeric<int64_t>(source);
  check_compressed_structure(major, minor, indptr.data(), static_cast<int64_t>(indptr.size()),
                             wide.data(), size, data_size, names, column_major);
  return std::vector<int32_t>(wide.begin(), wide.end());
}

// CSC -> CSR by counting entries per row and scattering; column indices come out sorted.
void csc_to_csr(CountMatrix& matrix, const std::vector<int64_t>& col_ptr,
                const std::vector<int32_t>& row_index, const std::vector<float>& values) {
  const int64_t nnz = static_cast<int64_t>(values.size());
  matrix.indptr.assign(static_cast<size_t>(matrix.rows + 1), 0);
  for (int64_t k = 0; k < nnz; ++k) ++matrix.indptr[row_index[k] + 1];
  for (int64_t r = 0; r < matrix.rows; ++r) matrix.indptr[r + 1] += matrix.indptr[r];
  std::vector<int64_t> next(matrix.indptr.begin(), matrix.indptr.end() - 1);
  matrix.indices.resize(static_cast<size_t>(nnz));
  matrix.data.resize(static_cast<size_t>(nnz));
  for (int64_t c = 0; c < matrix.cols; ++c) {
    for (int64_t k = col_ptr[c]; k < col_ptr[c + 1]; ++k) {
      const int64_t at = next[row_index[k]]++;
      matrix.indices[at] = static_cast<int32_t>(c);
      matrix.data[at] = values[k];
    }
  }
}

CountMatrix load_matrix(hid_t file, const MatrixHeader& header, const ValueChecks& checks,
                        const Where& where) {
  CountMatrix matrix;
  matrix.rows = header.rows;
  matrix.cols = header.cols;
  if (header.layout == Layout::kDense) {
    const Handle dataset = open_dataset(file, header.element, where);
    CountLayout layout;
    layout.rows = header.rows;
    layout.cols = header.cols;
    matrix.dense = read_values({dataset, false, where(header.element)}, header.values_type, checks, layout);
    return matrix;
  }
  const bool column_major = header.layout == Layout::kCsc;
  const int64_t major = column_major ? header.cols : header.rows;
  const int64_t minor = column_major ? header.rows : header.cols;
  if (minor > INT32_MAX) {
    fail(PV_ERR_UNSUPPORTED, where(header.element) + ": " + std::to_string(minor) +
                                 " rows or columns exceed the 32-bit index range");
  }
  const Handle group = open_group(file, header.element, where);
  const Handle indptr_dataset = open_dataset(group, "indptr", where);
  const Handle indices_dataset = open_dataset(group, "indices", where);
  const Handle data_dataset = open_dataset(group, "data", where);
  const CsrNames names{where(header.element + "/indptr"), where(header.element + "/indices"),
                       where(header.element + "/data")};
  std::vector<int64_t> indptr = h5::read_numeric<int64_t>({indptr_dataset, false, names.indptr});
  if (indptr.empty()) {
    fail(PV_ERR_INVALID_ARGUMENT, names.indptr + " is empty (expected " +
                                      std::to_string(major + 1) + " entries)");
  }
  std::vector<int32_t> indices = read_indices({indices_dataset, false, names.indices}, major, minor,
                                              indptr, header.stored, names, column_major);
  CountLayout layout;
  layout.rows = header.rows;
  layout.cols = header.cols;
  layout.indptr = indptr.data();
  layout.indices = indices.data();
  layout.column_major = column_major;
  std::vector<float> values =
      read_values({data_dataset, false, names.data}, header.values_type, checks, layout);
  matrix.sparse = true;
  if (column_major) {
    csc_to_csr(matrix, indptr, indices, values);
  } else {
    matrix.indptr = std::move(indptr);
    matrix.indices = std::move(indices);
    matrix.data = std::move(values);
  }
  return matrix;
}

// ---- obsm, varm and uns --------------------------------------------------------------------------

// Dense numeric 2-D arrays of obsm or varm (one row per cell / gene); anything else is skipped
// with a note.
void read_aligned_matrices(hid_t file, const std::string& group_name, const char* axis_name, int64_t axis_length,
                           const Where& where, std::map<std::string, DenseMatrix<double>>& out,
                           std::vector<std::string>& skipped) {
  if (h5::node_kind(file, group_name) != NodeKind::kGroup) return;
  const Handle group = open_group(file, group_name, where);
  for (const std::string& name : h5::child_names(group)) {
    const std::string element = group_name + "/" + name;
    if (h5::node_kind(group, name) != NodeKind::kDataset) {
      skipped.push_back(element + " (not a dense array)");
      continue;
    }
    const Handle dataset = open_dataset(group, name, where);
    const Readable source{dataset, false, where(element)};
    const std::vector<int64_t> dims = h5::shape(source);
    if (dims.size() != 2 || !h5::type_info(source).is_numeric()) {
      skipped.push_back(element + " (not a 2-D numeric array)");
      continue;
    }
    if (dims[0] != axis_length) {
      fail(PV_ERR_FORMAT, where(element) + " has " + std::to_string(dims[0]) + " rows but " + axis_name + " has " +
                              std::to_string(axis_length));
    }
    DenseMatrix<double> matrix;
    matrix.rows = dims[0];
    matrix.cols = dims[1];
    matrix.values = h5::read_numeric<double>(source);
    out[name] = std::move(matrix);
  }
}

UnsValue read_uns_group(hid_t group, const std::string& path, int depth, const Where& where,
                        std::vector<std::string>& skipped) {
  UnsValue dict;
  dict.kind = UnsValue::Kind::kDict;
  for (const std::string& name : h5::child_names(group)) {
    const std::string element = path + "/" + name;
    const NodeKind kind = h5::node_kind(group, name);
    if (kind == NodeKind::kGroup) {
      const Handle child = open_group(group, name, where);
      const std::string encoding = encoding_of(child, where, element);
      if ((encoding.empty() || encoding == "dict") && depth < kMaxUnsDepth) {
        dict.dict[name] = read_uns_group(child, element, depth + 1, where, skipped);
      } else {
        skipped.push_back(element + " (" + (encoding.empty() ? "too deep" : encoding) + ")");
      }
      continue;
    }
    if (kind != NodeKind::kDataset) continue;
    const Handle dataset = open_dataset(group, name, where);
    const Readable source{dataset, false, where(element)};
    const std::vector<int64_t> dims = h5::shape(source);
    const h5::TypeInfo info = h5::type_info(source);
    UnsValue value;
    if (h5::element_count(source) == 0 && dims.empty()) {
      skipped.push_back(element + " (empty)");  // h5py.Empty: a null dataspace
      continue;
    }
    if (dims.empty() && info.type_class == H5T_STRING) {
      value.kind = UnsValue::Kind::kString;
      value.string = h5::read_strings(source).at(0);
    } else if (dims.empty() && info.is_numeric()) {
      if (info.type_class == H5T_FLOAT) {
        value.kind = UnsValue::Kind::kNumber;
        value.number = h5::read_numeric<double>(source).at(0);
      } else {
        value.kind = UnsValue::Kind::kInteger;
        value.integer = h5::read_numeric<int64_t>(source).at(0);
      }
    } else if (dims.size() == 1 && info.type_class == H5T_STRING) {
      value.kind = UnsValue::Kind::kStringArray;
      value.strings = h5::read_strings(source);
    } else if (dims.size() == 1 && info.is_numeric()) {
      value.kind = UnsValue::Kind::kNumberArray;
      value.numbers = h5::read_numeric<double>(source);
    } else {
      skipped.push_back(element + " (" + std::to_string(dims.size()) + "-D " + info.name() + ")");
      continue;
    }
    dict.dict[name] = std::move(value);
  }
  return dict;
}

// ---- Count layers --------------------------------------------------------------------------

std::vector<std::string> layer_names(hid_t file, const Where& where) {
  if (h5::node_kind(file, "layers") != NodeKind::kGroup) return {};
  const Handle group = open_group(file, "layers", where);
  return h5::child_names(group);
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  for (const std::string& n : names) {
    if (n == name) return true;
  }
  return false;
}

std::string resolve_layer(const std::string& requested, const char* role,
                          const std::vector<std::string>& available, const Where& where) {
  std::string name = requested;
  if (name == "auto") {
    const bool raw = contains(available, "raw_spliced") && contains(available, "raw_unspliced");
    name = raw ? std::string("raw_") + role : std::string(role);
  }
  if (!contains(available, name)) {
    fail(PV_ERR_INVALID_ARGUMENT,
         where("layers/" + name) + ": no such layer (the " + role + " counts" +
             (requested == "auto" ? ", looked up automatically" : "") +
             "); layers in the file: " + join(available));
  }
  return name;
}

}  // namespace

AnnData read_h5ad(const std::string& path, const ReadOptions& options) {
  h5::Session session;
  const Handle file = open_anndata_readonly(path);
  const Where where{path};
  AnnData result;
  result.source.file = path;

  const std::vector<std::string> available = layer_names(file, where);
  const std::string spliced_name = resolve_layer(options.spliced_layer, "spliced", available, where);
  const std::string unspliced_name =
      resolve_layer(options.unspliced_layer, "unspliced", available, where);
  result.source.spliced_layer = spliced_name;
  result.source.unspliced_layer = unspliced_name;

  result.obs = read_dataframe(file, "obs", where, result.source.skipped);
  result.var = read_dataframe(file, "var", where, result.source.skipped);
  const int64_t n_obs = static_cast<int64_t>(result.obs.index.size());
  const int64_t n_vars = static_cast<int64_t>(result.var.index.size());

  // Shapes first, from metadata, so that a mismatch is reported before any data is read.
  const MatrixHeader spliced = probe_matrix(file, "layers/" + spliced_name, where);
  const MatrixHeader unspliced = probe_matrix(file, "layers/" + unspliced_name, where);
  if (spliced.rows != unspliced.rows || spliced.cols != unspliced.cols) {
    fail(PV_ERR_INVALID_ARGUMENT, path + ": spliced layer '" + spliced_name + "' is " +
                                      shape_text(spliced.rows, spliced.cols) +
                                      " but unspliced layer '" + unspliced_name + "' is " +
                                      shape_text(unspliced.rows, unspliced.cols) +
                                      " (they must have the same shape)");
  }
  const auto check_against_frames = [&](const MatrixHeader& header) {
    if (header.rows != n_obs || header.cols != n_vars) {
      fail(PV_ERR_FORMAT, where(header.element) + " is " + shape_text(header.rows, header.cols) +
                              " but obs has " + std::to_string(n_obs) + " rows and var has " +
                              std::to_string(n_vars) + " (shape must be n_obs x n_vars)");
    }
  };
  check_against_frames(spliced);
  check_count_shape(spliced.rows, spliced.cols, where("layers/" + spliced_name));

  const ValueChecks count_checks{true, options.allow_non_integer};
  result.layers["spliced"] = load_matrix(file, spliced, count_checks, where);
  result.layers["unspliced"] = load_matrix(file, unspliced, count_checks, where);

  if (options.read_X && h5::node_kind(file, "X") != NodeKind::kMissing) {
    const MatrixHeader x = probe_matrix(file, "X", where);
    check_against_frames(x);
    result.X = std::make_unique<CountMatrix>(load_matrix(file, x, ValueChecks{false, true}, where));
  }
  read_aligned_matrices(file, "obsm", "obs", n_obs, where, result.obsm, result.source.skipped);
  read_aligned_matrices(file, "varm", "var", n_vars, where, result.varm, result.source.skipped);
  if (h5::node_kind(file, "uns") == NodeKind::kGroup) {
    const Handle uns = open_group(file, "uns", where);
    result.uns = read_uns_group(uns, "uns", 0, where, result.source.skipped);
  }
  return result;
}

// ---- Summary -------------------------------------------------------------------------------

namespace {

ElementSummary summarize(hid_t loc, const std::string& name, const std::string& element,
                         const Where& where) {
  ElementSummary summary;
  summary.name = name;
  const NodeKind kind = h5::node_kind(loc, name);
  if (kind == NodeKind::kDataset) {
    const Handle dataset = open_dataset(loc, name, where);
    const Readable source{dataset, false, where(element)};
    summary.dtype = h5::type_info(source).name();
    summary.shape = h5::shape(source);
    summary.encoding = encoding_of(dataset, where, element);
    if (is_legacy_categorical(dataset)) {
      summary.encoding = "categorical (anndata 0.7)";
      const Handle categories = open_legacy_categories(dataset, where(element));
      summary.n_categories = h5::element_count({categories, false, where(element)});
    } else if (summary.encoding.empty()) {
      summary.encoding = summary.shape.empty() ? "scalar" : "array";
    }
    return summary;
  }
  if (kind != NodeKind::kGroup) {
    summary.encoding = "link";
    return summary;
  }
  const Handle group = open_group(loc, name, where);
  summary.encoding = encoding_of(group, where, element);
  if (summary.encoding.empty()) {
    const std::string legacy = h5::string_attribute(group, "h5sparse_format", where(element)).value_or("");
    summary.encoding = legacy.empty() ? "dict" : legacy + "_matrix";
  }
  if (summary.encoding == "csr_matrix" || summary.encoding == "csc_matrix") {
    auto dims = h5::int_array_attribute(group, "shape", where(element));
    if (!dims) dims = h5::int_array_attribute(group, "h5sparse_shape", where(element));
    if (dims) summary.shape = *dims;
    if (h5::node_kind(group, "data") == NodeKind::kDataset) {
      const Handle data = open_dataset(group, "data", where);
      const Readable source{data, false, where(element + "/data")};
      summary.dtype = h5::type_info(source).name();
      summary.nnz = h5::element_count(source);
    }
  } else if (summary.encoding == "categorical") {
    if (h5::node_kind(group, "categories") == NodeKind::kDataset) {
      const Handle categories = open_dataset(group, "categories", where);
      const Readable source{categories, false, where(element + "/categories")};
      summary.n_categories = h5::element_count(source);
      summary.dtype = h5::type_info(source).name();
    }
    if (h5::node_kind(group, "codes") == NodeKind::kDataset) {
      const Handle codes = open_dataset(group, "codes", where);
      summary.shape = h5::shape({codes, false, where(element + "/codes")});
    }
    summary.ordered = read_ordered(group, where, element);
  } else if (summary.encoding.rfind("nullable", 0) == 0 &&
             h5::node_kind(group, "values") == NodeKind::kDataset) {
    const Handle values = open_dataset(group, "values", where);
    const Readable source{values, false, where(element + "/values")};
    summary.dtype = h5::type_info(source).name();
    summary.shape = h5::shape(source);
  }
  return summary;
}

std::vector<ElementSummary> summarize_children(hid_t file, const std::string& container,
                                               const Where& where) {
  std::vector<ElementSummary> summaries;
  if (h5::node_kind(file, container) != NodeKind::kGroup) return summaries;
  const Handle group = open_group(file, container, where);
  for (const std::string& name : h5::child_names(group)) {
    summaries.push_back(summarize(group, name, container + "/" + name, where));
  }
  return summaries;
}

// The frame's columns (in column-order) and its number of rows.
std::vector<ElementSummary> summarize_frame(hid_t file, const std::string& frame_name,
                                            const Where& where, int64_t& rows) {
  std::vector<ElementSummary> columns;
  const Handle frame = open_group(file, frame_name, where);
  std::string index_name = h5::string_attribute(frame, "_index", where(frame_name)).value_or("");
  if (index_name.empty()) index_name = h5::node_kind(frame, "_index") == NodeKind::kDataset ? "_index" : "index";
  rows = 0;
  if (h5::node_kind(frame, index_name) == NodeKind::kDataset) {
    const Handle index = open_dataset(frame, index_name, where);
    rows = h5::element_count({index, false, where(frame_name + "/" + index_name)});
  }
  const std::vector<std::string> names = frame_column_names(frame, frame_name, index_name, where);
  for (const std::string& name : names) {
    if (h5::node_kind(frame, name) == NodeKind::kMissing) continue;
    columns.push_back(summarize(frame, name, frame_name + "/" + name, where));
  }
  return columns;
}

}  // namespace

H5adSummary describe_h5ad(const std::string& path) {
  h5::Session session;
  const Handle file = open_anndata_readonly(path);
  const Where where{path};
  H5adSummary summary;
  summary.path = path;
  {
    const Handle root = open_group(file, "/", where);
    summary.encoding_type = h5::string_attribute(root, "encoding-type", where("/")).value_or("");
    summary.encoding_version = h5::string_attribute(root, "encoding-version", where("/")).value_or("");
  }
  summary.obs_columns = summarize_frame(file, "obs", where, summary.n_obs);
  summary.var_columns = summarize_frame(file, "var", where, summary.n_vars);
  if (h5::node_kind(file, "X") != NodeKind::kMissing) {
    summary.has_X = true;
    summary.X = summarize(file, "X", "X", where);
  }
  summary.layers = summarize_children(file, "layers", where);
  summary.obsm = summarize_children(file, "obsm", where);
  summary.varm = summarize_children(file, "varm", where);
  summary.obsp = summarize_children(file, "obsp", where);
  summary.varp = summarize_children(file, "varp", where);
  summary.uns = summarize_children(file, "uns", where);
  return summary;
}

}  // namespace pv::io

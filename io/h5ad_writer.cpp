#include "io/h5ad_writer.h"

#include <cmath>
#include <set>

#include "io/count_checks.h"
#include "io/h5ad_files.h"
#include "io/hdf5_util.h"

namespace pv::io {

namespace {

using h5::Handle;
using h5::NodeKind;

constexpr int kMaxUnsDepth = 32;

// Names an element of the file being written, for messages: "out.h5ad: obs/velocity_length".
struct Where {
  std::string file;
  std::string operator()(const std::string& element) const { return file + ": " + element; }
};

void check_key(const std::string& key, const std::string& container, const std::string& file) {
  if (key.empty() || key.find('/') != std::string::npos || key == "." || key == "..") {
    fail(PV_ERR_INVALID_ARGUMENT, file + ": " + container + " key '" + key +
                                      "' is not a valid element name (non-empty, no '/')");
  }
}

void check_size(size_t actual, int64_t expected, const std::string& what, const char* unit) {
  if (static_cast<int64_t>(actual) != expected) {
    fail(PV_ERR_INVALID_ARGUMENT, what + " has " + std::to_string(actual) + " " + unit +
                                      " (expected " + std::to_string(expected) + ")");
  }
}

// ---- Validation (before anything is written) -----------------------------------------------

void validate_column(const Column& column, int64_t rows, const std::string& frame,
                     const std::string& index_name, const std::string& file) {
  check_key(column.name, frame + " column", file);
  if (column.name == index_name || column.name == "_index" || column.name == "__categories") {
    fail(PV_ERR_INVALID_ARGUMENT, file + ": " + frame + " column name '" + column.name +
                                      "' is reserved for the dataframe's index");
  }
  const std::string what = file + ": " + frame + " column '" + column.name + "'";
  switch (column.kind) {
    case Column::Kind::kNumeric:
      check_size(column.numeric.size(), rows, what, "values");
      if (column.is_integer) {
        for (size_t i = 0; i < column.numeric.size(); ++i) {
          const double v = column.numeric[i];
          if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9.2e18) {
            fail(PV_ERR_INVALID_ARGUMENT, what + " is marked integer but value[" + std::to_string(i) +
                                              "] = " + std::to_string(v) + " is not an int64");
          }
        }
      }
      break;
    case Column::Kind::kString:
      check_size(column.strings.size(), rows, what, "values");
      break;
    case Column::Kind::kCategorical: {
      check_size(column.codes.size(), rows, what, "codes");
      const int64_t n = static_cast<int64_t>(column.categories.size());
      for (size_t i = 0; i < column.codes.size(); ++i) {
        if (column.codes[i] < -1 || column.codes[i] >= n) {
          fail(PV_ERR_INVALID_ARGUMENT, what + " code[" + std::to_string(i) + "] = " +
                                            std::to_string(column.codes[i]) + " is not in [-1, " +
                                            std::to_string(n) + ")");
        }
      }
      std::set<std::string> unique(column.categories.begin(), column.categories.end());
      if (unique.size() != column.categories.size()) {
        fail(PV_ERR_INVALID_ARGUMENT, what + " has repeated categories");
      }
      break;
    }
  }
}

void validate_columns(const std::vector<Column>& columns, int64_t rows, const std::string& frame,
                      const std::string& index_name, const std::string& file) {
  std::set<std::string> seen;
  for (const Column& column : columns) {
    validate_column(column, rows, frame, index_name, file);
    if (!seen.insert(column.name).second) {
      fail(PV_ERR_INVALID_ARGUMENT, file + ": " + frame + " column '" + column.name + "' given twice");
    }
  }
}

template <class T>
void validate_dense(const DenseMatrix<T>& matrix, int64_t rows, int64_t cols, const std::string& what) {
  if (matrix.rows != rows || (cols >= 0 && matrix.cols != cols) || matrix.cols < 0) {
    fail(PV_ERR_INVALID_ARGUMENT, what + " is " + std::to_string(matrix.rows) + " x " +
                                      std::to_string(matrix.cols) + " (expected " +
                                      std::to_string(rows) + " x " +
                                      (cols >= 0 ? std::to_string(cols) : std::string("any")) + ")");
  }
  check_size(matrix.values.size(), matrix.rows * matrix.cols, what, "values");
}

void validate_counts(const CountMatrix& matrix, int64_t rows, int64_t cols, const std::string& what) {
  if (matrix.rows != rows || matrix.cols != cols) {
    fail(PV_ERR_INVALID_ARGUMENT, what + " is " + std::to_string(matrix.rows) + " x " +
                                      std::to_string(matrix.cols) + " (expected " +
                                      std::to_string(rows) + " x " + std::to_string(cols) + ")");
  }
  if (!matrix.sparse) {
    check_size(matrix.dense.size(), rows * cols, what, "values");
    return;
  }
  if (matrix.indptr.empty()) fail(PV_ERR_INVALID_ARGUMENT, what + " indptr is empty");
  check_compressed_structure(rows, cols, matrix.indptr.data(),
                             static_cast<int64_t>(matrix.indptr.size()), matrix.indices.data(),
                             static_cast<int64_t>(matrix.indices.size()),
                             static_cast<int64_t>(matrix.data.size()),
                             CsrNames{what + " indptr", what + " indices", what + " data"});
}

void validate_uns(const UnsValue& value, const std::string& what, int depth) {
  if (depth > kMaxUnsDepth) fail(PV_ERR_INVALID_ARGUMENT, what + " nests too deeply");
  if (value.kind != UnsValue::Kind::kDict) return;
  for (const auto& [key, child] : value.dict) {
    check_key(key, what, "uns");
    validate_uns(child, what + "/" + key, depth + 1);
  }
}

// ---- Elements ------------------------------------------------------------------------------

void write_column(hid_t frame, const Column& column, const std::string& what) {
  switch (column.kind) {
    case Column::Kind::kNumeric: {
      const std::vector<hsize_t> dims{column.numeric.size()};
      if (column.is_integer) {
        const std::vector<int64_t> values(column.numeric.begin(), column.numeric.end());
        h5::write_encoding(h5::write_array(frame, column.name, dims, values.data(), what), "array", "0.2.0");
      } else {
        h5::write_encoding(h5::write_array(frame, column.name, dims, column.numeric.data(), what),
                           "array", "0.2.0");
      }
      return;
    }
    case Column::Kind::kString:
      h5::write_encoding(h5::write_strings(frame, column.name, column.strings, what), "string-array",
                         "0.2.0");
      return;
    case Column::Kind::kCategorical: {
      const Handle group = h5::create_group(frame, column.name, what);
      h5::write_encoding(group, "categorical", "0.2.0");
      h5::write_bool_attribute(group, "ordered", column.ordered);
      h5::write_encoding(h5::write_strings(group, "categories", column.categories, what + "/categories"),
                         "string-array", "0.2.0");
      // The narrowest signed type that holds the codes, as pandas stores them.
      const size_t n = column.categories.size();
      const std::vector<hsize_t> dims{column.codes.size()};
      const std::string codes_what = what + "/codes";
      Handle codes;
      if (n < 128) {
        const std::vector<int8_t> narrow(column.codes.begin(), column.codes.end());
        codes = h5::write_array(group, "codes", dims, narrow.data(), codes_what);
      } else if (n < 32768) {
        const std::vector<int16_t> narrow(column.codes.begin(), column.codes.end());
        codes = h5::write_array(group, "codes", dims, narrow.data(), codes_what);
      } else {
        codes = h5::write_array(group, "codes", dims, column.codes.data(), codes_what);
      }
      h5::write_encoding(codes, "array", "0.2.0");
      return;
    }
  }
}

std::vector<std::string> default_index(int64_t rows) {
  std::vector<std::string> index(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) index[i] = std::to_string(i);
  return index;
}

void write_column_order(hid_t frame, const std::vector<std::string>& names) {
  if (names.empty()) {
    h5::write_empty_float_attribute(frame, "column-order");
  } else {
    h5::write_string_array_attribute(frame, "column-order", names);
  }
}

void write_dataframe(hid_t file, const std::string& name, const DataFrame& frame, int64_t rows,
                     const Where& where) {
  const Handle group = h5::create_group(file, name, where(name));
  h5::write_encoding(group, "dataframe", "0.2.0");
  h5::write_string_attribute(group, "_index", "_index");
  const std::vector<std::string> index = frame.index.empty() ? default_index(rows) : frame.index;
  h5::write_encoding(h5::write_strings(group, "_index", index, where(name + "/_index")),
                     "string-array", "0.2.0");
  std::vector<std::string> order;
  for (const Column& column : frame.columns) {
    write_column(group, column, where(name + "/" + column.name));
    order.push_back(column.name);
  }
  write_column_order(group, order);
}

template <class T>
void write_dense(hid_t loc, const std::string& name, const DenseMatrix<T>& matrix,
                 const std::string& what) {
  const std::vector<hsize_t> dims{static_cast<hsize_t>(matrix.rows), static_cast<hsize_t>(matrix.cols)};
  h5::write_encoding(h5::write_array(loc, name, dims, matrix.values.data(), what), "array", "0.2.0");
}

void write_count_matrix(hid_t loc, const std::string& name, const CountMatrix& matrix,
                        const std::string& what) {
  if (!matrix.sparse) {
    const std::vector<hsize_t> dims{static_cast<hsize_t>(matrix.rows), static_cast<hsize_t>(matrix.cols)};
    h5::write_encoding(h5::write_array(loc, name, dims, matrix.dense.data(), what), "array", "0.2.0");
    return;
  }
  const Handle group = h5::create_group(loc, name, what);
  h5::write_encoding(group, "csr_matrix", "0.1.0");
  h5::write_int64_array_attribute(group, "shape", {matrix.rows, matrix.cols});
  h5::write_array(group, "data", {matrix.data.size()}, matrix.data.data(), what + "/data");
  h5::write_array(group, "indices", {matrix.indices.size()}, matrix.indices.data(), what + "/indices");
  h5::write_array(group, "indptr", {matrix.indptr.size()}, matrix.indptr.data(), what + "/indptr");
}

void write_uns_value(hid_t loc, const std::string& name, const UnsValue& value, const std::string& what) {
  switch (value.kind) {
    case UnsValue::Kind::kNumber:
      h5::write_encoding(h5::write_scalar(loc, name, value.number, what), "numeric-scalar", "0.2.0");
      return;
    case UnsValue::Kind::kInteger:
      h5::write_encoding(h5::write_scalar(loc, name, value.integer, what), "numeric-scalar", "0.2.0");
      return;
    case UnsValue::Kind::kString:
      h5::write_encoding(h5::write_string_scalar(loc, name, value.string, what), "string", "0.2.0");
      return;
    case UnsValue::Kind::kNumberArray:
      h5::write_encoding(h5::write_array(loc, name, {value.numbers.size()}, value.numbers.data(), what),
                         "array", "0.2.0");
      return;
    case UnsValue::Kind::kStringArray:
      h5::write_encoding(h5::write_strings(loc, name, value.strings, what), "string-array", "0.2.0");
      return;
    case UnsValue::Kind::kDict: {
      const Handle group = h5::create_group(loc, name, what);
      h5::write_encoding(group, "dict", "0.1.0");
      for (const auto& [key, child] : value.dict) write_uns_value(group, key, child, what + "/" + key);
      return;
    }
  }
}

Handle create_dict(hid_t loc, const std::string& name, const Where& where) {
  Handle group = h5::create_group(loc, name, where(name));
  h5::write_encoding(group, "dict", "0.1.0");
  return group;
}

// n_obs / n_vars of an in-memory AnnData: the index, else the first element that has the axis.
int64_t axis_length(const AnnData& data, bool obs_axis) {
  const DataFrame& frame = obs_axis ? data.obs : data.var;
  if (!frame.index.empty()) return static_cast<int64_t>(frame.index.size());
  for (const auto& [name, layer] : data.layers) return obs_axis ? layer.rows : layer.cols;
  if (data.X) return obs_axis ? data.X->rows : data.X->cols;
  if (obs_axis && !data.obsm.empty()) return data.obsm.begin()->second.rows;
  if (!frame.columns.empty()) {
    const Column& column = frame.columns.front();
    switch (column.kind) {
      case Column::Kind::kNumeric: return static_cast<int64_t>(column.numeric.size());
      case Column::Kind::kString: return static_cast<int64_t>(column.strings.size());
      case Column::Kind::kCategorical: return static_cast<int64_t>(column.codes.size());
    }
  }
  return 0;
}

}  // namespace

void write_h5ad(const std::string& path, const AnnData& data) {
  h5::Session session;
  check_output_directory(path);
  const Where where{path};
  const int64_t n_obs = axis_length(data, true);
  const int64_t n_vars = axis_length(data, false);

  // Everything is checked before the file is created.
  if (!data.obs.index.empty()) check_size(data.obs.index.size(), n_obs, where("obs index"), "names");
  if (!data.var.index.empty()) check_size(data.var.index.size(), n_vars, where("var index"), "names");
  validate_columns(data.obs.columns, n_obs, "obs", "_index", path);
  validate_columns(data.var.columns, n_vars, "var", "_index", path);
  if (data.X) validate_counts(*data.X, n_obs, n_vars, where("X"));
  for (const auto& [name, layer] : data.layers) {
    check_key(name, "layers", path);
    validate_counts(layer, n_obs, n_vars, where("layers/" + name));
  }
  for (const auto& [name, matrix] : data.obsm) {
    check_key(name, "obsm", path);
    validate_dense(matrix, n_obs, -1, where("obsm/" + name));
  }
  for (const auto& [name, matrix] : data.varm) {
    check_key(name, "varm", path);
    validate_dense(matrix, n_vars, -1, where("varm/" + name));
  }
  if (data.uns.kind != UnsValue::Kind::kDict) {
    fail(PV_ERR_INVALID_ARGUMENT, where("uns") + " must be a dict");
  }
  validate_uns(data.uns, "uns", 0);

  AtomicOutput output(path);
  {
    const hid_t file = output.file();
    {
      const Handle root = h5::check(H5Gopen2(file, "/", H5P_DEFAULT), PV_ERR_IO,
                                    "cannot open the root group of " + path);
      h5::write_encoding(root, "anndata", "0.1.0");
    }
    write_dataframe(file, "obs", data.obs, n_obs, where);
    write_dataframe(file, "var", data.var, n_vars, where);
    if (data.X) write_count_matrix(file, "X", *data.X, where("X"));
    {
      const Handle layers = create_dict(file, "layers", where);
      for (const auto& [name, layer] : data.layers) {
        write_count_matrix(layers, name, layer, where("layers/" + name));
      }
    }
    {
      const Handle obsm = create_dict(file, "obsm", where);
      for (const auto& [name, matrix] : data.obsm) write_dense(obsm, name, matrix, where("obsm/" + name));
    }
    {
      const Handle varm = create_dict(file, "varm", where);
      for (const auto& [name, matrix] : data.varm) write_dense(varm, name, matrix, where("varm/" + name));
    }
    for (const char* empty : {"obsp", "varp"}) create_dict(file, empty, where);
    {
      const Handle uns = create_dict(file, "uns", where);
      for (const auto& [key, value] : data.uns.dict) write_uns_value(uns, key, value, where("uns/" + key));
    }
  }
  output.commit();
}

// ---- Copy with additions -------------------------------------------------------------------

namespace {

struct FrameInfo {
  std::string index_name;
  int64_t rows = 0;
};

FrameInfo frame_info(hid_t file, const std::string& name, const Where& where) {
  if (h5::node_kind(file, name) != NodeKind::kGroup) {
    fail(PV_ERR_FORMAT, where(name) + " is not a group (AnnData before 0.7?); re-save the file "
                                      "with anndata >= 0.8 first");
  }
  const Handle group = h5::check(H5Gopen2(file, name.c_str(), H5P_DEFAULT), PV_ERR_FORMAT,
                                 "cannot open " + where(name));
  FrameInfo info;
  info.index_name = h5::string_attribute(group, "_index", where(name)).value_or("");
  if (info.index_name.empty()) {
    info.index_name = h5::node_kind(group, "_index") == NodeKind::kDataset ? "_index" : "index";
  }
  if (h5::node_kind(group, info.index_name) != NodeKind::kDataset) {
    fail(PV_ERR_FORMAT, where(name) + " has no index dataset");
  }
  const Handle index = h5::check(H5Dopen2(group, info.index_name.c_str(), H5P_DEFAULT),
                                 PV_ERR_FORMAT, "cannot open " + where(name + "/" + info.index_name));
  info.rows = h5::element_count({index, false, where(name + "/" + info.index_name)});
  return info;
}

template <class Map>
std::set<std::string> keys_of(const Map& map) {
  std::set<std::string> keys;
  for (const auto& entry : map) keys.insert(entry.first);
  return keys;
}

std::set<std::string> column_names(const std::vector<Column>& columns) {
  std::set<std::string> names;
  for (const Column& column : columns) names.insert(column.name);
  return names;
}

// Object references (anndata 0.7 categories) would be zeroed by a plain copy into another file;
// expanding them makes each H5Ocopy call carry the referenced objects along, once, with the
// references rewritten to the copies.
Handle reference_preserving_copy() {
  Handle properties(H5Pcreate(H5P_OBJECT_COPY));
  H5Pset_copy_object(properties, H5O_COPY_EXPAND_REFERENCE_FLAG);
  return properties;
}

void copy_object(hid_t from, const std::string& name, hid_t to, const Where& where) {
  const Handle properties = reference_preserving_copy();
  h5::check(H5Ocopy(from, name.c_str(), to, name.c_str(), properties, H5P_DEFAULT), PV_ERR_IO,
            "cannot copy " + where(name) + " into the output");
}

// Copies group `name` without the children in `replaced` (they are about to be rewritten), so
// the output holds no dead space for them.
void copy_group_except(hid_t input, hid_t output, const std::string& name,
                       const std::set<std::string>& replaced, const Where& where) {
  const Handle source = h5::check(H5Gopen2(input, name.c_str(), H5P_DEFAULT), PV_ERR_FORMAT,
                                  "cannot open " + where(name));
  std::set<std::string> present;
  for (const std::string& child : h5::child_names(source)) {
    if (replaced.count(child)) present.insert(child);
  }
  if (present.empty()) {
    copy_object(input, name, output, where);
    return;
  }
  if (h5::node_kind(source, "__categories") == NodeKind::kGroup) {
    // anndata 0.7 columns refer to obs/__categories by object reference: copied child by child,
    // each referenced dataset would be copied twice; one H5Ocopy of the group copies it once.
    copy_object(input, name, output, where);
    const Handle target = h5::check(H5Gopen2(output, name.c_str(), H5P_DEFAULT), PV_ERR_IO,
                                    "cannot open the output's " + name);
    for (const std::string& child : present) {
      h5::check(H5Ldelete(target, child.c_str(), H5P_DEFAULT), PV_ERR_IO,
                "cannot remove the output's " + name + "/" + child);
      const std::string categories = "__categories/" + child;
      if (h5::node_kind(target, categories) != NodeKind::kMissing) {
        H5Ldelete(target, categories.c_str(), H5P_DEFAULT);
      }
    }
    return;
  }
  const Handle target = h5::create_group(output, name, "the output's " + name);
  h5::copy_attributes(source, target, where(name));
  const Handle properties = reference_preserving_copy();
  for (const std::string& child : h5::child_names(source)) {
    if (present.count(child)) continue;
    h5::check(H5Ocopy(source, child.c_str(), target, child.c_str(), properties, H5P_DEFAULT),
              PV_ERR_IO, "cannot copy " + where(name + "/" + child) + " into the output");
  }
}

Handle open_or_create_dict(hid_t file, const std::string& name, const Where& where) {
  if (h5::node_kind(file, name) == NodeKind::kGroup) {
    return h5::check(H5Gopen2(file, name.c_str(), H5P_DEFAULT), PV_ERR_IO,
                     "cannot open " + where(name));
  }
  if (h5::node_kind(file, name) != NodeKind::kMissing) {
    fail(PV_ERR_FORMAT, where(name) + " exists but is not a group");
  }
  return create_dict(file, name, where);
}

void add_columns(hid_t file, const std::string& frame_name, const std::vector<Column>& columns,
                 const Where& where) {
  if (columns.empty()) return;
  const Handle frame = h5::check(H5Gopen2(file, frame_name.c_str(), H5P_DEFAULT), PV_ERR_IO,
                                 "cannot open " + where(frame_name));
  std::vector<std::string> order;
  if (auto listed = h5::string_array_attribute(frame, "column-order", where(frame_name))) {
    order = *listed;
  } else {
    // Without column-order, anndata would list only the new columns: list the existing ones.
    const std::string index_name = h5::string_attribute(frame, "_index", where(frame_name)).value_or("_index");
    for (const std::string& child : h5::child_names(frame)) {
      if (child != index_name && child != "__categories") order.push_back(child);
    }
  }
  for (const Column& column : columns) {
    write_column(frame, column, where(frame_name + "/" + column.name));
    bool listed = false;
    for (const std::string& name : order) listed = listed || name == column.name;
    if (!listed) order.push_back(column.name);
  }
  write_column_order(frame, order);
}

}  // namespace

void write_h5ad_with_additions(const std::string& input_path, const std::string& output_path,
                               const Additions& additions) {
  h5::Session session;
  check_not_same_file(input_path, output_path);
  check_output_directory(output_path);
  const Handle input = open_anndata_readonly(input_path);
  const Where in{input_path}, out{output_path};

  const FrameInfo obs = frame_info(input, "obs", in);
  const FrameInfo var = frame_info(input, "var", in);
  validate_columns(additions.obs_columns, obs.rows, "obs", obs.index_name, output_path);
  validate_columns(additions.var_columns, var.rows, "var", var.index_name, output_path);
  for (const auto& [name, layer] : additions.layers) {
    check_key(name, "layers", output_path);
    validate_dense(layer, obs.rows, var.rows, out("layers/" + name));
  }
  for (const auto& [name, matrix] : additions.obsm) {
    check_key(name, "obsm", output_path);
    validate_dense(matrix, obs.rows, -1, out("obsm/" + name));
  }
  for (const auto& [name, graph] : additions.obsp) {
    check_key(name, "obsp", output_path);
    validate_counts(graph, obs.rows, obs.rows, out("obsp/" + name));
  }
  for (const auto& [key, value] : additions.uns) {
    check_key(key, "uns", output_path);
    validate_uns(value, "uns/" + key, 1);
  }

  const std::map<std::string, std::set<std::string>> replaced{
      {"obs", column_names(additions.obs_columns)}, {"var", column_names(additions.var_columns)},
      {"layers", keys_of(additions.layers)},        {"obsm", keys_of(additions.obsm)},
      {"obsp", keys_of(additions.obsp)},            {"uns", keys_of(additions.uns)}};

  AtomicOutput output(output_path);
  {
    const hid_t file = output.file();
    {
      const Handle source_root = h5::check(H5Gopen2(input, "/", H5P_DEFAULT), PV_ERR_FORMAT,
                                           "cannot open the root group of " + input_path);
      const Handle target_root = h5::check(H5Gopen2(file, "/", H5P_DEFAULT), PV_ERR_IO,
                                           "cannot open the root group of " + output_path);
      h5::copy_attributes(source_root, target_root, in("/"));
    }
    for (const std::string& name : h5::child_names(input)) {
      const auto found = replaced.find(name);
      if (found != replaced.end() && h5::node_kind(input, name) == NodeKind::kGroup) {
        copy_group_except(input, file, name, found->second, in);
      } else {
        copy_object(input, name, file, in);
      }
    }
    add_columns(file, "obs", additions.obs_columns, out);
    add_columns(file, "var", additions.var_columns, out);
    if (!additions.layers.empty()) {
      const Handle layers = open_or_create_dict(file, "layers", out);
      for (const auto& [name, layer] : additions.layers) {
        write_dense(layers, name, layer, out("layers/" + name));
      }
    }
    if (!additions.obsm.empty()) {
      const Handle obsm = open_or_create_dict(file, "obsm", out);
      for (const auto& [name, matrix] : additions.obsm) {
        write_dense(obsm, name, matrix, out("obsm/" + name));
      }
    }
    if (!additions.obsp.empty()) {
      const Handle obsp = open_or_create_dict(file, "obsp", out);
      for (const auto& [name, graph] : additions.obsp) {
        write_count_matrix(obsp, name, graph, out("obsp/" + name));
      }
    }
    if (!additions.uns.empty()) {
      const Handle uns = open_or_create_dict(file, "uns", out);
      for (const auto& [key, value] : additions.uns) {
        write_uns_value(uns, key, value, out("uns/" + key));
      }
    }
  }
  output.commit();
}

}  // namespace pv::io

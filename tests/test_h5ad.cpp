// The h5ad reader and writer: round trips, fixtures written with raw libhdf5 (every on-disk
// variant the reader accepts), and the real pancreas dataset.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/anndata.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "test_h5ad_support.h"

#if PV_HDF5

using pv::io::AnnData;
using pv::io::Column;
using pv::io::CountMatrix;
using pv::io::UnsValue;
using namespace pv_test;

namespace {

std::vector<double> to_dense(const CountMatrix& m) {
  std::vector<double> out(static_cast<size_t>(m.rows * m.cols), 0.0);
  if (!m.sparse) {
    for (size_t i = 0; i < m.dense.size(); ++i) out[i] = m.dense[i];
    return out;
  }
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; ++k) out[r * m.cols + m.indices[k]] = m.data[k];
  }
  return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

Column numeric(const std::string& name, std::vector<double> values, bool is_integer = false) {
  Column c;
  c.name = name;
  c.kind = Column::Kind::kNumeric;
  c.numeric = std::move(values);
  c.is_integer = is_integer;
  return c;
}

Column strings(const std::string& name, std::vector<std::string> values) {
  Column c;
  c.name = name;
  c.kind = Column::Kind::kString;
  c.strings = std::move(values);
  return c;
}

Column categorical(const std::string& name, std::vector<int32_t> codes,
                   std::vector<std::string> categories, bool ordered) {
  Column c;
  c.name = name;
  c.kind = Column::Kind::kCategorical;
  c.codes = std::move(codes);
  c.categories = std::move(categories);
  c.ordered = ordered;
  return c;
}

UnsValue uns_number(double v) {
  UnsValue u;
  u.kind = UnsValue::Kind::kNumber;
  u.number = v;
  return u;
}
UnsValue uns_integer(int64_t v) {
  UnsValue u;
  u.kind = UnsValue::Kind::kInteger;
  u.integer = v;
  return u;
}
UnsValue uns_string(const std::string& v) {
  UnsValue u;
  u.kind = UnsValue::Kind::kString;
  u.string = v;
  return u;
}

// Every element type the writer supports, with awkward values (UTF-8, extremes, missing codes).
AnnData sample() {
  AnnData a;
  a.obs.index = {"cell_a", "cell_b", "c\xC3\xA9lula_\xC3\xA7", "cell_d"};
  a.var.index = {"Gene1", "Gene2", "Gene3"};
  a.obs.columns.push_back(numeric("score", {0.1, -2.5e300, 5e-324, 1.0 / 3.0}));
  a.obs.columns.push_back(numeric("n_counts", {0, 1, 1099511627776.0, -7}, true));
  a.obs.columns.push_back(strings("batch", {"a", "b", "", "\xC3\xBC"}));
  a.obs.columns.push_back(categorical("clusters", {0, 2, -1, 1}, {"Ductal", "Ngn3 high EP", "Beta"}, true));
  a.var.columns.push_back(numeric("highly_variable", {1, 0, 1}, true));
  a.var.columns.push_back(categorical("kind", {1, 0, 1}, {"x", "y"}, false));

  CountMatrix spliced;
  spliced.rows = 4;
  spliced.cols = 3;
  spliced.sparse = true;
  spliced.indptr = {0, 2, 2, 3, 5};
  spliced.indices = {0, 2, 1, 0, 2};
  spliced.data = {1, 3, 7, 16777216, 2};
  a.layers["spliced"] = spliced;

  CountMatrix unspliced;
  unspliced.rows = 4;
  unspliced.cols = 3;
  unspliced.dense = {0, 1, 2, 3, 0, 0, 5, 0, 1, 0, 0, 9};
  a.layers["unspliced"] = unspliced;

  a.X = std::make_unique<CountMatrix>(spliced);
  a.X->data = {0.5f, 1.25f, -3.0f, 1e-8f, 2.0f};  // X may hold anything

  pv::io::DenseMatrix<double> umap;
  umap.rows = 4;
  umap.cols = 2;
  umap.values = {1.5, -2.25, 1e-300, 3.0, 4.0, 5.5, -6.0, 7.125};
  a.obsm["X_umap"] = umap;
  a.varm["PCs"] = pv::io::DenseMatrix<double>{3, 2, {0.1, -0.2, 0.3, 1e-200, -5.0, 6.5}};

  a.uns.dict["alpha"] = uns_number(0.25);
  a.uns.dict["n_steps"] = uns_integer(-42);
  a.uns.dict["note"] = uns_string("hello \xE2\x9C\x93");
  UnsValue numbers;
  numbers.kind = UnsValue::Kind::kNumberArray;
  numbers.numbers = {1.5, 2.5, -1e10};
  a.uns.dict["losses"] = numbers;
  UnsValue names;
  names.kind = UnsValue::Kind::kStringArray;
  names.strings = {"x", "y", ""};
  a.uns.dict["names"] = names;
  UnsValue inner;
  inner.kind = UnsValue::Kind::kDict;
  inner.dict["deep"] = uns_integer(7);
  UnsValue outer;
  outer.kind = UnsValue::Kind::kDict;
  outer.dict["inner"] = inner;
  outer.dict["value"] = uns_number(-0.5);
  UnsValue empty_dict;
  empty_dict.kind = UnsValue::Kind::kDict;
  outer.dict["empty"] = empty_dict;
  a.uns.dict["params"] = outer;
  return a;
}

void check_same_column(const Column& a, const Column& b) {
  INFO("column " << a.name);
  CHECK(a.name == b.name);
  REQUIRE(a.kind == b.kind);
  switch (a.kind) {
    case Column::Kind::kNumeric:
      CHECK(a.is_integer == b.is_integer);
      CHECK(same_bits(a.numeric, b.numeric));
      break;
    case Column::Kind::kString: CHECK(a.strings == b.strings); break;
    case Column::Kind::kCategorical:
      CHECK(a.codes == b.codes);
      CHECK(a.categories == b.categories);
      CHECK(a.ordered == b.ordered);
      break;
  }
}

void check_same_frame(const pv::io::DataFrame& a, const pv::io::DataFrame& b) {
  CHECK(a.index == b.index);
  REQUIRE(a.columns.size() == b.columns.size());
  for (size_t i = 0; i < a.columns.size(); ++i) check_same_column(a.columns[i], b.columns[i]);
}

void check_same_counts(const CountMatrix& a, const CountMatrix& b) {
  CHECK(a.rows == b.rows);
  CHECK(a.cols == b.cols);
  CHECK(a.sparse == b.sparse);
  CHECK(a.dense == b.dense);
  CHECK(a.indptr == b.indptr);
  CHECK(a.indices == b.indices);
  CHECK(a.data == b.data);
}

void check_same_uns(const UnsValue& a, const UnsValue& b) {
  REQUIRE(a.kind == b.kind);
  switch (a.kind) {
    case UnsValue::Kind::kNumber: CHECK(std::memcmp(&a.number, &b.number, sizeof(double)) == 0); break;
    case UnsValue::Kind::kInteger: CHECK(a.integer == b.integer); break;
    case UnsValue::Kind::kString: CHECK(a.string == b.string); break;
    case UnsValue::Kind::kNumberArray: CHECK(same_bits(a.numbers, b.numbers)); break;
    case UnsValue::Kind::kStringArray: CHECK(a.strings == b.strings); break;
    case UnsValue::Kind::kDict:
      REQUIRE(a.dict.size() == b.dict.size());
      for (const auto& [key, value] : a.dict) {
        INFO("uns key " << key);
        REQUIRE(b.dict.count(key) == 1);
        check_same_uns(value, b.dict.at(key));
      }
      break;
  }
}

void check_same(const AnnData& a, const AnnData& b) {
  check_same_frame(a.obs, b.obs);
  check_same_frame(a.var, b.var);
  REQUIRE(a.layers.size() == b.layers.size());
  for (const auto& [name, layer] : a.layers) {
    INFO("layer " << name);
    REQUIRE(b.layers.count(name) == 1);
    check_same_counts(layer, b.layers.at(name));
  }
  REQUIRE(bool(a.X) == bool(b.X));
  if (a.X) check_same_counts(*a.X, *b.X);
  REQUIRE(a.varm.size() == b.varm.size());
  for (const auto& [name, m] : a.varm) {
    INFO("varm " << name);
    REQUIRE(b.varm.count(name) == 1);
    CHECK(m.rows == b.varm.at(name).rows);
    CHECK(m.cols == b.varm.at(name).cols);
    CHECK(same_bits(m.values, b.varm.at(name).values));
  }
  REQUIRE(a.obsm.size() == b.obsm.size());
  for (const auto& [name, m] : a.obsm) {
    INFO("obsm " << name);
    REQUIRE(b.obsm.count(name) == 1);
    CHECK(m.rows == b.obsm.at(name).rows);
    CHECK(m.cols == b.obsm.at(name).cols);
    CHECK(same_bits(m.values, b.obsm.at(name).values));
  }
  check_same_uns(a.uns, b.uns);
}

pv::io::ReadOptions with_X() {
  pv::io::ReadOptions options;
  options.read_X = true;
  return options;
}

// An attribute as anndata writes it: a scalar, variable-length UTF-8 string of this value.
void check_string_attribute(hid_t file, const char* object_path, const char* name, const char* expected) {
  INFO(object_path << " attribute " << name);
  const hid_t attr = H5Aopen_by_name(file, object_path, name, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(attr >= 0);
  const hid_t type = H5Aget_type(attr);
  const hid_t space = H5Aget_space(attr);
  CHECK(H5Tget_class(type) == H5T_STRING);
  CHECK(H5Tis_variable_str(type) > 0);
  CHECK(H5Tget_cset(type) == H5T_CSET_UTF8);
  CHECK(H5Sget_simple_extent_type(space) == H5S_SCALAR);
  char* value = nullptr;
  const hid_t memory = H5Tcopy(H5T_C_S1);
  H5Tset_size(memory, H5T_VARIABLE);
  H5Tset_cset(memory, H5T_CSET_UTF8);
  REQUIRE(H5Aread(attr, memory, &value) >= 0);
  CHECK(std::string(value) == expected);
  H5free_memory(value);
  H5Tclose(memory);
  H5Sclose(space);
  H5Tclose(type);
  H5Aclose(attr);
}

}  // namespace

TEST_CASE("h5ad round trip: every element type survives write then read bit-exactly") {
  TempDir dir;
  const AnnData original = sample();
  const std::string path = dir.file("sample.h5ad");
  pv::io::write_h5ad(path, original);
  CHECK(dir.listing() == std::vector<std::string>{"sample.h5ad"});  // no temporary left

  const AnnData back = pv::io::read_h5ad(path, with_X());
  check_same(original, back);
  CHECK(back.source.spliced_layer == "spliced");
  CHECK(back.source.unspliced_layer == "unspliced");
  CHECK(back.source.skipped.empty());

  // Writing what was read gives the same content again.
  const std::string again = dir.file("again.h5ad");
  pv::io::write_h5ad(again, back);
  check_same(original, pv::io::read_h5ad(again, with_X()));
}

TEST_CASE("h5ad writer: the on-disk encodings anndata >= 0.8 expects") {
  TempDir dir;
  AnnData data = sample();
  data.var.columns.clear();  // a frame without columns: column-order is an empty float64 array
  const std::string path = dir.file("encodings.h5ad");
  pv::io::write_h5ad(path, data);

  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(file >= 0);
  check_string_attribute(file, "/", "encoding-type", "anndata");
  check_string_attribute(file, "/", "encoding-version", "0.1.0");
  check_string_attribute(file, "obs", "encoding-type", "dataframe");
  check_string_attribute(file, "obs", "encoding-version", "0.2.0");
  check_string_attribute(file, "obs", "_index", "_index");
  check_string_attribute(file, "obs/_index", "encoding-type", "string-array");
  check_string_attribute(file, "obs/score", "encoding-type", "array");
  check_string_attribute(file, "obs/batch", "encoding-type", "string-array");
  check_string_attribute(file, "obs/clusters", "encoding-type", "categorical");
  check_string_attribute(file, "obs/clusters", "encoding-version", "0.2.0");
  check_string_attribute(file, "layers", "encoding-type", "dict");
  check_string_attribute(file, "layers/spliced", "encoding-type", "csr_matrix");
  check_string_attribute(file, "layers/spliced", "encoding-version", "0.1.0");
  check_string_attribute(file, "layers/unspliced", "encoding-type", "array");
  check_string_attribute(file, "uns/alpha", "encoding-type", "numeric-scalar");
  check_string_attribute(file, "uns/note", "encoding-type", "string");
  check_string_attribute(file, "uns/params", "encoding-type", "dict");
  check_string_attribute(file, "obsp", "encoding-type", "dict");

  {  // obs column-order lists the columns in order, as variable-length strings
    const hid_t attr = H5Aopen_by_name(file, "obs", "column-order", H5P_DEFAULT, H5P_DEFAULT);
    const hid_t space = H5Aget_space(attr);
    CHECK(H5Sget_simple_extent_npoints(space) == 4);
    H5Sclose(space);
    H5Aclose(attr);
  }
  {  // var has no columns: an empty float64 array
    const hid_t attr = H5Aopen_by_name(file, "var", "column-order", H5P_DEFAULT, H5P_DEFAULT);
    const hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    CHECK(H5Tget_class(type) == H5T_FLOAT);
    CHECK(H5Tget_size(type) == 8);
    CHECK(H5Sget_simple_extent_npoints(space) == 0);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
  }
  {  // ordered: h5py's boolean, an enum over int8 {FALSE, TRUE}
    const hid_t attr = H5Aopen_by_name(file, "obs/clusters", "ordered", H5P_DEFAULT, H5P_DEFAULT);
    const hid_t type = H5Aget_type(attr);
    CHECK(H5Tget_class(type) == H5T_ENUM);
    CHECK(H5Tget_size(type) == 1);
    CHECK(H5Tget_nmembers(type) == 2);
    int8_t value = -1;
    H5Aread(attr, type, &value);
    CHECK(value == 1);
    H5Tclose(type);
    H5Aclose(attr);
  }
  {  // the sparse matrix's shape attribute and int8 categorical codes
    int64_t shape[2] = {0, 0};
    const hid_t attr = H5Aopen_by_name(file, "layers/spliced", "shape", H5P_DEFAULT, H5P_DEFAULT);
    H5Aread(attr, H5T_NATIVE_INT64, shape);
    H5Aclose(attr);
    CHECK(shape[0] == 4);
    CHECK(shape[1] == 3);
    const hid_t codes = H5Dopen2(file, "obs/clusters/codes", H5P_DEFAULT);
    const hid_t type = H5Dget_type(codes);
    CHECK(H5Tget_class(type) == H5T_INTEGER);
    CHECK(H5Tget_size(type) == 1);
    H5Tclose(type);
    H5Dclose(codes);
  }
  H5Fclose(file);
}

TEST_CASE("h5ad writer: an AnnData without index names gets 0..n-1 and a large layer is compressed") {
  TempDir dir;
  AnnData data;
  CountMatrix counts;
  counts.rows = 300;
  counts.cols = 200;
  counts.dense.assign(300 * 200, 0.0f);
  for (size_t i = 0; i < counts.dense.size(); i += 7) counts.dense[i] = static_cast<float>(i % 11);
  data.layers["spliced"] = counts;
  data.layers["unspliced"] = counts;
  const std::string path = dir.file("plain.h5ad");
  pv::io::write_h5ad(path, data);
  const AnnData back = pv::io::read_h5ad(path);
  REQUIRE(back.obs.index.size() == 300);
  CHECK(back.obs.index[0] == "0");
  CHECK(back.obs.index[299] == "299");
  CHECK(back.var.index.size() == 200);
  CHECK(back.layers.at("spliced").dense == counts.dense);
  CHECK(std::filesystem::file_size(path) < 300 * 200 * 4);
}

TEST_CASE("h5ad reader: dense layers of int32 and float64, fixed-length string attributes, obsm f32/f64") {
  TempDir dir;
  const std::string path = dir.file("dense.h5ad");
  const std::vector<double> s = {0, 1, 2, 3, 4, 5}, u = {6, 0, 8, 0, 10, 11};
  {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    raw::encoding(file, "anndata", "0.1.0", true);
    const hid_t obs = raw::dataframe(file, "obs", {"c0", "c1"}, true);
    H5Adelete(obs, "column-order");
    raw::attr_strings(obs, "column-order", {"f32", "i16", "flag", "label"});
    raw::numbers(obs, "f32", H5T_IEEE_F32LE, {0.5, -1.25});
    raw::numbers(obs, "i16", H5T_STD_I16LE, {-3, 300});
    {  // h5py's bool
      const hid_t type = H5Tenum_create(H5T_STD_I8LE);
      int8_t v = 0;
      H5Tenum_insert(type, "FALSE", &v);
      v = 1;
      H5Tenum_insert(type, "TRUE", &v);
      const hsize_t dims[1] = {2};
      const hid_t space = H5Screate_simple(1, dims, nullptr);
      const hid_t set = H5Dcreate2(obs, "flag", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      const int8_t values[2] = {1, 0};
      H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
      raw::encoding(set, "array", "0.2.0", true);
      H5Dclose(set);
      H5Sclose(space);
      H5Tclose(type);
    }
    {  // a fixed-length, space-padded string column
      const hid_t type = H5Tcopy(H5T_C_S1);
      H5Tset_size(type, 4);
      H5Tset_strpad(type, H5T_STR_SPACEPAD);
      const hsize_t dims[1] = {2};
      const hid_t space = H5Screate_simple(1, dims, nullptr);
      const hid_t set = H5Dcreate2(obs, "label", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, "ab  wxyz");
      raw::encoding(set, "string-array", "0.2.0", true);
      H5Dclose(set);
      H5Sclose(space);
      H5Tclose(type);
    }
    H5Gclose(obs);
    H5Gclose(raw::dataframe(file, "var", {"g0", "g1", "g2"}, true));
    const hid_t layers = raw::group(file, "layers", "dict", "0.1.0");
    raw::dense(layers, "spliced", H5T_STD_I32LE, 2, 3, s);
    raw::dense(layers, "unspliced", H5T_IEEE_F64LE, 2, 3, u);
    H5Gclose(layers);
    const hid_t obsm = raw::group(file, "obsm", "dict", "0.1.0");
    raw::dense(obsm, "X_umap", H5T_IEEE_F32LE, 2, 2, {0.1, 0.2, 0.3, 0.4});
    raw::dense(obsm, "X_pca", H5T_IEEE_F64LE, 2, 1, {0.1, 0.2});
    raw::numbers(obsm, "one_d", H5T_IEEE_F64LE, {1, 2});
    H5Gclose(obsm);
    H5Fclose(file);
  }
  const std::string before = file_bytes(path);
  const AnnData data = pv::io::read_h5ad(path);
  CHECK(file_bytes(path) == before);

  const CountMatrix& spliced = data.layers.at("spliced");
  CHECK_FALSE(spliced.sparse);
  CHECK(to_dense(spliced) == s);
  CHECK(to_dense(data.layers.at("unspliced")) == u);
  CHECK(data.obs.index == std::vector<std::string>{"c0", "c1"});
  REQUIRE(data.obs.columns.size() == 4);
  CHECK(data.obs.columns[0].numeric == std::vector<double>{0.5, -1.25});
  CHECK_FALSE(data.obs.columns[0].is_integer);
  CHECK(data.obs.columns[1].numeric == std::vector<double>{-3, 300});
  CHECK(data.obs.columns[1].is_integer);
  CHECK(data.obs.columns[2].numeric == std::vector<double>{1, 0});
  CHECK(data.obs.columns[3].strings == std::vector<std::string>{"ab", "wxyz"});
  // float32 obsm reaches double exactly; the 1-D obsm entry is skipped, and said so.
  CHECK(data.obsm.at("X_umap").values ==
        std::vector<double>{double(0.1f), double(0.2f), double(0.3f), double(0.4f)});
  CHECK(data.obsm.at("X_pca").values == std::vector<double>{0.1, 0.2});
  CHECK(data.obsm.count("one_d") == 0);
  REQUIRE(data.source.skipped.size() == 1);
  CHECK(data.source.skipped[0].find("obsm/one_d") == 0);
}

TEST_CASE("h5ad reader: CSR with int64 indices and indptr, float64 data, gzip") {
  TempDir dir;
  const std::string path = dir.file("csr64.h5ad");
  const std::vector<double> s = {0, 2, 0, 0, 1, 0, 0, 0, 0, 3, 0, 5, 4, 0, 0, 0, 0, 0, 6, 7, 0, 0, 0, 8};
  const std::vector<double> u = {1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 4};
  raw::Sparse sm = raw::compress(4, 6, s), um = raw::compress(4, 6, u);
  for (raw::Sparse* m : {&sm, &um}) {
    m->index_type = H5T_STD_I64LE;
    m->indptr_type = H5T_STD_I64LE;
    m->data_type = H5T_IEEE_F64LE;
    m->gzip = true;
  }
  raw::csr_file(path, sm, um);
  const AnnData data = pv::io::read_h5ad(path);
  CHECK(data.layers.at("spliced").sparse);
  CHECK(to_dense(data.layers.at("spliced")) == s);
  CHECK(to_dense(data.layers.at("unspliced")) == u);
  CHECK(data.layers.at("spliced").nnz() == 8);
}

TEST_CASE("h5ad reader: CSC layers are converted to CSR") {
  TempDir dir;
  const std::string path = dir.file("csc.h5ad");
  const std::vector<double> s = {0, 2, 9, 1, 0, 0, 0, 3, 5, 0, 4, 0};  // 3 x 4
  const std::vector<double> u = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3};
  raw::csr_file(path, raw::compress(3, 4, s, true), raw::compress(3, 4, u, true));
  const AnnData data = pv::io::read_h5ad(path);
  const CountMatrix& spliced = data.layers.at("spliced");
  REQUIRE(spliced.sparse);
  CHECK(spliced.indptr == std::vector<int64_t>{0, 3, 4, 6});
  CHECK(spliced.indices == std::vector<int32_t>{1, 2, 3, 3, 0, 2});  // sorted within rows
  CHECK(to_dense(spliced) == s);
  CHECK(to_dense(data.layers.at("unspliced")) == u);
}

TEST_CASE("h5ad reader: uint16 and uint8 indices, integer data, int32 indptr") {
  TempDir dir;
  const std::string path = dir.file("u16.h5ad");
  std::vector<double> s(3 * 300, 0.0), u(3 * 300, 0.0);
  s[5] = 2;
  s[299] = 7;
  s[300 + 150] = 1;
  s[600 + 298] = 65535;
  u[1] = 3;
  u[600 + 2] = 4;
  raw::Sparse sm = raw::compress(3, 300, s), um = raw::compress(3, 300, u);
  sm.index_type = H5T_STD_U16LE;
  sm.data_type = H5T_STD_U16LE;
  um.index_type = H5T_STD_U8LE;  // max index 2 fits
  um.data_type = H5T_STD_I64LE;
  raw::csr_file(path, sm, um);
  const AnnData data = pv::io::read_h5ad(path);
  CHECK(to_dense(data.layers.at("spliced")) == s);
  CHECK(to_dense(data.layers.at("unspliced")) == u);
}

TEST_CASE("h5ad reader: anndata 0.7 legacy file (object-reference categories, h5sparse layers)") {
  TempDir dir;
  const std::string path = dir.file("legacy.h5ad");
  {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t obs = H5Gcreate2(file, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    raw::encoding(obs, "dataframe", "0.1.0");
    raw::attr_string(obs, "_index", "index");
    raw::attr_strings(obs, "column-order", {"cell_type", "batch"});
    H5Dclose(raw::strings_dataset(obs, "index", {"a", "b", "c"}));
    const hid_t categories = H5Gcreate2(obs, "__categories", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(raw::strings_dataset(categories, "cell_type", {"Alpha", "Beta"}));
    H5Dclose(raw::dataset(categories, "batch", H5T_STD_I64LE, {2}, {10, 20}));
    H5Gclose(categories);
    for (const char* column : {"cell_type", "batch"}) {
      const hid_t codes = raw::dataset(obs, column, H5T_STD_I8LE, {3},
                                       std::string(column) == "batch" ? std::vector<double>{1, 1, 0}
                                                                      : std::vector<double>{1, -1, 0});
      hobj_ref_t reference;
      H5Rcreate(&reference, file, ("obs/__categories/" + std::string(column)).c_str(), H5R_OBJECT, -1);
      const hid_t space = H5Screate(H5S_SCALAR);
      const hid_t attr = H5Acreate2(codes, "categories", H5T_STD_REF_OBJ, space, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(attr, H5T_STD_REF_OBJ, &reference);
      H5Aclose(attr);
      H5Sclose(space);
      H5Dclose(codes);
    }
    H5Gclose(obs);
    const hid_t var = H5Gcreate2(file, "var", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    raw::attr_string(var, "_index", "index");
    H5Dclose(raw::strings_dataset(var, "index", {"g0", "g1"}));
    H5Gclose(var);
    const hid_t layers = H5Gcreate2(file, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    raw::Sparse m = raw::compress(3, 2, {1, 0, 0, 2, 3, 0});
    m.legacy = true;
    raw::sparse(layers, "spliced", m);
    raw::sparse(layers, "unspliced", m);
    H5Gclose(layers);
    const hid_t uns = H5Gcreate2(file, "uns", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t params = H5Gcreate2(uns, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const double learning_rate = 0.01;
    const hid_t set = H5Dcreate2(params, "lr", H5T_IEEE_F64LE, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &learning_rate);
    H5Dclose(set);
    H5Sclose(scalar);
    H5Gclose(params);
    H5Gclose(uns);
    H5Fclose(file);
  }
  const AnnData data = pv::io::read_h5ad(path);
  CHECK(data.obs.index == std::vector<std::string>{"a", "b", "c"});
  const Column* cell_type = data.obs.find("cell_type");
  REQUIRE(cell_type);
  CHECK(cell_type->kind == Column::Kind::kCategorical);
  CHECK(cell_type->categories == std::vector<std::string>{"Alpha", "Beta"});
  CHECK(cell_type->codes == std::vector<int32_t>{1, -1, 0});
  const Column* batch = data.obs.find("batch");
  REQUIRE(batch);
  CHECK(batch->categories == std::vector<std::string>{"10", "20"});  // numeric categories
  CHECK(to_dense(data.layers.at("spliced")) == std::vector<double>{1, 0, 0, 2, 3, 0});
  CHECK(data.uns.dict.at("params").dict.at("lr").number == 0.01);
}

TEST_CASE("h5ad reader: 'auto' prefers raw_spliced/raw_unspliced and explicit names are honoured") {
  TempDir dir;
  const std::string path = dir.file("raw_layers.h5ad");
  const std::vector<double> raw_counts = {1, 2, 3, 4}, smoothed = {0.5, 1.5, 2.5, 3.5};
  raw::anndata_file(path, 2, 2, [&](hid_t layers) {
    raw::dense(layers, "raw_spliced", H5T_IEEE_F32LE, 2, 2, raw_counts);
    raw::dense(layers, "raw_unspliced", H5T_IEEE_F32LE, 2, 2, raw_counts);
    raw::dense(layers, "spliced", H5T_IEEE_F32LE, 2, 2, smoothed);
    raw::dense(layers, "unspliced", H5T_IEEE_F32LE, 2, 2, smoothed);
    raw::dense(layers, "Ms", H5T_IEEE_F32LE, 2, 2, raw_counts);
  });
  const AnnData automatic = pv::io::read_h5ad(path);
  CHECK(automatic.source.spliced_layer == "raw_spliced");
  CHECK(automatic.source.unspliced_layer == "raw_unspliced");
  CHECK(to_dense(automatic.layers.at("spliced")) == raw_counts);

  pv::io::ReadOptions options;
  options.spliced_layer = "spliced";
  options.unspliced_layer = "unspliced";
  options.allow_non_integer = true;
  const AnnData chosen = pv::io::read_h5ad(path, options);
  CHECK(chosen.source.spliced_layer == "spliced");
  CHECK(to_dense(chosen.layers.at("unspliced")) == smoothed);
  CHECK(chosen.layers.size() == 2);
}

TEST_CASE("h5ad reader: nullable integer, boolean and string columns") {
  TempDir dir;
  const std::string path = dir.file("nullable.h5ad");
  {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    raw::encoding(file, "anndata", "0.1.0");
    const hid_t obs = raw::dataframe(file, "obs", {"a", "b", "c"});
    H5Adelete(obs, "column-order");
    raw::attr_strings(obs, "column-order", {"count", "flag", "name", "complete"});
    const struct {
      const char* name;
      const char* encoding;
      std::vector<double> mask;
    } nullables[] = {{"count", "nullable-integer", {0, 1, 0}},
                     {"flag", "nullable-boolean", {0, 0, 1}},
                     {"complete", "nullable-integer", {0, 0, 0}}};
    for (const auto& n : nullables) {
      const hid_t g = raw::group(obs, n.name, n.encoding, "0.1.0");
      H5Dclose(raw::dataset(g, "values", H5T_STD_I32LE, {3}, {4, 5, 6}));
      H5Dclose(raw::dataset(g, "mask", H5T_STD_U8LE, {3}, n.mask));
      H5Gclose(g);
    }
    const hid_t g = raw::group(obs, "name", "nullable-string-array", "0.1.0");
    H5Dclose(raw::strings_dataset(g, "values", {"x", "y", "z"}));
    H5Dclose(raw::dataset(g, "mask", H5T_STD_U8LE, {3}, {1, 0, 0}));
    H5Gclose(g);
    H5Gclose(obs);
    H5Gclose(raw::dataframe(file, "var", {"g"}));
    const hid_t layers = raw::group(file, "layers", "dict", "0.1.0");
    raw::dense(layers, "spliced", H5T_IEEE_F32LE, 3, 1, {1, 2, 3});
    raw::dense(layers, "unspliced", H5T_IEEE_F32LE, 3, 1, {1, 2, 3});
    H5Gclose(layers);
    H5Fclose(file);
  }
  const AnnData data = pv::io::read_h5ad(path);
  const Column* count = data.obs.find("count");
  REQUIRE(count);
  CHECK(count->numeric[0] == 4);
  CHECK(std::isnan(count->numeric[1]));
  CHECK_FALSE(count->is_integer);
  CHECK(std::isnan(data.obs.find("flag")->numeric[2]));
  CHECK(data.obs.find("complete")->is_integer);
  CHECK(data.obs.find("name")->strings == std::vector<std::string>{"", "y", "z"});
}

TEST_CASE("h5ad library_sizes: obs u_lib_size_raw/s_lib_size_raw when present, else row sums") {
  AnnData data = sample();
  CHECK(pv::io::library_sizes(data, false) == std::vector<double>{4, 0, 7, 16777218});
  CHECK(pv::io::library_sizes(data, true) == std::vector<double>{3, 3, 6, 9});
  data.obs.columns.push_back(numeric("u_lib_size_raw", {10, 20, 30, 40}));
  CHECK(pv::io::library_sizes(data, true) == std::vector<double>{10, 20, 30, 40});
  CHECK(pv::io::library_sizes(data, false) == std::vector<double>{4, 0, 7, 16777218});
}

TEST_CASE("h5ad reader: the pancreas dataset (3696 cells x 2000 genes)") {
  const std::string path = PV_SHARED_DIR "/data/pancreas.h5ad";
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " is absent");
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const AnnData data = pv::io::read_h5ad(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("read pancreas.h5ad in " << seconds << " s");

  const CountMatrix& spliced = data.layers.at("spliced");
  const CountMatrix& unspliced = data.layers.at("unspliced");
  CHECK(spliced.rows == 3696);
  CHECK(spliced.cols == 2000);
  CHECK(spliced.sparse);
  CHECK(unspliced.sparse);
  // Counted with h5dump (the data datasets' extents) and summed once with this reader.
  CHECK(spliced.nnz() == 2464314);
  CHECK(unspliced.nnz() == 685379);
  double spliced_total = 0, unspliced_total = 0;
  for (float v : spliced.data) spliced_total += v;
  for (float v : unspliced.data) unspliced_total += v;
  CHECK(spliced_total == 8578934.0);
  CHECK(unspliced_total == 1770009.0);
  CHECK(data.obs.index.size() == 3696);
  CHECK(data.var.index.size() == 2000);

  const Column* clusters = data.obs.find("clusters");
  REQUIRE(clusters);
  CHECK(clusters->kind == Column::Kind::kCategorical);
  REQUIRE(clusters->categories.size() == 8);
  CHECK(clusters->categories[0] == "Ductal");
  CHECK(std::find(clusters->categories.begin(), clusters->categories.end(), "Ngn3 high EP") !=
        clusters->categories.end());
  REQUIRE(data.obsm.count("X_umap") == 1);
  CHECK(data.obsm.at("X_umap").rows == 3696);
  CHECK(data.obsm.at("X_umap").cols == 2);
  CHECK(data.obsm.at("X_pca").cols == 30);

  const std::vector<double> u_lib = pv::io::library_sizes(data, true);
  REQUIRE(u_lib.size() == 3696);
  CHECK(u_lib == data.obs.find("u_lib_size_raw")->numeric);
  CHECK(u_lib[0] == 1575);  // h5dump -d /obs/u_lib_size_raw
  CHECK(u_lib[1] == 978);

  pv::io::ReadOptions options;
  options.read_X = true;
  const AnnData with_x = pv::io::read_h5ad(path, options);
  REQUIRE(with_x.X);
  CHECK(with_x.X->nnz() == 2464314);

  const pv::io::H5adSummary summary = pv::io::describe_h5ad(path);
  CHECK(summary.n_obs == 3696);
  CHECK(summary.n_vars == 2000);
  REQUIRE(summary.layers.size() == 2);
  CHECK(summary.layers[0].encoding == "csr_matrix");
  CHECK(summary.layers[0].dtype == "float32");
  CHECK(summary.layers[1].nnz == 685379);
  CHECK(summary.obs_columns[0].n_categories == 8);
}

#else  // !PV_HDF5

TEST_CASE("h5ad: without HDF5 the file functions report PV_ERR_UNSUPPORTED") {
  pv_test::expect_error([] { pv::io::read_h5ad("x.h5ad"); }, PV_ERR_UNSUPPORTED, "no HDF5 support");
  pv_test::expect_error([] { pv::io::write_h5ad("x.h5ad", pv::io::AnnData()); }, PV_ERR_UNSUPPORTED,
                        "no HDF5 support");
}

#endif  // PV_HDF5

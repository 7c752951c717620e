// write_h5ad_with_additions: the output holds everything the input held (as stored), plus the
// additions; the input is untouched.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "test_h5ad_support.h"

#if PV_HDF5

using namespace pv_test;
using pv::io::Column;

namespace {

// 3 cells x 4 genes.
const std::vector<double> kCounts = {1, 0, 2, 0, 0, 0, 3, 1, 4, 0, 0, 0};

herr_t collect_path(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::set<std::string>*>(data)->insert(name);
  return 0;
}

std::set<std::string> all_paths(hid_t file) {
  std::set<std::string> paths;
  H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, collect_path, &paths);
  return paths;
}

// A numeric dataset's values as stored (native form of its own type), for exact comparison.
std::vector<unsigned char> numeric_bytes(hid_t file, const std::string& path) {
  const hid_t set = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  const hid_t type = H5Dget_type(set);
  const hid_t native = H5Tget_native_type(type, H5T_DIR_ASCEND);
  const hid_t space = H5Dget_space(set);
  std::vector<unsigned char> bytes(static_cast<size_t>(H5Sget_simple_extent_npoints(space)) * H5Tget_size(native));
  if (!bytes.empty()) H5Dread(set, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
  H5Sclose(space);
  H5Tclose(native);
  H5Tclose(type);
  H5Dclose(set);
  return bytes;
}

bool is_numeric_dataset(hid_t file, const std::string& path) {
  const hid_t object = H5Oopen(file, path.c_str(), H5P_DEFAULT);
  const bool dataset = H5Iget_type(object) == H5I_DATASET;
  H5Oclose(object);
  if (!dataset) return false;
  const hid_t set = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  const hid_t type = H5Dget_type(set);
  const H5T_class_t type_class = H5Tget_class(type);
  H5Tclose(type);
  H5Dclose(set);
  return type_class == H5T_INTEGER || type_class == H5T_FLOAT;
}

Column numeric(const std::string& name, std::vector<double> values) {
  Column c;
  c.name = name;
  c.numeric = std::move(values);
  return c;
}

// An input holding elements the AnnData type does not model (obsp, varm, raw, root attribute).
std::string rich_input(const TempDir& dir) {
  const std::string path = dir.file("input.h5ad");
  pv::io::AnnData data;
  raw::Sparse m = raw::compress(3, 4, kCounts);
  pv::io::CountMatrix counts;
  counts.rows = 3;
  counts.cols = 4;
  counts.sparse = true;
  for (double v : m.indptr) counts.indptr.push_back(static_cast<int64_t>(v));
  for (double v : m.indices) counts.indices.push_back(static_cast<int32_t>(v));
  for (double v : m.data) counts.data.push_back(static_cast<float>(v));
  data.layers["spliced"] = counts;
  data.layers["unspliced"] = counts;
  data.layers["Ms"] = counts;
  data.obs.index = {"a", "b", "c"};
  data.obs.columns.push_back(numeric("old", {1, 2, 3}));
  data.obs.columns.push_back(numeric("kept", {4, 5, 6}));
  data.uns.dict["source"].kind = pv::io::UnsValue::Kind::kString;
  data.uns.dict["source"].string = "original";
  pv::io::write_h5ad(path, data);

  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  raw::attr_string(file, "creator", "test");
  const hid_t obsp = H5Gopen2(file, "obsp", H5P_DEFAULT);
  raw::sparse(obsp, "connectivities", raw::compress(3, 3, {0, 0.5, 0, 0.5, 0, 0.25, 0, 0.25, 0}));
  H5Gclose(obsp);
  const hid_t varm = H5Gopen2(file, "varm", H5P_DEFAULT);
  raw::dense(varm, "PCs", H5T_IEEE_F32LE, 4, 2, {1, 2, 3, 4, 5, 6, 7, 8});
  H5Gclose(varm);
  const hid_t raw_group = raw::group(file, "raw", "raw", "0.1.0");
  raw::dense(raw_group, "X", H5T_IEEE_F64LE, 3, 4, kCounts);
  H5Gclose(raw_group);
  H5Fclose(file);
  return path;
}

}  // namespace

TEST_CASE("h5ad write_h5ad_with_additions keeps every original element and adds or replaces the new ones") {
  TempDir dir;
  const std::string input = rich_input(dir);
  const std::string before = file_bytes(input);
  const std::string output = dir.file("output.h5ad");

  pv::io::Additions add;
  add.obs_columns.push_back(numeric("latent_time", {0.1, 0.5, 0.9}));
  Column replaced;
  replaced.name = "old";
  replaced.kind = Column::Kind::kCategorical;
  replaced.codes = {0, 1, 0};
  replaced.categories = {"early", "late"};
  add.obs_columns.push_back(replaced);
  add.var_columns.push_back(numeric("fit_alpha", {1, 2, 3, 4}));
  add.layers["velocity"] = {3, 4, std::vector<float>(12, 0.25f)};
  add.layers["Ms"] = {3, 4, std::vector<float>(12, 7.0f)};
  add.obsm["velocity_umap"] = {3, 2, {1, 2, 3, 4, 5, 6}};
  pv::io::CountMatrix& graph = add.obsp["connectivities"];  // a 3 x 3 cell graph
  graph.rows = graph.cols = 3;
  graph.sparse = true;
  graph.indptr = {0, 1, 2, 2};
  graph.indices = {1, 0};
  graph.data = {0.5f, 0.5f};
  add.uns["source"].kind = pv::io::UnsValue::Kind::kString;
  add.uns["source"].string = "replaced";
  add.uns["pyrovelocity"].kind = pv::io::UnsValue::Kind::kDict;
  add.uns["pyrovelocity"].dict["elbo"].kind = pv::io::UnsValue::Kind::kNumberArray;
  add.uns["pyrovelocity"].dict["elbo"].numbers = {-10, -5, -4.5};

  pv::io::write_h5ad_with_additions(input, output, add);
  CHECK(file_bytes(input) == before);
  auto listing = dir.listing();
  std::sort(listing.begin(), listing.end());
  CHECK(listing == std::vector<std::string>{"input.h5ad", "output.h5ad"});

  const hid_t in = H5Fopen(input.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t out = H5Fopen(output.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const std::set<std::string> input_paths = all_paths(in), output_paths = all_paths(out);
  const std::set<std::string> changed = {"obs/old", "layers/Ms", "obsp/connectivities", "uns/source"};
  for (const std::string& path : input_paths) {
    INFO(path);
    bool inside_replaced = false;  // e.g. layers/Ms/data: Ms is now a dense array
    for (const std::string& c : changed) inside_replaced = inside_replaced || path.rfind(c + "/", 0) == 0;
    if (inside_replaced) continue;
    CHECK(output_paths.count(path) == 1);
    if (!changed.count(path) && is_numeric_dataset(in, path)) {
      CHECK(numeric_bytes(in, path) == numeric_bytes(out, path));
    }
  }
  for (const char* added : {"obs/latent_time", "obs/old/codes", "var/fit_alpha", "layers/velocity",
                            "obsm/velocity_umap", "obsp/connectivities/indptr", "uns/pyrovelocity/elbo"}) {
    CHECK_MESSAGE(output_paths.count(added) == 1, added);
  }
  CHECK(H5Aexists(out, "creator") > 0);
  H5Fclose(out);
  H5Fclose(in);

  pv::io::ReadOptions options;
  options.read_X = true;
  const pv::io::AnnData result = pv::io::read_h5ad(output, options);
  REQUIRE(result.obs.columns.size() == 3);
  CHECK(result.obs.columns[0].name == "old");  // keeps its place in column-order
  CHECK(result.obs.columns[0].kind == Column::Kind::kCategorical);
  CHECK(result.obs.columns[0].categories == std::vector<std::string>{"early", "late"});
  CHECK(result.obs.columns[1].name == "kept");
  CHECK(result.obs.columns[1].numeric == std::vector<double>{4, 5, 6});
  CHECK(result.obs.columns[2].name == "latent_time");
  CHECK(result.obs.index == std::vector<std::string>{"a", "b", "c"});
  CHECK(result.var.find("fit_alpha")->numeric == std::vector<double>{1, 2, 3, 4});
  CHECK(result.obsm.at("velocity_umap").values == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(result.uns.dict.at("source").string == "replaced");
  CHECK(result.uns.dict.at("pyrovelocity").dict.at("elbo").numbers == std::vector<double>{-10, -5, -4.5});
  CHECK(result.layers.at("spliced").data == std::vector<float>{1, 2, 3, 1, 4});

  pv::io::ReadOptions ms;
  ms.spliced_layer = "Ms";
  ms.unspliced_layer = "velocity";
  ms.allow_non_integer = true;
  const pv::io::AnnData layers = pv::io::read_h5ad(output, ms);
  CHECK(layers.layers.at("spliced").dense == std::vector<float>(12, 7.0f));
  CHECK(layers.layers.at("unspliced").dense == std::vector<float>(12, 0.25f));

  const pv::io::H5adSummary summary = pv::io::describe_h5ad(output);
  REQUIRE(summary.obsp.size() == 1);
  CHECK(summary.obsp[0].encoding == "csr_matrix");
  CHECK(summary.obsp[0].shape == std::vector<int64_t>{3, 3});
  CHECK(summary.obsp[0].nnz == 2);

  // A cell graph that is not n_obs x n_obs, or whose structure is broken, is refused before writing.
  pv::io::Additions wrong;
  wrong.obsp["connectivities"] = graph;
  wrong.obsp["connectivities"].cols = 4;
  CHECK_THROWS_WITH_AS(pv::io::write_h5ad_with_additions(input, dir.file("wrong.h5ad"), wrong),
                       doctest::Contains("obsp/connectivities is 3 x 4 (expected 3 x 3)"), pv::Error);
  wrong.obsp["connectivities"] = graph;
  wrong.obsp["connectivities"].indices = {1, 3};
  CHECK_THROWS_AS(pv::io::write_h5ad_with_additions(input, dir.file("wrong.h5ad"), wrong), pv::Error);
  CHECK_FALSE(std::filesystem::exists(dir.file("wrong.h5ad")));

  // Running again on the output (replacing what the first run added) works the same way.
  const std::string second = dir.file("second.h5ad");
  pv::io::write_h5ad_with_additions(output, second, add);
  CHECK(pv::io::read_h5ad(second).obs.columns.size() == 3);
  CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("h5ad write_h5ad_with_additions on an anndata 0.7 file keeps object-reference categories valid") {
  TempDir dir;
  const std::string input = dir.file("legacy.h5ad");
  {
    const hid_t file = H5Fcreate(input.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t obs = H5Gcreate2(file, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    raw::attr_string(obs, "_index", "index");
    raw::attr_strings(obs, "column-order", {"cell_type", "batch"});
    H5Dclose(raw::strings_dataset(obs, "index", {"a", "b", "c"}));
    const hid_t categories = H5Gcreate2(obs, "__categories", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(raw::strings_dataset(categories, "cell_type", {"Alpha", "Beta"}));
    H5Dclose(raw::strings_dataset(categories, "batch", {"b1", "b2"}));
    H5Gclose(categories);
    for (const char* column : {"cell_type", "batch"}) {
      const hid_t codes = raw::dataset(obs, column, H5T_STD_I8LE, {3}, {1, 0, 1});
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
    H5Dclose(raw::strings_dataset(var, "index", {"g0", "g1", "g2", "g3"}));
    H5Gclose(var);
    const hid_t layers = H5Gcreate2(file, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    raw::sparse(layers, "spliced", raw::compress(3, 4, kCounts));
    raw::sparse(layers, "unspliced", raw::compress(3, 4, kCounts));
    H5Gclose(layers);
    H5Fclose(file);
  }
  const std::string before = file_bytes(input);

  SUBCASE("a new column: the obs group is copied whole") {
    pv::io::Additions add;
    add.obs_columns.push_back(numeric("latent_time", {0.1, 0.2, 0.3}));
    const std::string output = dir.file("added.h5ad");
    pv::io::write_h5ad_with_additions(input, output, add);
    const pv::io::AnnData result = pv::io::read_h5ad(output);
    CHECK(result.obs.find("cell_type")->categories == std::vector<std::string>{"Alpha", "Beta"});
    CHECK(result.obs.find("batch")->categories == std::vector<std::string>{"b1", "b2"});
    CHECK(result.obs.find("latent_time")->numeric == std::vector<double>{0.1, 0.2, 0.3});
  }
  SUBCASE("a replaced legacy column: the others still resolve their categories") {
    pv::io::Additions add;
    add.obs_columns.push_back(numeric("cell_type", {7, 8, 9}));
    const std::string output = dir.file("replaced.h5ad");
    pv::io::write_h5ad_with_additions(input, output, add);
    const pv::io::AnnData result = pv::io::read_h5ad(output);
    CHECK(result.obs.find("cell_type")->numeric == std::vector<double>{7, 8, 9});
    CHECK(result.obs.find("batch")->categories == std::vector<std::string>{"b1", "b2"});
    CHECK(result.obs.find("batch")->codes == std::vector<int32_t>{1, 0, 1});
  }
  CHECK(file_bytes(input) == before);
}

#endif  // PV_HDF5

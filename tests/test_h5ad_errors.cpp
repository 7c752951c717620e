// Every bad input the h5ad reader and writers refuse: the status, a distinctive part of the
// message, and that the input file is byte-for-byte unchanged afterwards.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "test_h5ad_support.h"

#if PV_HDF5

using namespace pv_test;
using pv::io::ReadOptions;

namespace {

// 3 cells x 4 genes.
const std::vector<double> kCounts = {1, 0, 2, 0, 0, 0, 3, 1, 4, 0, 0, 0};

raw::Sparse good() { return raw::compress(3, 4, kCounts); }

void expect_read_error(const std::string& path, const ReadOptions& options, pv_status status,
                       const std::string& fragment) {
  const bool exists = std::filesystem::is_regular_file(path);
  const std::string before = exists ? file_bytes(path) : "";
  expect_error([&] { pv::io::read_h5ad(path, options); }, status, fragment);
  if (exists) CHECK_MESSAGE(file_bytes(path) == before, path << " was modified");
  CHECK_MESSAGE(open_hdf5_objects() == 0, "HDF5 handles leaked reading " << path);
}

void expect_read_error(const std::string& path, pv_status status, const std::string& fragment) {
  expect_read_error(path, ReadOptions(), status, fragment);
}

// A CSR spliced layer with `bad` and a good unspliced layer.
std::string csr_fixture(const TempDir& dir, const std::string& name, const raw::Sparse& bad) {
  const std::string path = dir.file(name);
  raw::csr_file(path, bad, good());
  return path;
}

}  // namespace

TEST_CASE("h5ad reader refuses files that are missing, not HDF5 or not AnnData") {
  TempDir dir;
  expect_read_error(dir.file("absent.h5ad"), PV_ERR_IO, "absent.h5ad: no such file");
  expect_read_error(dir.path().string(), PV_ERR_IO, "is a directory");

  const std::string text = dir.file("counts.csv");
  write_bytes(text, "cell,gene,count\nc0,g0,1\n");
  expect_read_error(text, PV_ERR_FORMAT, "counts.csv is not an HDF5 file");

  const std::string plain = dir.file("plain.h5");
  {
    const hid_t file = H5Fcreate(plain.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(file, "matrix", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(file);
  }
  expect_read_error(plain, PV_ERR_FORMAT, "is an HDF5 file but not AnnData: it has no 'obs' (top level holds: matrix)");

  const std::string whole = csr_fixture(dir, "whole.h5ad", good());
  const std::string bytes = file_bytes(whole);
  const std::string truncated = dir.file("truncated.h5ad");
  write_bytes(truncated, bytes.substr(0, bytes.size() / 2));
  expect_read_error(truncated, PV_ERR_FORMAT, "truncated.h5ad");

  const std::string unreadable = dir.file("unreadable.h5ad");
  write_bytes(unreadable, bytes);
  ::chmod(unreadable.c_str(), 0);
  if (::geteuid() != 0) {
    expect_read_error(unreadable, PV_ERR_IO, "cannot open");
  } else {
    MESSAGE("running as root: an unreadable file cannot be simulated with chmod");
  }
}

TEST_CASE("h5ad io prints nothing and restores the caller's HDF5 error handler") {
  TempDir dir;
  H5E_auto2_t handler_before = nullptr;
  void* data_before = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &handler_before, &data_before);
  const std::string text = dir.file("not_hdf5.h5ad");
  write_bytes(text, "plain text");
  expect_read_error(text, PV_ERR_FORMAT, "not an HDF5 file");
  H5E_auto2_t handler_after = nullptr;
  void* data_after = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &handler_after, &data_after);
  CHECK((handler_after == handler_before));
  CHECK((data_after == data_before));
}

TEST_CASE("h5ad reader refuses a missing layer and lists the layers that exist") {
  TempDir dir;
  const std::string path = csr_fixture(dir, "layers.h5ad", good());
  ReadOptions options;
  options.spliced_layer = "Ms";
  expect_read_error(path, options, PV_ERR_INVALID_ARGUMENT,
                    "layers/Ms: no such layer (the spliced counts); layers in the file: spliced, unspliced");

  const std::string no_layers = dir.file("no_layers.h5ad");
  {
    const hid_t file = H5Fcreate(no_layers.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(raw::dataframe(file, "obs", raw::names("c", 3)));
    H5Gclose(raw::dataframe(file, "var", raw::names("g", 4)));
    H5Fclose(file);
  }
  expect_read_error(no_layers, PV_ERR_INVALID_ARGUMENT, "looked up automatically); layers in the file: none");
}

TEST_CASE("h5ad reader refuses shapes that disagree") {
  TempDir dir;
  raw::Sparse wider = raw::compress(3, 5, {1, 0, 2, 0, 1, 0, 0, 3, 1, 0, 4, 0, 0, 0, 0});
  const std::string mismatch = dir.file("mismatch.h5ad");
  raw::csr_file(mismatch, good(), wider, 3, 4);
  expect_read_error(mismatch, PV_ERR_INVALID_ARGUMENT, "is 3 x 4 but unspliced layer 'unspliced' is 3 x 5");

  const std::string frames = dir.file("frames.h5ad");
  raw::csr_file(frames, good(), good(), 3, 5);
  expect_read_error(frames, PV_ERR_FORMAT, "layers/spliced is 3 x 4 but obs has 3 rows and var has 5");

  const std::string no_cells = dir.file("no_cells.h5ad");
  raw::Sparse empty_rows;
  empty_rows.rows = 0;
  empty_rows.cols = 4;
  empty_rows.indptr = {0};
  raw::csr_file(no_cells, empty_rows, empty_rows);
  expect_read_error(no_cells, PV_ERR_INVALID_ARGUMENT, "has 0 cells x 4 genes (needs at least one cell and one gene)");

  const std::string no_genes = dir.file("no_genes.h5ad");
  raw::Sparse empty_cols;
  empty_cols.rows = 3;
  empty_cols.cols = 0;
  empty_cols.indptr = {0, 0, 0, 0};
  raw::csr_file(no_genes, empty_cols, empty_cols);
  expect_read_error(no_genes, PV_ERR_INVALID_ARGUMENT, "has 3 cells x 0 genes");

  const std::string one_d = dir.file("one_d.h5ad");
  raw::anndata_file(one_d, 3, 4, [](hid_t layers) {
    raw::numbers(layers, "spliced", H5T_IEEE_F32LE, {1, 2, 3});
    raw::dense(layers, "unspliced", H5T_IEEE_F32LE, 3, 4, kCounts);
  });
  expect_read_error(one_d, PV_ERR_FORMAT, "layers/spliced is a 1-D array (expected a 2-D cells x genes matrix)");
}

TEST_CASE("h5ad reader refuses broken CSR and CSC structure") {
  TempDir dir;
  raw::Sparse start = good();
  start.indptr[0] = 1;
  expect_read_error(csr_fixture(dir, "start.h5ad", start), PV_ERR_INVALID_ARGUMENT,
                    "layers/spliced/indptr[0] is 1 (indptr must start at 0)");

  raw::Sparse decreasing = good();  // indptr {0, 2, 4, 5}
  decreasing.indptr[2] = 1;
  expect_read_error(csr_fixture(dir, "decreasing.h5ad", decreasing), PV_ERR_INVALID_ARGUMENT,
                    "indptr[2] = 1 is less than");

  raw::Sparse short_end = good();
  short_end.indptr.back() = 4;
  expect_read_error(csr_fixture(dir, "end.h5ad", short_end), PV_ERR_INVALID_ARGUMENT,
                    "layers/spliced/indptr ends at 4 but");

  raw::Sparse wrong_length = good();
  wrong_length.indptr.pop_back();
  expect_read_error(csr_fixture(dir, "length.h5ad", wrong_length), PV_ERR_INVALID_ARGUMENT,
                    "indptr has 3 entries (expected 4");

  raw::Sparse out_of_range = good();
  out_of_range.indices[1] = 4;
  expect_read_error(csr_fixture(dir, "range.h5ad", out_of_range), PV_ERR_INVALID_ARGUMENT,
                    "layers/spliced/indices[1] = 4 (in row 0) is out of range for 4 columns");

  raw::Sparse negative_index = good();
  negative_index.indices[0] = -1;
  expect_read_error(csr_fixture(dir, "negative_index.h5ad", negative_index), PV_ERR_INVALID_ARGUMENT,
                    "indices[0] = -1 (in row 0) is out of range");

  raw::Sparse wide_index = good();  // int64 indices beyond int32: range-checked before narrowing
  wide_index.index_type = H5T_STD_I64LE;
  wide_index.indices[2] = 4294967296.0;
  expect_read_error(csr_fixture(dir, "wide.h5ad", wide_index), PV_ERR_INVALID_ARGUMENT,
                    "indices[2] = 4294967296 (in row 1) is out of range");

  raw::Sparse csc = raw::compress(3, 4, kCounts, true);
  csc.indices[0] = 3;
  const std::string csc_path = dir.file("csc.h5ad");
  raw::csr_file(csc_path, csc, good());
  expect_read_error(csc_path, PV_ERR_INVALID_ARGUMENT, "(in column 0) is out of range for 3 rows");

  raw::Sparse data_short = good();
  data_short.data.pop_back();
  expect_read_error(csr_fixture(dir, "data.h5ad", data_short), PV_ERR_INVALID_ARGUMENT,
                    "layers/spliced/data has 4 entries but");

  const std::string missing_part = dir.file("missing_part.h5ad");
  raw::csr_file(missing_part, good(), good());
  {
    const hid_t file = H5Fopen(missing_part.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "layers/unspliced/indices", H5P_DEFAULT);
    H5Fclose(file);
  }
  expect_read_error(missing_part, PV_ERR_FORMAT, "layers/unspliced is a csr_matrix without a 'indices' dataset");
}

TEST_CASE("h5ad reader refuses negative, NaN, infinite and (unless allowed) non-integer counts") {
  TempDir dir;
  raw::Sparse negative = good();
  negative.data[2] = -1;
  expect_read_error(csr_fixture(dir, "negative.h5ad", negative), PV_ERR_INVALID_ARGUMENT,
                    "layers/spliced/data[2] = -1 (cell 1, gene 2): counts must be >= 0");

  raw::Sparse nan = good();
  nan.data[0] = std::nan("");
  expect_read_error(csr_fixture(dir, "nan.h5ad", nan), PV_ERR_INVALID_ARGUMENT,
                    "data[0] = nan (cell 0, gene 0): must be finite");

  raw::Sparse inf = good();
  inf.data[4] = std::numeric_limits<double>::infinity();
  expect_read_error(csr_fixture(dir, "inf.h5ad", inf), PV_ERR_INVALID_ARGUMENT,
                    "data[4] = inf (cell 2, gene 0): must be finite");

  raw::Sparse fraction = good();
  fraction.data[1] = 0.5;
  const std::string fraction_path = csr_fixture(dir, "fraction.h5ad", fraction);
  expect_read_error(fraction_path, PV_ERR_INVALID_ARGUMENT,
                    "data[1] = 0.5 (cell 0, gene 2): not a whole number (raw integer counts expected; "
                    "set ReadOptions::allow_non_integer to accept non-integer values)");
  ReadOptions allow;
  allow.allow_non_integer = true;
  CHECK(pv::io::read_h5ad(fraction_path, allow).layers.at("spliced").data[1] == 0.5f);

  // float64 data is checked before narrowing to float: 2 + 1e-9 is not mistaken for 2.
  raw::Sparse nearly = good();
  nearly.data_type = H5T_IEEE_F64LE;
  nearly.data[3] = 2.000000001;
  expect_read_error(csr_fixture(dir, "nearly.h5ad", nearly), PV_ERR_INVALID_ARGUMENT,
                    "data[3] = 2.000000001");

  const std::string dense = dir.file("dense_negative.h5ad");
  raw::anndata_file(dense, 3, 4, [](hid_t layers) {
    std::vector<double> values = kCounts;
    values[6] = -2;
    raw::dense(layers, "spliced", H5T_STD_I32LE, 3, 4, kCounts);
    raw::dense(layers, "unspliced", H5T_STD_I32LE, 3, 4, values);
  });
  expect_read_error(dense, PV_ERR_INVALID_ARGUMENT, "layers/unspliced[6] = -2 (cell 1, gene 2)");
}

TEST_CASE("h5ad reader refuses malformed obs/var columns") {
  TempDir dir;
  const std::string short_column = dir.file("short_column.h5ad");
  raw::csr_file(short_column, good(), good());
  {
    const hid_t file = H5Fopen(short_column.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t obs = H5Gopen2(file, "obs", H5P_DEFAULT);
    H5Adelete(obs, "column-order");
    raw::attr_strings(obs, "column-order", {"score"});
    raw::numbers(obs, "score", H5T_IEEE_F64LE, {1, 2});
    H5Gclose(obs);
    H5Fclose(file);
  }
  expect_read_error(short_column, PV_ERR_FORMAT, "obs/score has shape (2) (expected 3 values");

  const std::string bad_code = dir.file("bad_code.h5ad");
  raw::csr_file(bad_code, good(), good());
  {
    const hid_t file = H5Fopen(bad_code.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t obs = H5Gopen2(file, "obs", H5P_DEFAULT);
    H5Adelete(obs, "column-order");
    raw::attr_strings(obs, "column-order", {"clusters"});
    const hid_t g = raw::group(obs, "clusters", "categorical", "0.2.0");
    raw::strings(g, "categories", {"a", "b"});
    raw::numbers(g, "codes", H5T_STD_I8LE, {0, 2, -1});
    H5Gclose(g);
    H5Gclose(obs);
    H5Fclose(file);
  }
  expect_read_error(bad_code, PV_ERR_FORMAT, "obs/clusters/codes[1] = 2 is not a valid code for 2 categories");

  const std::string listed = dir.file("listed.h5ad");
  raw::csr_file(listed, good(), good());
  {
    const hid_t file = H5Fopen(listed.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t var = H5Gopen2(file, "var", H5P_DEFAULT);
    H5Adelete(var, "column-order");
    raw::attr_strings(var, "column-order", {"gone"});
    H5Gclose(var);
    H5Fclose(file);
  }
  expect_read_error(listed, PV_ERR_FORMAT, "var: column 'gone' is listed in column-order but absent");
}

TEST_CASE("h5ad writers refuse bad output paths before writing anything") {
  TempDir dir;
  const std::string input = csr_fixture(dir, "input.h5ad", good());
  const std::string before = file_bytes(input);
  pv::io::Additions nothing;

  expect_error([&] { pv::io::write_h5ad_with_additions(input, input, nothing); },
               PV_ERR_INVALID_ARGUMENT, "is the input file");
  const std::string respelled = (dir.path() / ".." / dir.path().filename() / "input.h5ad").string();
  expect_error([&] { pv::io::write_h5ad_with_additions(input, respelled, nothing); },
               PV_ERR_INVALID_ARGUMENT, "is the input file");
  const std::string symlink = dir.file("link.h5ad");
  std::filesystem::create_symlink(input, symlink);
  expect_error([&] { pv::io::write_h5ad_with_additions(input, symlink, nothing); },
               PV_ERR_INVALID_ARGUMENT, "is the input file");
  const std::string hardlink = dir.file("hard.h5ad");
  std::filesystem::create_hard_link(input, hardlink);
  expect_error([&] { pv::io::write_h5ad_with_additions(input, hardlink, nothing); },
               PV_ERR_INVALID_ARGUMENT, "is the input file");
  std::filesystem::remove(symlink);
  std::filesystem::remove(hardlink);

  const std::string missing_dir = (dir.path() / "no" / "such" / "dir").string();
  expect_error([&] { pv::io::write_h5ad_with_additions(input, missing_dir + "/out.h5ad", nothing); },
               PV_ERR_IO, "directory '" + missing_dir + "' does not exist");
  expect_error([&] { pv::io::write_h5ad(missing_dir + "/out.h5ad", pv::io::AnnData()); }, PV_ERR_IO,
               "directory '" + missing_dir + "' does not exist");
  expect_error([&] { pv::io::write_h5ad(input + "/out.h5ad", pv::io::AnnData()); }, PV_ERR_IO,
               "'" + input + "' is not a directory");

  const std::filesystem::path locked = dir.path() / "locked";
  std::filesystem::create_directory(locked);
  ::chmod(locked.c_str(), 0555);
  if (::geteuid() != 0) {
    expect_error([&] { pv::io::write_h5ad_with_additions(input, (locked / "out.h5ad").string(), nothing); },
                 PV_ERR_IO, "directory '" + locked.string() + "' is not writable");
  } else {
    MESSAGE("running as root: an unwritable directory cannot be simulated with chmod");
  }
  ::chmod(locked.c_str(), 0755);
  std::filesystem::remove(locked);

  expect_error([&] { pv::io::write_h5ad_with_additions(dir.file("absent.h5ad"), dir.file("out.h5ad"), nothing); },
               PV_ERR_IO, "absent.h5ad: no such file");
  CHECK(file_bytes(input) == before);
  CHECK(dir.listing() == std::vector<std::string>{"input.h5ad"});
}

TEST_CASE("h5ad writers refuse inconsistent data and leave no file behind") {
  TempDir dir;
  const std::string input = csr_fixture(dir, "input.h5ad", good());
  const std::string before = file_bytes(input);

  pv::io::Additions wrong_layer;
  wrong_layer.layers["velocity"].rows = 3;
  wrong_layer.layers["velocity"].cols = 5;
  wrong_layer.layers["velocity"].values.assign(15, 0.0f);
  expect_error([&] { pv::io::write_h5ad_with_additions(input, dir.file("out.h5ad"), wrong_layer); },
               PV_ERR_INVALID_ARGUMENT, "out.h5ad: layers/velocity is 3 x 5 (expected 3 x 4)");

  pv::io::Additions short_column;
  pv::io::Column column;
  column.name = "latent_time";
  column.numeric = {0.1, 0.2};
  short_column.obs_columns.push_back(column);
  expect_error([&] { pv::io::write_h5ad_with_additions(input, dir.file("out.h5ad"), short_column); },
               PV_ERR_INVALID_ARGUMENT, "obs column 'latent_time' has 2 values (expected 3)");

  pv::io::Additions bad_name;
  bad_name.obsm["a/b"].rows = 3;
  expect_error([&] { pv::io::write_h5ad_with_additions(input, dir.file("out.h5ad"), bad_name); },
               PV_ERR_INVALID_ARGUMENT, "obsm key 'a/b' is not a valid element name");

  pv::io::AnnData bad_csr;
  bad_csr.layers["spliced"].rows = 2;
  bad_csr.layers["spliced"].cols = 2;
  bad_csr.layers["spliced"].sparse = true;
  bad_csr.layers["spliced"].indptr = {0, 2, 1};
  bad_csr.layers["spliced"].indices = {0, 1};
  bad_csr.layers["spliced"].data = {1, 1};
  expect_error([&] { pv::io::write_h5ad(dir.file("bad.h5ad"), bad_csr); }, PV_ERR_INVALID_ARGUMENT,
               "layers/spliced indptr[2] = 1 is less than");

  // A failure after the temporary file exists (the input's "layers" is not a group) removes it.
  const std::string odd = dir.file("odd.h5ad");
  {
    const hid_t file = H5Fcreate(odd.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(raw::dataframe(file, "obs", raw::names("c", 3)));
    H5Gclose(raw::dataframe(file, "var", raw::names("g", 4)));
    raw::numbers(file, "layers", H5T_IEEE_F64LE, {1});
    H5Fclose(file);
  }
  pv::io::Additions good_layer;
  good_layer.layers["velocity"].rows = 3;
  good_layer.layers["velocity"].cols = 4;
  good_layer.layers["velocity"].values.assign(12, 1.0f);
  expect_error([&] { pv::io::write_h5ad_with_additions(odd, dir.file("out.h5ad"), good_layer); },
               PV_ERR_FORMAT, "out.h5ad: layers exists but is not a group");

  CHECK(file_bytes(input) == before);
  auto listing = dir.listing();
  std::sort(listing.begin(), listing.end());
  CHECK(listing == std::vector<std::string>{"input.h5ad", "odd.h5ad"});
  CHECK(open_hdf5_objects() == 0);
}

#endif  // PV_HDF5

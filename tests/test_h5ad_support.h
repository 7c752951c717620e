// Shared by the test_h5ad*.cpp files: a temporary directory, file bytes, error expectations, and
// fixture files written with raw libhdf5 calls (independent of the writer under test).
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/error.h"
#include "pv_build_config.h"

#if PV_HDF5
#include <hdf5.h>
#endif

namespace pv_test {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("pvengine-test-h5ad-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }
  // Names in the directory, to show that no temporary or partial output was left behind.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

 private:
  std::filesystem::path path_;
};

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// Runs `call`, expecting a pv::Error with this status and message fragment.
template <class Call>
void expect_error(Call&& call, pv_status status, const std::string& fragment) {
  try {
    call();
    FAIL("no error thrown; expected status " << status << " with '" << fragment << "'");
  } catch (const pv::Error& e) {
    CHECK_MESSAGE(e.status() == status, "status " << e.status() << ": " << e.what());
    CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos,
                  "message '" << e.what() << "' lacks '" << fragment << "'");
  }
}

#if PV_HDF5
// HDF5 files, groups, datasets, attributes and named types still open in this process: 0 after
// any io call, successful or not.
inline ssize_t open_hdf5_objects() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

// ---- Raw libhdf5 fixture writing -----------------------------------------------------------
namespace raw {

inline void attr_string(hid_t object, const char* name, const std::string& value,
                        bool fixed_length = false) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  if (fixed_length) {
    H5Tset_size(type, value.empty() ? 1 : value.size());
    H5Tset_strpad(type, H5T_STR_NULLPAD);
  } else {
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
  }
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* pointer = value.c_str();
  if (fixed_length) {
    std::string padded = value;
    padded.resize(H5Tget_size(type), '\0');
    H5Awrite(attr, type, padded.data());
  } else {
    H5Awrite(attr, type, &pointer);
  }
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

inline void attr_strings(hid_t object, const char* name, const std::vector<std::string>& values) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hsize_t dims[1] = {values.size()};
  const hid_t space = H5Screate_simple(1, dims, nullptr);
  const hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  if (!values.empty()) H5Awrite(attr, type, pointers.data());
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

inline void attr_int64s(hid_t object, const char* name, const std::vector<int64_t>& values) {
  const hsize_t dims[1] = {values.size()};
  const hid_t space = H5Screate_simple(1, dims, nullptr);
  const hid_t attr = H5Acreate2(object, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, H5T_NATIVE_INT64, values.data());
  H5Aclose(attr);
  H5Sclose(space);
}

inline void encoding(hid_t object, const char* type, const char* version, bool fixed = false) {
  attr_string(object, "encoding-type", type, fixed);
  attr_string(object, "encoding-version", version, fixed);
}

// A dataset of `file_type` with `dims`, from doubles (HDF5 converts to the file type).
inline hid_t dataset(hid_t loc, const char* name, hid_t file_type, const std::vector<hsize_t>& dims,
                     const std::vector<double>& values, bool gzip = false) {
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  if (gzip && !values.empty()) {
    std::vector<hsize_t> chunk(dims);
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], 7));
    H5Pset_chunk(properties, static_cast<int>(chunk.size()), chunk.data());
    H5Pset_deflate(properties, 6);
  }
  const hid_t set = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, properties, H5P_DEFAULT);
  if (!values.empty()) H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Pclose(properties);
  H5Sclose(space);
  return set;
}

inline void numbers(hid_t loc, const char* name, hid_t file_type, const std::vector<double>& values,
                    bool gzip = false, const char* encoding_type = "array") {
  const hid_t set = dataset(loc, name, file_type, {values.size()}, values, gzip);
  if (encoding_type) encoding(set, encoding_type, "0.2.0");
  H5Dclose(set);
}

inline hid_t strings_dataset(hid_t loc, const char* name, const std::vector<std::string>& values) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hsize_t dims[1] = {values.size()};
  const hid_t space = H5Screate_simple(1, dims, nullptr);
  const hid_t set = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  if (!values.empty()) H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data());
  H5Sclose(space);
  H5Tclose(type);
  return set;
}

inline void strings(hid_t loc, const char* name, const std::vector<std::string>& values) {
  const hid_t set = strings_dataset(loc, name, values);
  encoding(set, "string-array", "0.2.0");
  H5Dclose(set);
}

inline hid_t group(hid_t loc, const char* name, const char* encoding_type = nullptr,
                   const char* version = nullptr) {
  const hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (encoding_type) encoding(g, encoding_type, version);
  return g;
}

inline std::vector<std::string> names(const char* prefix, int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// A dataframe 0.2.0 group with string index `_index` and no columns; returns the open group.
inline hid_t dataframe(hid_t file, const char* name, const std::vector<std::string>& index,
                       bool fixed_length_attrs = false) {
  const hid_t frame = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  encoding(frame, "dataframe", "0.2.0", fixed_length_attrs);
  attr_string(frame, "_index", "_index", fixed_length_attrs);
  const hsize_t zero[1] = {0};
  const hid_t space = H5Screate_simple(1, zero, nullptr);
  H5Aclose(H5Acreate2(frame, "column-order", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT));
  H5Sclose(space);
  strings(frame, "_index", index);
  return frame;
}

// A compressed sparse matrix (CSR, or CSC with csc = true) in group loc/name.
struct Sparse {
  int64_t rows = 0, cols = 0;
  std::vector<double> indptr, indices, data;
  hid_t data_type = H5T_IEEE_F32LE, index_type = H5T_STD_I32LE, indptr_type = H5T_STD_I32LE;
  bool csc = false, gzip = false;
  bool legacy = false;  // anndata < 0.7: h5sparse_format / h5sparse_shape instead of encoding
};

inline void sparse(hid_t loc, const char* name, const Sparse& m) {
  const hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (m.legacy) {
    attr_string(g, "h5sparse_format", m.csc ? "csc" : "csr");
    attr_int64s(g, "h5sparse_shape", {m.rows, m.cols});
  } else {
    encoding(g, m.csc ? "csc_matrix" : "csr_matrix", "0.1.0");
    attr_int64s(g, "shape", {m.rows, m.cols});
  }
  H5Dclose(dataset(g, "data", m.data_type, {m.data.size()}, m.data, m.gzip));
  H5Dclose(dataset(g, "indices", m.index_type, {m.indices.size()}, m.indices, m.gzip));
  H5Dclose(dataset(g, "indptr", m.indptr_type, {m.indptr.size()}, m.indptr, m.gzip));
  H5Gclose(g);
}

inline void dense(hid_t loc, const char* name, hid_t file_type, int64_t rows, int64_t cols,
                  const std::vector<double>& values) {
  const hid_t set = dataset(loc, name, file_type,
                            {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)}, values);
  encoding(set, "array", "0.2.0");
  H5Dclose(set);
}

// Dense row-major -> CSR (or CSC) arrays.
inline Sparse compress(int64_t rows, int64_t cols, const std::vector<double>& values, bool csc = false) {
  Sparse m;
  m.rows = rows;
  m.cols = cols;
  m.csc = csc;
  const int64_t major = csc ? cols : rows, minor = csc ? rows : cols;
  m.indptr.push_back(0);
  for (int64_t a = 0; a < major; ++a) {
    for (int64_t b = 0; b < minor; ++b) {
      const double v = csc ? values[b * cols + a] : values[a * cols + b];
      if (v != 0) {
        m.indices.push_back(static_cast<double>(b));
        m.data.push_back(v);
      }
    }
    m.indptr.push_back(static_cast<double>(m.indices.size()));
  }
  return m;
}

// An AnnData file with obs/var of the given lengths and two count layers written by `layers`
// (a callable taking the open layers group). Returns nothing; the file is closed.
template <class WriteLayers>
void anndata_file(const std::string& path, int64_t n_obs, int64_t n_vars, WriteLayers&& layers) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  encoding(file, "anndata", "0.1.0");
  H5Gclose(dataframe(file, "obs", names("cell", n_obs)));
  H5Gclose(dataframe(file, "var", names("gene", n_vars)));
  const hid_t g = group(file, "layers", "dict", "0.1.0");
  layers(g);
  H5Gclose(g);
  H5Fclose(file);
}

// The usual case: CSR spliced and unspliced layers from these arrays.
inline void csr_file(const std::string& path, const Sparse& spliced, const Sparse& unspliced,
                     int64_t n_obs = -1, int64_t n_vars = -1) {
  anndata_file(path, n_obs >= 0 ? n_obs : spliced.rows, n_vars >= 0 ? n_vars : spliced.cols,
               [&](hid_t layers) {
                 sparse(layers, "spliced", spliced);
                 sparse(layers, "unspliced", unspliced);
               });
}

}  // namespace raw
#endif  // PV_HDF5

}  // namespace pv_test

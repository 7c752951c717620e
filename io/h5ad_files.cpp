#include "io/h5ad_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace pv::io {

namespace fs = std::filesystem;

namespace {

void check_readable_file(const std::string& path) {
  if (path.empty()) fail(PV_ERR_IO, "no input file name given (empty path)");
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) fail(PV_ERR_IO, path + ": no such file");
  if (fs::is_directory(status)) fail(PV_ERR_IO, path + " is a directory (expected an .h5ad file)");
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(PV_ERR_IO, "cannot open " + path + " for reading: " + std::strerror(errno));
  ::close(fd);
}

std::string top_level_names(hid_t file) {
  std::string names;
  for (const std::string& name : h5::child_names(file)) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "nothing" : names;
}

}  // namespace

h5::Handle open_anndata_readonly(const std::string& path) {
  check_readable_file(path);
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) {
    fail(PV_ERR_FORMAT, path + " is not an HDF5 file (an .h5ad file is HDF5; wrong file, or a "
                               "truncated download?)");
  }
  h5::check(static_cast<herr_t>(is_hdf5 < 0 ? -1 : 0), PV_ERR_FORMAT,
            path + ": cannot check whether it is an HDF5 file");
  const h5::Handle access(H5Pcreate(H5P_FILE_ACCESS));
#if H5_VERSION_GE(1, 10, 7)
  // Keep HDF5's shared read lock, but do not fail on file systems without locking (NFS, Lustre).
  H5Pset_file_locking(access, true, true);
#endif
  h5::Handle file = h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, access), PV_ERR_FORMAT,
                              "cannot open " + path + " as HDF5 (corrupt or truncated file?)");
  for (const char* frame : {"obs", "var"}) {
    if (h5::node_kind(file, frame) == h5::NodeKind::kMissing) {
      fail(PV_ERR_FORMAT, path + " is an HDF5 file but not AnnData: it has no '" + frame +
                              "' (top level holds: " + top_level_names(file) + ")");
    }
  }
  return file;
}


AtomicOutput::AtomicOutput(const std::string& final_path)
    : final_path_(final_path), temp_path_(final_path + ".tmp-" + std::to_string(::getpid())) {
  const h5::Handle access(H5Pcreate(H5P_FILE_ACCESS));
  // Closing the file must fail loudly if a handle into it is still open (a bug here), rather
  // than leave it open and renamed half-flushed.
  H5Pset_fclose_degree(access, H5F_CLOSE_SEMI);
  file_ = h5::check(H5Fcreate(temp_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access), PV_ERR_IO,
                    "cannot create " + temp_path_);
}

AtomicOutput::~AtomicOutput() {
  if (committed_) return;
  file_.close();
  std::remove(temp_path_.c_str());
}

void AtomicOutput::commit() {
  if (!file_.close()) {
    h5::check(herr_t(-1), PV_ERR_IO, "cannot finish writing " + temp_path_);
  }
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    fail(PV_ERR_IO, "cannot rename " + temp_path_ + " to " + final_path_ + ": " + std::strerror(errno));
  }
  committed_ = true;
}

}  // namespace pv::io

// Internal to io/: opening an .h5ad file for reading, and the checks and temp-file-then-rename
// scheme every writer uses, so that a failed or cancelled write never leaves a partial file.
#pragma once

#include <string>

#include "io/hdf5_util.h"
#include "io/paths.h"

namespace pv::io {

// Opens `path` read-only after checking that it exists and is readable (PV_ERR_IO), is HDF5 and
// holds the AnnData groups obs and var (PV_ERR_FORMAT).
h5::Handle open_anndata_readonly(const std::string& path);


// A new HDF5 file at "<final>.tmp-<pid>", renamed onto the final path by commit(); removed if
// destroyed before that.
class AtomicOutput {
 public:
  explicit AtomicOutput(const std::string& final_path);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  hid_t file() const { return file_.get(); }
  // Closes the file (all other handles into it must be closed first) and renames it into place.
  void commit();

 private:
  std::string final_path_, temp_path_;
  h5::Handle file_;
  bool committed_ = false;
};

}  // namespace pv::io

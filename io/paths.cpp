#include "io/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace pv::io {

namespace fs = std::filesystem;

void check_output_directory(const std::string& output_path) {
  if (output_path.empty()) fail(PV_ERR_IO, "no output file name given (empty path)");
  fs::path directory = fs::path(output_path).parent_path();
  if (directory.empty()) directory = ".";
  std::error_code error;
  const fs::file_status status = fs::status(directory, error);
  if (!fs::exists(status)) {
    fail(PV_ERR_IO, "cannot write " + output_path + ": directory '" + directory.string() +
                        "' does not exist");
  }
  if (!fs::is_directory(status)) {
    fail(PV_ERR_IO, "cannot write " + output_path + ": '" + directory.string() +
                        "' is not a directory");
  }
  if (::access(directory.c_str(), W_OK | X_OK) != 0) {
    fail(PV_ERR_IO, "cannot write " + output_path + ": directory '" + directory.string() +
                        "' is not writable (" + std::strerror(errno) + ")");
  }
  if (fs::is_directory(fs::status(output_path, error))) {
    fail(PV_ERR_IO, "cannot write " + output_path + ": it is a directory");
  }
}

void check_not_same_file(const std::string& input_path, const std::string& output_path) {
  std::error_code error_in, error_out;
  const fs::path input = fs::weakly_canonical(input_path, error_in);
  const fs::path output = fs::weakly_canonical(output_path, error_out);
  bool same = !error_in && !error_out && input == output;
  struct stat input_stat, output_stat;
  if (!same && ::stat(input_path.c_str(), &input_stat) == 0 &&
      ::stat(output_path.c_str(), &output_stat) == 0) {
    // Hard links to one file have different canonical paths but one inode.
    same = input_stat.st_dev == output_stat.st_dev && input_stat.st_ino == output_stat.st_ino;
  }
  if (same) {
    fail(PV_ERR_INVALID_ARGUMENT, "output path " + output_path + " is the input file " + input_path +
                                      " (writing in place is refused: choose another output path)");
  }
}

}  // namespace pv::io

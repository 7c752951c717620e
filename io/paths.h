// Checks on output paths that every writer makes before writing anything (no HDF5 needed).
#pragma once

#include <string>

namespace pv::io {

// The directory that will hold output_path exists and is writable (PV_ERR_IO, naming it).
void check_output_directory(const std::string& output_path);

// output_path does not name the same file as input_path, through any spelling or link
// (PV_ERR_INVALID_ARGUMENT).
void check_not_same_file(const std::string& input_path, const std::string& output_path);

}  // namespace pv::io

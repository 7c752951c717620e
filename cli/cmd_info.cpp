#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/backend.h"

namespace pv::cli {

int run_info(const std::vector<std::string>& args) {
  ArgParser parser("info", "", "Print the version, the build options and the CUDA devices found.");
  if (!parser.parse(args)) return 0;
  if (!parser.positionals().empty()) fail(PV_ERR_INVALID_ARGUMENT, "info takes no arguments");
  std::printf("pvengine %s\n", build_info().c_str());
  if (!cuda_compiled()) {
    std::printf("cuda devices: none (built without CUDA)\n");
  } else if (cuda_device_count() == 0) {
    std::printf("cuda devices: none found\n");
  } else {
    std::printf("cuda devices:\n%s", cuda_device_summary().c_str());
  }
  return 0;
}

}  // namespace pv::cli

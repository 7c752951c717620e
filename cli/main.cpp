// The pvengine command: a thin front end over the engine. Errors print one line to stderr and
// exit non-zero.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/error.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

const Command kCommands[] = {
    {"info", "version, build options and CUDA devices", pv::cli::run_info},
    {"selfcheck", "evaluate the model's kernels on known values and report", pv::cli::run_selfcheck},
    {"inspect", "describe an .h5ad file and check its spliced/unspliced counts", pv::cli::run_inspect},
    {"simulate", "draw a dataset with known truth from the model's generative process", pv::cli::run_simulate},
    {"fit", "fit the model to an .h5ad file and write the results into a copy", pv::cli::run_fit},
    {"evaluate", "benchmark metrics (CBDir, ICCoh) of a fitted result against known transitions", pv::cli::run_evaluate},
    {"plot", "draw SVG figures (velocity, uncertainty, latent time, loss, phase portraits) from a fit", pv::cli::run_plot},
};

void print_usage(FILE* out) {
  std::fprintf(out, "usage: pvengine <command> [options]   (pvengine <command> --help)\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--version") name = "info";
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(std::vector<std::string>(argv + 2, argv + argc));
    } catch (const pv::Error& e) {
      std::fprintf(stderr, "pvengine %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pvengine %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "pvengine: unknown command '%s'\n", name.c_str());
  print_usage(stderr);
  return 2;
}

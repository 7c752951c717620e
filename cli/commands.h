// The pvengine subcommands; each takes the arguments after its name and returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace pv::cli {

int run_info(const std::vector<std::string>& args);
int run_selfcheck(const std::vector<std::string>& args);
int run_inspect(const std::vector<std::string>& args);
int run_simulate(const std::vector<std::string>& args);
int run_fit(const std::vector<std::string>& args);
int run_evaluate(const std::vector<std::string>& args);
int run_plot(const std::vector<std::string>& args);

}  // namespace pv::cli

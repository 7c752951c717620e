// Runs a program the way a user's shell would, for the command-line tests: arguments quoted,
// stdin closed, stdout and stderr captured in files of a directory of their own (so that the
// directories a command writes into hold only what the command wrote).
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test_h5ad_support.h"

namespace pv_test {

struct Outcome {
  int exit_code = -1;
  std::string out, err;
};

inline std::string shell_quoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

inline Outcome run_program(const std::string& program, const std::vector<std::string>& args) {
  static const TempDir capture;
  const std::string out = capture.file("stdout"), err = capture.file("stderr");
  std::string command = shell_quoted(program);
  for (const std::string& a : args) command += " " + shell_quoted(a);
  command += " >" + shell_quoted(out) + " 2>" + shell_quoted(err) + " </dev/null";
  const int status = std::system(command.c_str());
  Outcome outcome;
  outcome.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  outcome.out = file_bytes(out);
  outcome.err = file_bytes(err);
  return outcome;
}

}  // namespace pv_test

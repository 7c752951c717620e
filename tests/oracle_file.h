// The golden files the numpy/scipy oracles write (tests/oracle/*.txt): lines "name count v1 v2 ...",
// '#' comments. Values go through strtod, which (unlike operator>>) also reads "nan".
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace pv_test {

using Golden = std::map<std::string, std::vector<double>>;

inline Golden read_oracle(const std::string& relative_path) {
  Golden golden;
  std::ifstream in(std::string(PV_SOURCE_DIR) + "/" + relative_path);
  REQUIRE_MESSAGE(in.good(), relative_path << " is missing");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, token;
    size_t count = 0;
    fields >> name >> count;
    std::vector<double>& values = golden[name];
    while (fields >> token) values.push_back(std::strtod(token.c_str(), nullptr));
    REQUIRE_MESSAGE(values.size() == count, "oracle line " << name << " has " << values.size() << " of " << count);
  }
  return golden;
}

// The named array of a golden file (the test fails if it is absent).
inline const std::vector<double>& oracle_at(const Golden& golden, const std::string& name) {
  const auto it = golden.find(name);
  REQUIRE_MESSAGE(it != golden.end(), "oracle has no " << name);
  return it->second;
}

}  // namespace pv_test

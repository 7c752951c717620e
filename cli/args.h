// A small option parser for the subcommands: --name value, --name=value, --flag, positionals,
// and --help generated from the declarations.
#pragma once

#include <cctype>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "engine/error.h"

namespace pv::cli {

class ArgParser {
 public:
  ArgParser(std::string command, std::string usage, std::string description)
      : command_(std::move(command)), usage_(std::move(usage)), description_(std::move(description)) {}

  void option(const std::string& name, const std::string& default_value, const std::string& help) {
    specs_.push_back({name, default_value, help, false});
    values_[name] = default_value;
  }
  void flag(const std::string& name, const std::string& help) {
    specs_.push_back({name, "", help, true});
  }

  // Returns false when --help was printed (the command then exits 0).
  bool parse(const std::vector<std::string>& args) {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--help" || a == "-h") {
        print_help();
        return false;
      }
      if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit(a[1]) || a[1] == '.'))) {
        std::string name = a, value;
        bool has_value = false;
        const size_t eq = a.find('=');
        if (eq != std::string::npos) {
          name = a.substr(0, eq);
          value = a.substr(eq + 1);
          has_value = true;
        }
        const Spec* spec = find(name);
        if (!spec) fail(PV_ERR_INVALID_ARGUMENT, "unknown option '" + name + "' (see pvengine " + command_ + " --help)");
        if (spec->is_flag) {
          if (has_value) fail(PV_ERR_INVALID_ARGUMENT, "option '" + name + "' takes no value");
          flags_[name] = true;
          continue;
        }
        if (!has_value) {
          if (i + 1 >= args.size()) fail(PV_ERR_INVALID_ARGUMENT, "option '" + name + "' needs a value");
          value = args[++i];
        }
        values_[name] = value;
      } else {
        positionals_.push_back(a);
      }
    }
    return true;
  }

  const std::string& get(const std::string& name) const { return values_.at(name); }
  bool has(const std::string& name) const { return flags_.count(name) > 0; }
  bool given(const std::string& name) const {
    const Spec* spec = find(name);
    return spec && values_.at(name) != spec->default_value;
  }
  const std::vector<std::string>& positionals() const { return positionals_; }

  long long get_int(const std::string& name) const {
    const std::string& v = get(name);
    try {
      size_t used = 0;
      const long long x = std::stoll(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    fail(PV_ERR_INVALID_ARGUMENT, "option '" + name + "' must be an integer, got '" + v + "'");
  }
  double get_double(const std::string& name) const {
    const std::string& v = get(name);
    try {
      size_t used = 0;
      const double x = std::stod(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    fail(PV_ERR_INVALID_ARGUMENT, "option '" + name + "' must be a number, got '" + v + "'");
  }

  void print_help() const {
    std::printf("usage: pvengine %s %s\n\n%s\n", command_.c_str(), usage_.c_str(), description_.c_str());
    if (!specs_.empty()) std::printf("\noptions:\n");
    for (const Spec& s : specs_) {
      std::string left = s.name + (s.is_flag ? "" : " VALUE");
      std::printf("  %-24s %s%s\n", left.c_str(), s.help.c_str(),
                  s.is_flag || s.default_value.empty() ? "" : (" (default " + s.default_value + ")").c_str());
    }
  }

 private:
  struct Spec {
    std::string name, default_value, help;
    bool is_flag;
  };
  const Spec* find(const std::string& name) const {
    for (const Spec& s : specs_)
      if (s.name == name) return &s;
    return nullptr;
  }

  std::string command_, usage_, description_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> flags_;
  std::vector<std::string> positionals_;
};

}  // namespace pv::cli

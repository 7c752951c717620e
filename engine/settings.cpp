#include "engine/settings.h"

#include <algorithm>
#include <cctype>

#include "engine/error.h"

namespace pv {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

bool parse_bool(const std::string& key, const std::string& value) {
  const std::string v = lower(value);
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  fail(PV_ERR_INVALID_ARGUMENT, "option " + key + ": '" + value + "' is not a boolean (True or False)");
}

int64_t parse_int(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    const long long x = std::stoll(value, &used);
    if (used == value.size()) return x;
  } catch (const std::exception&) {
  }
  fail(PV_ERR_INVALID_ARGUMENT, "option " + key + ": '" + value + "' is not an integer");
}

[[noreturn]] void unsupported(const std::string& key, const std::string& value, const std::string& supported) {
  fail(PV_ERR_UNSUPPORTED, "option " + key + "=" + value + " is not implemented by pvengine (supported: " + supported + ")");
}

// A seed parameter the engine implements only at one value: anything else is unsupported.
void only(const std::string& key, const std::string& value, std::initializer_list<const char*> accepted) {
  for (const char* a : accepted)
    if (lower(value) == lower(a)) return;
  std::string list;
  for (const char* a : accepted)
    if (*a != '\0') list += (list.empty() ? "" : " or ") + std::string(a);  // "" (unset) goes unnamed
  unsupported(key, value, list);
}

}  // namespace

const std::vector<std::string>& setting_keys() {
  static const std::vector<std::string> keys = {
      "input_type", "shared_time", "model_type", "guide_type", "likelihood", "t_scale_on", "plate_size",
      "latent_factor", "latent_factor_operation", "inducing_point_size", "latent_factor_size", "include_prior",
      "use_gpu", "init", "num_aux_cells", "only_cell_times", "decoder_on", "add_offset", "correct_library_size",
      "cell_specific_kinetics", "kinetics_num",
      // the engine's own
      "seed", "state_mode", "entropy", "guide_rank", "num_particles", "init_read_depth_at_library", "precision"};
  return keys;
}

void apply_setting(Settings* s, const std::string& key, const std::string& value) {
  ModelOptions& m = s->model;
  if (key == "likelihood") m.likelihood = parse_likelihood(value);
  else if (key == "include_prior") m.include_prior = parse_bool(key, value);
  else if (key == "add_offset") m.add_offset = parse_bool(key, value);
  else if (key == "correct_library_size") {
    const std::string v = lower(value);
    if (v == "true" || v == "1" || v == "false" || v == "0") m.correct_library_size = parse_bool(key, value);
    else unsupported(key, value, "True or False (library-size correction methods given by name are not implemented)");
  } else if (key == "use_gpu") {
    const std::string v = lower(value);
    if (v == "auto") s->device = "auto";
    else if (v == "false" || v == "cpu") s->device = "cpu";
    else if (v == "true" || v == "cuda" || v == "0") s->device = "cuda";
    else if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }) && !v.empty())
      unsupported(key, value, "'auto', False, True or 0 (one device: GPU " + value + " is not selectable)");
    else fail(PV_ERR_INVALID_ARGUMENT, "option use_gpu: '" + value + "' is not 'auto', a boolean or a device index");
  } else if (key == "input_type") only(key, value, {"raw"});
  else if (key == "shared_time") only(key, value, {"True", "1"});
  else if (key == "model_type" || key == "guide_type") only(key, value, {"auto"});
  else if (key == "t_scale_on" || key == "init" || key == "decoder_on") only(key, value, {"False", "0"});
  else if (key == "plate_size") only(key, value, {"2"});
  else if (key == "latent_factor") only(key, value, {"none"});
  else if (key == "latent_factor_operation") only(key, value, {"selection"});
  else if (key == "inducing_point_size" || key == "latent_factor_size" || key == "num_aux_cells") only(key, value, {"0"});
  else if (key == "only_cell_times") only(key, value, {"True", "1"});
  else if (key == "cell_specific_kinetics" || key == "kinetics_num") only(key, value, {"None", ""});
  else if (key == "seed") {
    const int64_t seed = parse_int(key, value);
    require(seed >= 0, PV_ERR_INVALID_ARGUMENT, "option seed must be >= 0");
    s->seed = uint64_t(seed);
  } else if (key == "state_mode") {
    if (value == "marginal") m.state = StateMode::kMarginal;
    else if (value == "sampled") m.state = StateMode::kSampled;
    else fail(PV_ERR_INVALID_ARGUMENT, "option state_mode: '" + value + "' (expected marginal or sampled)");
  } else if (key == "entropy") {
    if (value == "analytic") m.entropy = EntropyMode::kAnalytic;
    else if (value == "sample") m.entropy = EntropyMode::kSample;
    else fail(PV_ERR_INVALID_ARGUMENT, "option entropy: '" + value + "' (expected analytic or sample)");
  } else if (key == "guide_rank") {
    m.guide_rank = int(parse_int(key, value));
    require(m.guide_rank >= 1 && m.guide_rank <= 100, PV_ERR_INVALID_ARGUMENT, "option guide_rank must be in [1, 100]");
  } else if (key == "num_particles") {
    m.num_particles = int(parse_int(key, value));
    require(m.num_particles >= 1, PV_ERR_INVALID_ARGUMENT, "option num_particles must be >= 1");
  } else if (key == "precision") {
    if (value == "fast" || value == "float32") m.precision = Precision::kFast;
    else if (value == "double" || value == "float64") m.precision = Precision::kDouble;
    else fail(PV_ERR_INVALID_ARGUMENT, "option precision: '" + value + "' (expected fast or double)");
  } else if (key == "init_read_depth_at_library") {
    m.init_read_depth_at_library = parse_bool(key, value);
  } else {
    fail(PV_ERR_INVALID_ARGUMENT, "unknown option '" + key + "'");
  }
}

std::map<std::string, std::string> model_options_to_text(const ModelOptions& o) {
  auto b = [](bool v) { return std::string(v ? "True" : "False"); };
  return {{"likelihood", likelihood_name(o.likelihood)},
          {"include_prior", b(o.include_prior)},
          {"add_offset", b(o.add_offset)},
          {"correct_library_size", b(o.correct_library_size)},
          {"state_mode", o.state == StateMode::kMarginal ? "marginal" : "sampled"},
          {"entropy", o.entropy == EntropyMode::kAnalytic ? "analytic" : "sample"},
          {"guide_rank", std::to_string(o.guide_rank)},
          {"num_particles", std::to_string(o.num_particles)},
          {"init_read_depth_at_library", b(o.init_read_depth_at_library)},
          {"precision", o.precision == Precision::kFast ? "fast" : "double"}};
}

ModelOptions model_options_from_text(const std::map<std::string, std::string>& text) {
  Settings s;
  for (const auto& [key, value] : text) apply_setting(&s, key, value);
  return s.model;
}

}  // namespace pv

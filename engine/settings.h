// Everything a fit is configured with, set by name: every constructor parameter of the seed's
// PyroVelocity (values it implements are accepted, others are PV_ERR_UNSUPPORTED naming the
// option, never silently ignored) plus the engine's own keys. Values are text, as Python writes
// them ("True", "None", "'auto'" without quotes, numbers).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/model_options.h"

namespace pv {

struct Settings {
  ModelOptions model;
  uint64_t seed = 0;
  std::string device = "auto";  // from use_gpu: "auto" | "cpu" | "cuda"
};

// Applies one key (PV_ERR_INVALID_ARGUMENT for an unknown key or a malformed value,
// PV_ERR_UNSUPPORTED for a valid value the engine does not implement).
void apply_setting(Settings* settings, const std::string& key, const std::string& value);

// Every key apply_setting accepts, in the seed's order, then the engine's.
const std::vector<std::string>& setting_keys();

// The model options as text (saved with a model) and back.
std::map<std::string, std::string> model_options_to_text(const ModelOptions& options);
ModelOptions model_options_from_text(const std::map<std::string, std::string>& text);

}  // namespace pv

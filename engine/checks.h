// Argument checks shared by the C ABI and the engine: each failure names the argument, the index
// and the offending value.
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "engine/error.h"

namespace pv {

inline void check_not_null(const void* pointer, const char* name) {
  if (!pointer) fail(PV_ERR_INVALID_ARGUMENT, std::string(name) + " is NULL");
}

template <class T>
void check_finite(const T* values, int64_t n, const char* name) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) {
      std::ostringstream msg;
      msg << name << "[" << i << "] is " << values[i] << " (must be finite)";
      fail(PV_ERR_INVALID_ARGUMENT, msg.str());
    }
  }
}

template <class T>
void check_non_negative(const T* values, int64_t n, const char* name) {
  check_finite(values, n, name);
  for (int64_t i = 0; i < n; ++i) {
    if (values[i] < T(0)) {
      std::ostringstream msg;
      msg << name << "[" << i << "] is " << values[i] << " (must be >= 0)";
      fail(PV_ERR_INVALID_ARGUMENT, msg.str());
    }
  }
}

}  // namespace pv

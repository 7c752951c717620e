// The engine's one error type. Every failure inside the engine is a pv::Error carrying the status
// code the C ABI returns and a message that names the function and the argument at fault.
#pragma once

#include <stdexcept>
#include <string>

#include "bindings_c/include/pvengine.h"

namespace pv {

class Error : public std::runtime_error {
 public:
  Error(pv_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  pv_status status() const { return status_; }

 private:
  pv_status status_;
};

[[noreturn]] inline void fail(pv_status status, const std::string& message) {
  throw Error(status, message);
}

inline void require(bool condition, pv_status status, const std::string& message) {
  if (!condition) throw Error(status, message);
}

}  // namespace pv

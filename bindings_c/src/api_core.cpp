// The C ABI's status, version and build entry points, and the element-wise math.
#include "bindings_c/include/pvengine.h"
#include "bindings_c/src/guard.h"
#include "engine/backend.h"
#include "engine/checks.h"
#include "kernels/dynamics_cpu.h"

namespace pv {
namespace {
thread_local std::string last_error;
}
void set_last_error(const std::string& message) { last_error = message; }
void clear_last_error() { last_error.clear(); }
}  // namespace pv

extern "C" {

const char* pv_status_string(pv_status status) {
  switch (status) {
    case PV_OK: return "ok";
    case PV_ERR_INVALID_ARGUMENT: return "invalid argument";
    case PV_ERR_OUT_OF_MEMORY: return "out of host memory";
    case PV_ERR_IO: return "input/output error";
    case PV_ERR_FORMAT: return "bad file format";
    case PV_ERR_UNSUPPORTED: return "unsupported option";
    case PV_ERR_NO_DEVICE: return "no CUDA device";
    case PV_ERR_DEVICE_OUT_OF_MEMORY: return "out of device memory";
    case PV_ERR_CUDA: return "CUDA error";
    case PV_ERR_CANCELLED: return "cancelled";
    case PV_ERR_NUMERIC: return "numerical failure";
    case PV_ERR_STATE: return "invalid state for this call";
    case PV_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
  }
}

const char* pv_last_error(void) { return pv::last_error.c_str(); }

int32_t pv_version_number(void) { return PV_VERSION_NUMBER; }

const char* pv_build_info(void) { return pv::build_info().c_str(); }

pv_status pv_mrna_dynamics(int64_t n, const double* tau, const double* u0, const double* s0,
                           const double* alpha, const double* beta, const double* gamma,
                           double* u_out, double* s_out) {
  return pv::guarded(__func__, [&] {
    pv::require(n >= 0, PV_ERR_INVALID_ARGUMENT, "n is " + std::to_string(n) + " (must be >= 0)");
    if (n == 0) return;
    const struct { const double* values; const char* name; bool non_negative; } inputs[] = {
        {tau, "tau", true},     {u0, "u0", false},     {s0, "s0", false},
        {alpha, "alpha", true}, {beta, "beta", true}, {gamma, "gamma", true}};
    for (const auto& in : inputs) {
      pv::check_not_null(in.values, in.name);
      if (in.non_negative) pv::check_non_negative(in.values, n, in.name);
      else pv::check_finite(in.values, n, in.name);
    }
    pv::check_not_null(u_out, "u_out");
    pv::check_not_null(s_out, "s_out");
    pv::cpu::mrna_dynamics(n, tau, u0, s0, alpha, beta, gamma, u_out, s_out);
  });
}

}  // extern "C"

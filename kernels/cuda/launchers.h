// Host-side entry points of the CUDA launchers. Plain C++: no CUDA header, so engine/backend.cpp
// (the one place that knows whether CUDA is compiled in) can include it. Each returns a
// pv_status-compatible code and writes a message on failure; none throws across the boundary.
#pragma once

#include <cstdint>
#include <string>

namespace pv::cuda {

// Number of usable devices (0 when the driver or a device is missing).
int device_count();
// One line per device: "0: NVIDIA H200 (sm_90, 139.8 GiB)".
std::string device_summary();

// u, s = mrna_dynamics(...) for n host inputs, evaluated on device 0 (copies in and out).
int32_t mrna_dynamics_host(int64_t n, const double* tau, const double* u0, const double* s0,
                           const double* alpha, const double* beta, const double* gamma,
                           double* u_out, double* s_out, std::string* error);

// n standard normals of subsequence `subsequence`, generated on the device both with pvengine's
// Philox (ours) and with cuRAND's curand_normal4 (theirs), for the bit-identity check.
int32_t philox_normals_host(uint64_t seed, uint64_t subsequence, int64_t n, float* ours,
                            float* theirs, uint32_t* our_bits, uint32_t* their_bits,
                            std::string* error);

}  // namespace pv::cuda

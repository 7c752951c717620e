#include "engine/backend.h"

#include "engine/error.h"
#include "pv_build_config.h"

#if PV_CUDA
#include "kernels/cuda/launchers.h"
#endif
#if PV_HDF5
#include <H5public.h>
#endif
#if PV_OPENMP
#include <omp.h>
#endif

namespace pv {

bool cuda_compiled() { return PV_CUDA != 0; }

int cuda_device_count() {
#if PV_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

std::string cuda_device_summary() {
#if PV_CUDA
  return cuda::device_summary();
#else
  return {};
#endif
}

const std::string& build_info() {
  static const std::string info = [] {
    std::string s = std::string("version=") + PV_VERSION_STRING + " commit=" + PV_GIT_COMMIT;
#if PV_CUDA
    s += std::string(" cuda=on sm_") + PV_CUDA_ARCHITECTURES;
#else
    s += " cuda=off";
#endif
#if PV_HDF5
    s += " hdf5=" + std::to_string(H5_VERS_MAJOR) + "." + std::to_string(H5_VERS_MINOR) + "." +
         std::to_string(H5_VERS_RELEASE);
#else
    s += " hdf5=off";
#endif
#if PV_OPENMP
    s += " openmp=on threads=" + std::to_string(omp_get_max_threads());
#else
    s += " openmp=off";
#endif
    return s;
  }();
  return info;
}

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "auto") return cuda_device_count() > 0 ? Device::kCuda : Device::kCpu;
  if (name == "cuda") {
    if (!cuda_compiled())
      fail(PV_ERR_NO_DEVICE, "device 'cuda' requested but this build has no CUDA backend (PV_CUDA=OFF)");
    if (cuda_device_count() == 0)
      fail(PV_ERR_NO_DEVICE, "device 'cuda' requested but no CUDA device is present");
    return Device::kCuda;
  }
  fail(PV_ERR_INVALID_ARGUMENT, "unknown device '" + name + "' (expected cpu, cuda or auto)");
}

namespace cuda_backend {

#if PV_CUDA
namespace {
void check(int32_t status, const std::string& message) {
  if (status != PV_OK) fail(status, message);
}
}  // namespace
#endif

void mrna_dynamics(int64_t n, const double* tau, const double* u0, const double* s0,
                   const double* alpha, const double* beta, const double* gamma, double* u_out,
                   double* s_out) {
#if PV_CUDA
  std::string error;
  check(cuda::mrna_dynamics_host(n, tau, u0, s0, alpha, beta, gamma, u_out, s_out, &error), error);
#else
  (void)n, (void)tau, (void)u0, (void)s0, (void)alpha, (void)beta, (void)gamma, (void)u_out, (void)s_out;
  fail(PV_ERR_NO_DEVICE, "this build has no CUDA backend (PV_CUDA=OFF)");
#endif
}

void philox_normals(uint64_t seed, uint64_t subsequence, int64_t n, float* ours, float* theirs,
                    uint32_t* our_bits, uint32_t* their_bits) {
#if PV_CUDA
  std::string error;
  check(cuda::philox_normals_host(seed, subsequence, n, ours, theirs, our_bits, their_bits, &error),
        error);
#else
  (void)seed, (void)subsequence, (void)n, (void)ours, (void)theirs, (void)our_bits, (void)their_bits;
  fail(PV_ERR_NO_DEVICE, "this build has no CUDA backend (PV_CUDA=OFF)");
#endif
}

}  // namespace cuda_backend
}  // namespace pv

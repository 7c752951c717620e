// Which compute backends this build has. engine/backend.cpp is the only file that knows whether
// CUDA was compiled in; everything else asks here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/likelihood.h"

namespace pv {

enum class Device { kCpu, kCuda };

bool cuda_compiled();
// Usable CUDA devices (0 without CUDA support, driver or device).
int cuda_device_count();
// One line per device, empty when there is none.
std::string cuda_device_summary();
// "version=0.1.0 commit=... cuda=on sm_90 hdf5=1.10.8 openmp=on threads=2".
const std::string& build_info();

// Resolve "cpu" | "cuda" | "auto" to a device; "cuda" without a device is PV_ERR_NO_DEVICE.
Device resolve_device(const std::string& name);

// The fused likelihood of one dataset on the CUDA device (float32; Poisson counts, k summed
// out). create() uploads the counts; failures (no device, out of device memory, a CUDA error)
// throw pv::Error with the matching status and leave nothing allocated.
class DeviceLikelihood {
 public:
  static std::shared_ptr<DeviceLikelihood> create(const CountView& counts);
  static bool covers(const ModelOptions& options);
  ~DeviceLikelihood();
  double evaluate(const ModelOptions& options, const LikelihoodInputs& in, LikelihoodGradients* grad);

 private:
  struct Impl;
  explicit DeviceLikelihood(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The velocity graphs of several velocity fields against one X and their projection into a 2-D
// embedding, on the CUDA device (products in float32, norms and projections in double). create()
// uploads X, the candidates and the embedding; failures (no device, out of device memory, a CUDA
// error) throw pv::Error with the matching status and leave nothing allocated.
class DeviceVelocityProjection {
 public:
  static std::unique_ptr<DeviceVelocityProjection> create(const float* X, int64_t cells, int64_t genes,
                                                          const std::vector<std::vector<int64_t>>& candidates,
                                                          const double* embedding);
  ~DeviceVelocityProjection();
  // The graphs of `fields` velocity fields (cells x genes each), kept on the device; returns the
  // rows' confidences max(0, max_j pi_ij), fields x cells. `cosines`, when given, receives the
  // cosines: fields x pairs, row by row in the candidates' order.
  std::vector<double> graphs(const float* const* V, int64_t fields, std::vector<float>* cosines = nullptr);
  // The embedded velocities of the last graphs (fields x cells x 2, not autoscaled) under the
  // self-transitions s_i (fields x cells).
  std::vector<double> embed(const std::vector<double>& self_transition);

 private:
  struct Impl;
  explicit DeviceVelocityProjection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace cuda_backend {
// Element-wise dynamics on the device (throws pv::Error with the CUDA status on failure).
void mrna_dynamics(int64_t n, const double* tau, const double* u0, const double* s0,
                   const double* alpha, const double* beta, const double* gamma, double* u_out,
                   double* s_out);
// Ours vs cuRAND's Philox normals and raw words, computed on the device.
void philox_normals(uint64_t seed, uint64_t subsequence, int64_t n, float* ours, float* theirs,
                    uint32_t* our_bits, uint32_t* their_bits);
}  // namespace cuda_backend

}  // namespace pv

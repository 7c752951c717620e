// CUDA launchers for the element-wise dynamics and the Philox stream; the math is the PV_HD code
// the CPU backend runs.
#include <cuda_runtime.h>
#include <curand_kernel.h>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/dynamics.h"
#include "kernels/philox.h"

namespace pv::cuda {
namespace {

constexpr int kBlock = 256;

inline unsigned grid_for(int64_t n) { return unsigned((n + kBlock - 1) / kBlock); }

__global__ void mrna_dynamics_kernel(int64_t n, const double* tau, const double* u0,
                                     const double* s0, const double* alpha, const double* beta,
                                     const double* gamma, double* u_out, double* s_out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const Dynamics<double> d = mrna_dynamics(tau[i], u0[i], s0[i], alpha[i], beta[i], gamma[i]);
  u_out[i] = d.u;
  s_out[i] = d.s;
}

__global__ void philox_normals_kernel(uint64_t seed, uint64_t subsequence, int64_t blocks,
                                      float* ours, float* theirs, uint32_t* our_bits,
                                      uint32_t* their_bits) {
  const int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  const Philox4 bits = philox_block(seed, subsequence, uint64_t(b));
  const Normal4 mine = normal4(seed, subsequence, uint64_t(b));
  curandStatePhilox4_32_10_t state;
  curand_init(seed, subsequence, 4ull * uint64_t(b), &state);
  const uint4 raw = curand4(&state);
  curand_init(seed, subsequence, 4ull * uint64_t(b), &state);
  const float4 normals = curand_normal4(&state);
  const uint32_t r[4] = {raw.x, raw.y, raw.z, raw.w};
  const float f[4] = {normals.x, normals.y, normals.z, normals.w};
  for (int k = 0; k < 4; ++k) {
    our_bits[4 * b + k] = bits.v[k];
    their_bits[4 * b + k] = r[k];
    ours[4 * b + k] = mine.v[k];
    theirs[4 * b + k] = f[k];
  }
}

}  // namespace

int32_t mrna_dynamics_host(int64_t n, const double* tau, const double* u0, const double* s0,
                           const double* alpha, const double* beta, const double* gamma,
                           double* u_out, double* s_out, std::string* error) {
  if (n <= 0) return PV_OK;
  const double* inputs[6] = {tau, u0, s0, alpha, beta, gamma};
  DeviceBuffer<double> buffers[8];
  for (auto& b : buffers) PV_CUDA_TRY(b.allocate(size_t(n)));
  for (int k = 0; k < 6; ++k)
    PV_CUDA_TRY(cudaMemcpy(buffers[k].get(), inputs[k], n * sizeof(double), cudaMemcpyHostToDevice));
  mrna_dynamics_kernel<<<grid_for(n), kBlock>>>(n, buffers[0].get(), buffers[1].get(),
                                                buffers[2].get(), buffers[3].get(),
                                                buffers[4].get(), buffers[5].get(),
                                                buffers[6].get(), buffers[7].get());
  PV_CUDA_TRY(cudaGetLastError());
  PV_CUDA_TRY(cudaMemcpy(u_out, buffers[6].get(), n * sizeof(double), cudaMemcpyDeviceToHost));
  PV_CUDA_TRY(cudaMemcpy(s_out, buffers[7].get(), n * sizeof(double), cudaMemcpyDeviceToHost));
  return PV_OK;
}

int32_t philox_normals_host(uint64_t seed, uint64_t subsequence, int64_t n, float* ours,
                            float* theirs, uint32_t* our_bits, uint32_t* their_bits,
                            std::string* error) {
  const int64_t blocks = (n + 3) / 4;
  if (blocks == 0) return PV_OK;
  const size_t padded = size_t(blocks) * 4;
  DeviceBuffer<float> d_ours, d_theirs;
  DeviceBuffer<uint32_t> d_our_bits, d_their_bits;
  PV_CUDA_TRY(d_ours.allocate(padded));
  PV_CUDA_TRY(d_theirs.allocate(padded));
  PV_CUDA_TRY(d_our_bits.allocate(padded));
  PV_CUDA_TRY(d_their_bits.allocate(padded));
  philox_normals_kernel<<<grid_for(blocks), kBlock>>>(seed, subsequence, blocks, d_ours.get(),
                                                      d_theirs.get(), d_our_bits.get(),
                                                      d_their_bits.get());
  PV_CUDA_TRY(cudaGetLastError());
  PV_CUDA_TRY(cudaMemcpy(ours, d_ours.get(), n * sizeof(float), cudaMemcpyDeviceToHost));
  PV_CUDA_TRY(cudaMemcpy(theirs, d_theirs.get(), n * sizeof(float), cudaMemcpyDeviceToHost));
  PV_CUDA_TRY(cudaMemcpy(our_bits, d_our_bits.get(), n * sizeof(uint32_t), cudaMemcpyDeviceToHost));
  PV_CUDA_TRY(cudaMemcpy(their_bits, d_their_bits.get(), n * sizeof(uint32_t), cudaMemcpyDeviceToHost));
  return PV_OK;
}

}  // namespace pv::cuda

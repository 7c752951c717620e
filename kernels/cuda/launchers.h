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

// ---- The fused cell x gene likelihood on the device (float32) ----------------------------------

// Counts on the device as CSR (float values, int32 indices), uploaded once per dataset.
struct DeviceCounts;
int32_t upload_counts(int64_t cells, int64_t genes, const int64_t* u_indptr, const int32_t* u_indices, const float* u_values,
                      const int64_t* s_indptr, const int32_t* s_indices, const float* s_values, DeviceCounts** out,
                      std::string* error);
void free_counts(DeviceCounts* counts);

// Per-gene inputs, each `genes` floats, in this order.
enum DeviceGeneArray { kDevAlpha, kDevBeta, kDevGamma, kDevT0, kDevSwitch, kDevUScale, kDevU0, kDevS0, kDevUInf, kDevSInf, kDevGeneArrays };
// Per-gene gradient outputs, each `genes` floats, in this order (switch = d/d(t0 + dt_switching)).
enum DeviceGeneSlot { kSlotAlpha, kSlotBeta, kSlotGamma, kSlotT0, kSlotUScale, kSlotU0, kSlotS0, kSlotUInf, kSlotSInf, kSlotSwitch, kDevSlots };

struct LikelihoodLaunch {
  int64_t batch = 0;
  const int64_t* rows = nullptr;      // data rows of the batch (null: 0..batch-1)
  const float* gene = nullptr;        // kDevGeneArrays x genes
  const float* cell = nullptr;        // 3 x batch: cell time, unspliced and spliced read depth
  bool library = true;                // correct_library_size
  bool gradient = true;
};

// Sum over the batch of the per-cell-gene log-likelihood without the log(count!) terms (the
// caller adds those), the per-gene gradient sums (kDevSlots x genes) and the per-cell gradients
// (3 x batch). Deterministic: fixed block count, fixed reduction order, no float atomics.
int32_t evaluate_likelihood(DeviceCounts* counts, const LikelihoodLaunch& launch, double* value, float* gene_grad,
                            float* cell_grad, std::string* error);

// ---- The velocity graphs and their embedding projection (posterior statistics) -----------------

// X (cells x genes, float32), each cell's candidates (CSR, ascending within a row), the displacement
// norms and the embedding (cells x 2), prepared once for every field projected against that X.
struct DeviceProjection;
int32_t create_projection(int64_t cells, int64_t genes, const float* x, const int64_t* indptr, const int32_t* indices,
                          const double* embedding, DeviceProjection** out, std::string* error);
void free_projection(DeviceProjection* projection);

// The cosines of `fields` velocity fields (each cells x genes on the host) against X, kept on the
// device for projection_embed; writes each row's confidence max(0, max_j pi_ij) (fields x cells)
// and, when `cosine` is not null, the cosines (fields x pairs, in the candidates' order).
int32_t projection_graphs(DeviceProjection* projection, const float* const* velocity, int64_t fields, float* confidence,
                          float* cosine, std::string* error);
// The embedded velocities (fields x cells x 2, not autoscaled) of the last projection_graphs
// under the self-transitions s_i (fields x cells); an empty row gives NaN.
int32_t projection_embed(DeviceProjection* projection, const double* self_transition, double* embedded,
                         std::string* error);

}  // namespace pv::cuda

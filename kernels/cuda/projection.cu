// The velocity graphs and their embedding projection on the device, from the PV_HD formulas of
// kernels/projection.h that the CPU statistics use. One block per cell owns that cell's row: its
// threads take one candidate each and hold a group of fields' dot products in registers, while the
// group's centred velocities over a tile of genes sit in shared memory (every thread reads the same
// entry: a broadcast). Norms are summed in double, the products in float32 as on the CPU. Rows
// are reduced in a fixed order: results do not depend on scheduling.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/projection.h"

namespace pv::cuda {

struct DeviceProjection {
  int64_t cells = 0, genes = 0, pairs = 0;
  DeviceBuffer<float> x;
  DeviceBuffer<int64_t> indptr;
  DeviceBuffer<int32_t> indices;
  DeviceBuffer<double> embedding, row_sum, row_squares, displacement_norm;
  // Per batch of fields, grown on demand.
  DeviceBuffer<float> velocity, velocity_mean, cosine, confidence;
  DeviceBuffer<double> velocity_norm, self_transition, embedded;
  int64_t field_capacity = 0, fields = 0;
};

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kGroup = 16;  // fields whose dot products one thread holds
constexpr int kTile = 128;  // genes of the group's velocities in shared memory at a time

__device__ inline double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum and sum of squares of each row of a rows x genes matrix (one warp per row, in double).
__global__ void row_moments_kernel(int64_t rows, int64_t genes, const float* m, double* sum, double* squares) {
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const float* r = m + row * genes;
  double s = 0, q = 0;
  for (int64_t g = lane; g < genes; g += 32) s += r[g], q += double(r[g]) * r[g];
  s = warp_sum(s), q = warp_sum(q);
  if (lane == 0) sum[row] = s, squares[row] = q;
}

// |centred (X_j - X_i)| for every candidate pair (one block per cell i, one thread per candidate).
__global__ void displacement_norm_kernel(int64_t cells, int64_t genes, const float* x, const int64_t* indptr,
                                         const int32_t* indices, const double* row_sum, const double* row_squares,
                                         double* norm) {
  const int64_t i = blockIdx.x;
  if (i >= cells) return;
  const float* xi = x + i * genes;
  for (int64_t e = indptr[i] + threadIdx.x; e < indptr[i + 1]; e += blockDim.x) {
    const int64_t j = indices[e];
    const float* xj = x + j * genes;
    double squares = 0;
    for (int64_t g = 0; g < genes; ++g) {
      const double d = double(xj[g]) - double(xi[g]);
      squares += d * d;
    }
    norm[e] = sqrt(centred_squared_norm(row_sum[j] - row_sum[i], squares, double(genes), row_squares[i], row_squares[j]));
  }
}

// Each velocity row's mean over genes and the norm of the centred row (one warp per row).
__global__ void velocity_rows_kernel(int64_t rows, int64_t genes, const float* v, float* mean, double* norm) {
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const float* r = v + row * genes;
  double s = 0;
  for (int64_t g = lane; g < genes; g += 32) s += r[g];
  s = __shfl_sync(0xffffffffu, warp_sum(s), 0);
  const double m = s / double(genes);
  double q = 0;
  for (int64_t g = lane; g < genes; g += 32) q += (double(r[g]) - m) * (double(r[g]) - m);
  q = warp_sum(q);
  if (lane == 0) mean[row] = float(m), norm[row] = sqrt(q);
}

// The cosines of fields [first, first + 16) for cell i = blockIdx.x, group blockIdx.y, and each
// field's row confidence max(0, max_j pi_ij).
__global__ void graph_kernel(int64_t cells, int64_t genes, int64_t fields, int64_t pairs, const float* x,
                             const int64_t* indptr, const int32_t* indices, const double* displacement_norm,
                             const float* velocity, const float* velocity_mean, const double* velocity_norm,
                             float* cosine, float* confidence) {
  __shared__ float4 tile4[kTile * kGroup / 4];  // centred velocities, gene-major: [g][field]
  __shared__ float xi_tile[kTile];
  __shared__ float warp_max[kGroup][kWarps];
  float* tile = reinterpret_cast<float*>(tile4);
  const int64_t i = blockIdx.x, first = int64_t(blockIdx.y) * kGroup;
  if (i >= cells || first >= fields) return;  // uniform over the block
  const int count = fields - first < kGroup ? int(fields - first) : kGroup;
  const int64_t begin = indptr[i], n = indptr[i + 1] - begin;
  const float* xi = x + i * genes;
  float row_max[kGroup];
#pragma unroll
  for (int f = 0; f < kGroup; ++f) row_max[f] = 0.0f;

  for (int64_t chunk = 0; chunk < n; chunk += blockDim.x) {
    const int64_t e = chunk + threadIdx.x;
    const bool active = e < n;
    const float* xj = x + (active ? int64_t(indices[begin + e]) : i) * genes;
    float dot[kGroup];
#pragma unroll
    for (int f = 0; f < kGroup; ++f) dot[f] = 0.0f;
    for (int64_t g0 = 0; g0 < genes; g0 += kTile) {
      const int width = genes - g0 < kTile ? int(genes - g0) : kTile;
      __syncthreads();  // the previous tile is consumed
      for (int t = threadIdx.x; t < kTile * kGroup; t += blockDim.x) {
        const int f = t % kGroup, g = t / kGroup;  // conflict-free stores; the loads hit L1 lines
        float value = 0.0f;
        if (f < count && g < width) {
          const int64_t row = (first + f) * cells + i;
          value = velocity[row * genes + g0 + g] - velocity_mean[row];
        }
        tile[g * kGroup + f] = value;
      }
      for (int g = threadIdx.x; g < width; g += blockDim.x) xi_tile[g] = xi[g0 + g];
      __syncthreads();
      if (!active) continue;
      for (int g = 0; g < width; ++g) {
        const float d = xj[g0 + g] - xi_tile[g];
#pragma unroll
        for (int q = 0; q < kGroup / 4; ++q) {
          const float4 v = tile4[g * (kGroup / 4) + q];
          dot[4 * q] += d * v.x, dot[4 * q + 1] += d * v.y, dot[4 * q + 2] += d * v.z, dot[4 * q + 3] += d * v.w;
        }
      }
    }
    if (active) {
#pragma unroll
      for (int f = 0; f < kGroup; ++f) {
        if (f >= count) break;
        const float pi = float(pearson_cosine(double(dot[f]), displacement_norm[begin + e],
                                              velocity_norm[(first + f) * cells + i]));
        cosine[(first + f) * pairs + begin + e] = pi;
        row_max[f] = fmaxf(row_max[f], pi);
      }
    }
  }
  // The row maxima: within each warp, then over the warps in order.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int f = 0; f < kGroup; ++f) {
    float m = row_max[f];
    for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_down_sync(0xffffffffu, m, offset));
    if (lane == 0) warp_max[f][warp] = m;
  }
  __syncthreads();
  if (threadIdx.x < count) {
    float m = 0.0f;
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, warp_max[threadIdx.x][w]);
    confidence[(first + threadIdx.x) * cells + i] = m;
  }
}

// The embedded velocity of each (field, cell) row (one warp per row; lanes stride over the row's
// entries, then a fixed-order warp reduction).
__global__ void embed_kernel(int64_t cells, int64_t fields, int64_t pairs, const int64_t* indptr, const int32_t* indices,
                             const double* embedding, const float* cosine, const double* self_transition,
                             double* embedded) {
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= fields * cells) return;
  const int lane = threadIdx.x % 32;
  const int64_t f = row / cells, i = row % cells;
  const double xi = embedding[2 * i], yi = embedding[2 * i + 1];
  EmbeddingRowSums<double> sums;
  for (int64_t e = indptr[i] + lane; e < indptr[i + 1]; e += 32) {
    const int64_t j = indices[e];
    const double dx = embedding[2 * j] - xi, dy = embedding[2 * j + 1] - yi;
    const double norm = sqrt(dx * dx + dy * dy);
    sums.add(double(cosine[f * pairs + e]), norm > 0 ? dx / norm : 0.0, norm > 0 ? dy / norm : 0.0);
  }
  sums.absolute = warp_sum(sums.absolute), sums.weights = warp_sum(sums.weights), sums.count = warp_sum(sums.count);
  sums.weighted_x = warp_sum(sums.weighted_x), sums.weighted_y = warp_sum(sums.weighted_y);
  sums.directions_x = warp_sum(sums.directions_x), sums.directions_y = warp_sum(sums.directions_y);
  if (lane == 0) sums.finish(self_transition[row], embedded + 2 * row);
}

unsigned warp_blocks(int64_t rows) { return unsigned((rows + kWarps - 1) / kWarps); }

}  // namespace

int32_t create_projection(int64_t cells, int64_t genes, const float* x, const int64_t* indptr, const int32_t* indices,
                          const double* embedding, DeviceProjection** out, std::string* error) {
  *out = nullptr;
  auto p = std::make_unique<DeviceProjection>();
  p->cells = cells, p->genes = genes, p->pairs = indptr[cells];
  const size_t C = size_t(cells), P = size_t(std::max<int64_t>(1, p->pairs));
  PV_CUDA_TRY(p->x.allocate(C * size_t(genes)));
  PV_CUDA_TRY(p->indptr.allocate(C + 1));
  PV_CUDA_TRY(p->indices.allocate(P));
  PV_CUDA_TRY(p->embedding.allocate(2 * C));
  PV_CUDA_TRY(p->row_sum.allocate(C));
  PV_CUDA_TRY(p->row_squares.allocate(C));
  PV_CUDA_TRY(p->displacement_norm.allocate(P));
  PV_CUDA_TRY(cudaMemcpy(p->x.get(), x, C * size_t(genes) * sizeof(float), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(p->indptr.get(), indptr, (C + 1) * sizeof(int64_t), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(p->indices.get(), indices, size_t(p->pairs) * sizeof(int32_t), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(p->embedding.get(), embedding, 2 * C * sizeof(double), cudaMemcpyHostToDevice));
  row_moments_kernel<<<warp_blocks(cells), kThreads>>>(cells, genes, p->x.get(), p->row_sum.get(), p->row_squares.get());
  PV_CUDA_TRY(cudaGetLastError());
  displacement_norm_kernel<<<unsigned(cells), kThreads>>>(cells, genes, p->x.get(), p->indptr.get(), p->indices.get(),
                                                          p->row_sum.get(), p->row_squares.get(), p->displacement_norm.get());
  PV_CUDA_TRY(cudaGetLastError());
  PV_CUDA_TRY(cudaDeviceSynchronize());
  *out = p.release();
  return PV_OK;
}

void free_projection(DeviceProjection* projection) { delete projection; }

int32_t projection_graphs(DeviceProjection* p, const float* const* velocity, int64_t fields, float* confidence,
                          float* cosine, std::string* error) {
  const int64_t C = p->cells, G = p->genes, P = p->pairs;
  if (p->field_capacity < fields) {
    p->field_capacity = 0;  // a failed allocation leaves no half-grown workspace behind
    PV_CUDA_TRY(p->velocity.allocate(size_t(fields * C * G)));
    PV_CUDA_TRY(p->velocity_mean.allocate(size_t(fields * C)));
    PV_CUDA_TRY(p->velocity_norm.allocate(size_t(fields * C)));
    PV_CUDA_TRY(p->cosine.allocate(size_t(std::max<int64_t>(1, fields * P))));
    PV_CUDA_TRY(p->confidence.allocate(size_t(fields * C)));
    PV_CUDA_TRY(p->self_transition.allocate(size_t(fields * C)));
    PV_CUDA_TRY(p->embedded.allocate(size_t(fields * C * 2)));
    p->field_capacity = fields;
  }
  p->fields = 0;
  for (int64_t f = 0; f < fields; ++f)
    PV_CUDA_TRY(cudaMemcpy(p->velocity.get() + f * C * G, velocity[f], size_t(C * G) * sizeof(float), cudaMemcpyHostToDevice));
  velocity_rows_kernel<<<warp_blocks(fields * C), kThreads>>>(fields * C, G, p->velocity.get(), p->velocity_mean.get(),
                                                              p->velocity_norm.get());
  PV_CUDA_TRY(cudaGetLastError());
  const dim3 grid(unsigned(C), unsigned((fields + kGroup - 1) / kGroup));
  graph_kernel<<<grid, kThreads>>>(C, G, fields, P, p->x.get(), p->indptr.get(), p->indices.get(),
                                   p->displacement_norm.get(), p->velocity.get(), p->velocity_mean.get(),
                                   p->velocity_norm.get(), p->cosine.get(), p->confidence.get());
  PV_CUDA_TRY(cudaGetLastError());
  PV_CUDA_TRY(cudaMemcpy(confidence, p->confidence.get(), size_t(fields * C) * sizeof(float), cudaMemcpyDeviceToHost));
  if (cosine)
    PV_CUDA_TRY(cudaMemcpy(cosine, p->cosine.get(), size_t(fields * P) * sizeof(float), cudaMemcpyDeviceToHost));
  p->fields = fields;
  return PV_OK;
}

int32_t projection_embed(DeviceProjection* p, const double* self_transition, double* embedded, std::string* error) {
  const int64_t C = p->cells, F = p->fields;
  if (F == 0) {
    if (error) *error = "projection_embed: no graphs (projection_graphs first)";
    return PV_ERR_INVALID_ARGUMENT;
  }
  PV_CUDA_TRY(cudaMemcpy(p->self_transition.get(), self_transition, size_t(F * C) * sizeof(double), cudaMemcpyHostToDevice));
  embed_kernel<<<warp_blocks(F * C), kThreads>>>(C, F, p->pairs, p->indptr.get(), p->indices.get(), p->embedding.get(),
                                                 p->cosine.get(), p->self_transition.get(), p->embedded.get());
  PV_CUDA_TRY(cudaGetLastError());
  PV_CUDA_TRY(cudaMemcpy(embedded, p->embedded.get(), size_t(F * C * 2) * sizeof(double), cudaMemcpyDeviceToHost));
  return PV_OK;
}

}  // namespace pv::cuda

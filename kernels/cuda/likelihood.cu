// The fused cell x gene likelihood on the device: the same PV_HD dynamics and densities as the CPU
// backend, in float32. One block handles a fixed sequence of cells (cell b goes to block
// b % kBlocks); its threads stride over genes. Per cell: pass 1 the states' values and the
// library normalisers, pass 2 the log-likelihood and its reductions, pass 3 the gradient (values
// recomputed: nothing cell x gene goes to global memory). Per-gene gradient sums live in per-block
// partials owned by one thread each, summed over blocks in a fixed order by a second kernel:
// results are deterministic, with no float atomics.
#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/dynamics.h"
#include "kernels/math.h"

namespace pv::cuda {

struct DeviceCounts {
  int64_t cells = 0, genes = 0;
  DeviceBuffer<int64_t> u_indptr, s_indptr;
  DeviceBuffer<int32_t> u_indices, s_indices;
  DeviceBuffer<float> u_values, s_values;
  // Workspace, grown on demand and reused across steps.
  DeviceBuffer<float> gene, cell, cell_value, cell_grad, partial, gene_grad;
  DeviceBuffer<int64_t> rows;
  size_t batch_capacity = 0;
};

namespace {

constexpr int kThreads = 256;
constexpr int kBlocks = 1024;  // fixed, so the reduction order does not depend on the device
constexpr float kEps = 1e-6f;
constexpr int64_t kMaxSharedGenes = 12288;  // two float rows of counts in shared memory

struct Gene {
  float alpha, beta, gamma, t0, sw, u_scale, u0, s0, u_inf, s_inf;
};

__device__ inline Gene load_gene(const float* gene, int64_t G, int64_t g) {
  return {gene[kDevAlpha * G + g], gene[kDevBeta * G + g],  gene[kDevGamma * G + g], gene[kDevT0 * G + g],
          gene[kDevSwitch * G + g], gene[kDevUScale * G + g], gene[kDevU0 * G + g],   gene[kDevS0 * G + g],
          gene[kDevUInf * G + g],  gene[kDevSInf * G + g]};
}

// Both states' values for one cell-gene: what passes 1 and 2 need.
struct States {
  float x1, softplus_x1, p1, sig_t0, tau0;
  float uu[2], s[2], ut[2], st[2];
};

__device__ inline States states_of(float t, const Gene& x) {
  States r;
  r.x1 = t - x.sw;
  const SoftplusSigmoid<float> induction = softplus_and_sigmoid(t - x.t0);
  const SoftplusSigmoid<float> repression = softplus_and_sigmoid(r.x1);
  r.softplus_x1 = repression.softplus;
  r.p1 = repression.sigmoid;
  r.sig_t0 = induction.sigmoid;
  r.tau0 = induction.softplus;
  const Dynamics<float> d0 = mrna_dynamics(r.tau0, x.u0, x.s0, x.alpha, x.beta, x.gamma);
  const Dynamics<float> d1 = mrna_dynamics(r.softplus_x1, x.u_inf, x.s_inf, 0.0f, x.beta, x.gamma);
  r.uu[0] = x.u_scale * d0.u;
  r.uu[1] = x.u_scale * d1.u;
  r.s[0] = d0.s;
  r.s[1] = d1.s;
  for (int k = 0; k < 2; ++k) {
    r.ut[k] = fmaxf(r.uu[k], 0.0f) + kEps;
    r.st[k] = fmaxf(r.s[k], 0.0f) + kEps;
  }
  return r;
}

// Pass 2's per-gene results: the summed-out log-likelihood and d/d(ut', st', x1) before the
// normaliser's share.
struct Weights {
  float value, g_ut[2], g_st[2], g_x1, d_norm_u, d_norm_s, g_rd_u, g_rd_s;
};

__device__ inline Weights weights_of(const States& x, float cu, float cs, float scale_u, float offset_u, float scale_s,
                                     float offset_s, float rd_u, float inv_u, float rd_s, float inv_s) {
  Weights w;
  float term[2], gu[2], gs[2];
  for (int k = 0; k < 2; ++k) {
    const float ru = x.ut[k] * scale_u + offset_u, rs = x.st[k] * scale_s + offset_s;
    const float lu = cu > 0 ? cu * logf(ru) - ru : -ru, ls = cs > 0 ? cs * logf(rs) - rs : -rs;
    term[k] = (k == 1 ? x.x1 - x.softplus_x1 : -x.softplus_x1) + lu + ls;
    gu[k] = cu / ru - 1.0f;
    gs[k] = cs / rs - 1.0f;
  }
  const LogSumExp2<float> lse = logsumexp2(term[0], term[1]);
  w.value = lse.value;
  const float wk[2] = {lse.d_a, lse.d_b};
  w.g_x1 = wk[1] * (1.0f - x.p1) - wk[0] * x.p1;
  w.d_norm_u = w.d_norm_s = w.g_rd_u = w.g_rd_s = 0.0f;
  for (int k = 0; k < 2; ++k) {
    const float a = wk[k] * gu[k], b = wk[k] * gs[k];
    w.g_ut[k] = a * scale_u;
    w.g_st[k] = b * scale_s;
    w.d_norm_u -= a * x.ut[k] * rd_u * inv_u * inv_u;
    w.d_norm_s -= b * x.st[k] * rd_s * inv_s * inv_s;
    w.g_rd_u += a * (x.ut[k] * inv_u + kEps);
    w.g_rd_s += b * (x.st[k] * inv_s + kEps);
  }
  return w;
}

__global__ void likelihood_kernel(int64_t G, int64_t batch, const int64_t* rows, const int64_t* u_indptr,
                                  const int32_t* u_indices, const float* u_values, const int64_t* s_indptr,
                                  const int32_t* s_indices, const float* s_values, const float* gene, const float* cell,
                                  int library, int gradient, float* cell_value, float* cell_grad, float* partial) {
  extern __shared__ float counts[];  // unspliced[G], spliced[G]
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ float broadcast[2];
  float* u_counts = counts;
  float* s_counts = counts + G;
  float* part = partial + int64_t(blockIdx.x) * kDevSlots * G;
  const int tid = threadIdx.x;
  if (gradient)
    for (int64_t i = tid; i < kDevSlots * G; i += kThreads) part[i] = 0.0f;

  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const int64_t row = rows ? rows[b] : b;
    for (int64_t g = tid; g < G; g += kThreads) u_counts[g] = s_counts[g] = 0.0f;
    __syncthreads();
    for (int64_t p = u_indptr[row] + tid; p < u_indptr[row + 1]; p += kThreads) u_counts[u_indices[p]] = u_values[p];
    for (int64_t p = s_indptr[row] + tid; p < s_indptr[row + 1]; p += kThreads) s_counts[s_indices[p]] = s_values[p];
    __syncthreads();
    const float t = cell[b], rd_u = cell[batch + b], rd_s = cell[2 * batch + b];

    // Pass 1: the normalisers (expectations of ut', st' under p(k)).
    float norm_u = 0.0f, norm_s = 0.0f;
    for (int64_t g = tid; g < G; g += kThreads) {
      const States x = states_of(t, load_gene(gene, G, g));
      norm_u += (1.0f - x.p1) * x.ut[0] + x.p1 * x.ut[1];
      norm_s += (1.0f - x.p1) * x.st[0] + x.p1 * x.st[1];
    }
    norm_u = Reduce(temp).Sum(norm_u);
    __syncthreads();
    norm_s = Reduce(temp).Sum(norm_s);
    if (tid == 0) broadcast[0] = norm_u, broadcast[1] = norm_s;
    __syncthreads();
    const float inv_u = 1.0f / broadcast[0], inv_s = 1.0f / broadcast[1];
    const float scale_u = library ? rd_u * inv_u : 1.0f, offset_u = library ? kEps * rd_u : 0.0f;
    const float scale_s = library ? rd_s * inv_s : 1.0f, offset_s = library ? kEps * rd_s : 0.0f;

    // Pass 2: the log-likelihood and the normalisers' gradients.
    float value = 0.0f, a_u = 0.0f, a_s = 0.0f, g_rd_u = 0.0f, g_rd_s = 0.0f;
    for (int64_t g = tid; g < G; g += kThreads) {
      const States x = states_of(t, load_gene(gene, G, g));
      const Weights w = weights_of(x, u_counts[g], s_counts[g], scale_u, offset_u, scale_s, offset_s, rd_u, inv_u, rd_s, inv_s);
      value += w.value;
      a_u += w.d_norm_u;
      a_s += w.d_norm_s;
      g_rd_u += w.g_rd_u;
      g_rd_s += w.g_rd_s;
    }
    __syncthreads();
    value = Reduce(temp).Sum(value);
    if (tid == 0) cell_value[b] = value;
    if (!gradient) {
      __syncthreads();
      continue;
    }
    __syncthreads();
    a_u = Reduce(temp).Sum(a_u);
    __syncthreads();
    a_s = Reduce(temp).Sum(a_s);
    __syncthreads();
    g_rd_u = Reduce(temp).Sum(g_rd_u);
    __syncthreads();
    g_rd_s = Reduce(temp).Sum(g_rd_s);
    if (tid == 0) {
      broadcast[0] = library ? a_u : 0.0f;
      broadcast[1] = library ? a_s : 0.0f;
      cell_grad[batch + b] = library ? g_rd_u : 0.0f;
      cell_grad[2 * batch + b] = library ? g_rd_s : 0.0f;
    }
    __syncthreads();
    a_u = broadcast[0];
    a_s = broadcast[1];

    // Pass 3: everything again, with the dynamics' partial derivatives, chained to the inputs.
    float g_t = 0.0f;
    for (int64_t g = tid; g < G; g += kThreads) {
      const Gene gn = load_gene(gene, G, g);
      const States x = states_of(t, gn);
      const Weights w = weights_of(x, u_counts[g], s_counts[g], scale_u, offset_u, scale_s, offset_s, rd_u, inv_u, rd_s, inv_s);
      const float p1 = x.p1, p0 = 1.0f - p1;
      const float g_ut[2] = {w.g_ut[0] + a_u * p0, w.g_ut[1] + a_u * p1};
      const float g_st[2] = {w.g_st[0] + a_s * p0, w.g_st[1] + a_s * p1};
      const float g_x1 = w.g_x1 + (a_u * (x.ut[1] - x.ut[0]) + a_s * (x.st[1] - x.st[0])) * p1 * p0;
      const DynamicsWithGrad<float> d0 = mrna_dynamics_with_grad(x.tau0, gn.u0, gn.s0, gn.alpha, gn.beta, gn.gamma);
      const DynamicsWithGrad<float> d1 = mrna_dynamics_with_grad(x.softplus_x1, gn.u_inf, gn.s_inf, 0.0f, gn.beta, gn.gamma);
      const float g_uu0 = x.uu[0] > 0 ? g_ut[0] : 0.0f, g_uu1 = x.uu[1] > 0 ? g_ut[1] : 0.0f;
      const float gu0 = g_uu0 * gn.u_scale, gu1 = g_uu1 * gn.u_scale;
      const float gs0 = x.s[0] > 0 ? g_st[0] : 0.0f, gs1 = x.s[1] > 0 ? g_st[1] : 0.0f;
      float in0[kDynInputs], in1[kDynInputs];
      for (int j = 0; j < kDynInputs; ++j) {
        in0[j] = gu0 * d0.du[j] + gs0 * d0.ds[j];
        in1[j] = gu1 * d1.du[j] + gs1 * d1.ds[j];
      }
      part[kSlotUScale * G + g] += g_uu0 * d0.u + g_uu1 * d1.u;
      part[kSlotU0 * G + g] += in0[kDynU0];
      part[kSlotS0 * G + g] += in0[kDynS0];
      part[kSlotAlpha * G + g] += in0[kDynAlpha];
      part[kSlotBeta * G + g] += in0[kDynBeta] + in1[kDynBeta];
      part[kSlotGamma * G + g] += in0[kDynGamma] + in1[kDynGamma];
      part[kSlotUInf * G + g] += in1[kDynU0];
      part[kSlotSInf * G + g] += in1[kDynS0];
      const float g_t0 = in0[kDynTau] * x.sig_t0;
      part[kSlotT0 * G + g] -= g_t0;
      const float g_x1_total = g_x1 + in1[kDynTau] * p1;
      part[kSlotSwitch * G + g] -= g_x1_total;
      g_t += g_t0 + g_x1_total;
    }
    __syncthreads();
    g_t = Reduce(temp).Sum(g_t);
    if (tid == 0) cell_grad[b] = g_t;
    __syncthreads();
  }
}

// out[i] = sum over blocks of partial[block][i], in block order.
__global__ void sum_partials(int64_t n, int blocks, const float* partial, float* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float sum = 0.0f;
  for (int b = 0; b < blocks; ++b) sum += partial[int64_t(b) * n + i];
  out[i] = sum;
}

}  // namespace

int32_t upload_counts(int64_t cells, int64_t genes, const int64_t* u_indptr, const int32_t* u_indices, const float* u_values,
                      const int64_t* s_indptr, const int32_t* s_indices, const float* s_values, DeviceCounts** out,
                      std::string* error) {
  *out = nullptr;
  if (genes > kMaxSharedGenes) {
    if (error) *error = "the CUDA likelihood holds a cell's counts in shared memory: at most " + std::to_string(kMaxSharedGenes) + " genes";
    return PV_ERR_UNSUPPORTED;
  }
  auto counts = std::make_unique<DeviceCounts>();
  counts->cells = cells;
  counts->genes = genes;
  const int64_t u_nnz = u_indptr[cells], s_nnz = s_indptr[cells];
  PV_CUDA_TRY(counts->u_indptr.allocate(size_t(cells + 1)));
  PV_CUDA_TRY(counts->s_indptr.allocate(size_t(cells + 1)));
  PV_CUDA_TRY(counts->u_indices.allocate(size_t(std::max<int64_t>(1, u_nnz))));
  PV_CUDA_TRY(counts->s_indices.allocate(size_t(std::max<int64_t>(1, s_nnz))));
  PV_CUDA_TRY(counts->u_values.allocate(size_t(std::max<int64_t>(1, u_nnz))));
  PV_CUDA_TRY(counts->s_values.allocate(size_t(std::max<int64_t>(1, s_nnz))));
  PV_CUDA_TRY(cudaMemcpy(counts->u_indptr.get(), u_indptr, size_t(cells + 1) * sizeof(int64_t), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(counts->s_indptr.get(), s_indptr, size_t(cells + 1) * sizeof(int64_t), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(counts->u_indices.get(), u_indices, size_t(u_nnz) * sizeof(int32_t), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(counts->s_indices.get(), s_indices, size_t(s_nnz) * sizeof(int32_t), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(counts->u_values.get(), u_values, size_t(u_nnz) * sizeof(float), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(counts->s_values.get(), s_values, size_t(s_nnz) * sizeof(float), cudaMemcpyHostToDevice));
  *out = counts.release();
  return PV_OK;
}

void free_counts(DeviceCounts* counts) { delete counts; }

int32_t evaluate_likelihood(DeviceCounts* d, const LikelihoodLaunch& l, double* value, float* gene_grad, float* cell_grad,
                            std::string* error) {
  const int64_t G = d->genes, B = l.batch;
  if (B <= 0) {
    *value = 0;
    return PV_OK;
  }
  const int blocks = int(std::min<int64_t>(kBlocks, B));
  // The workspace grows with the largest batch seen and is reused by later steps.
  if (d->batch_capacity < size_t(B)) {
    PV_CUDA_TRY(d->cell.allocate(size_t(3 * B)));
    PV_CUDA_TRY(d->cell_value.allocate(size_t(B)));
    PV_CUDA_TRY(d->cell_grad.allocate(size_t(3 * B)));
    PV_CUDA_TRY(d->rows.allocate(size_t(B)));
    d->batch_capacity = size_t(B);
  }
  if (!d->gene.get()) {
    PV_CUDA_TRY(d->gene.allocate(size_t(kDevGeneArrays * G)));
    PV_CUDA_TRY(d->gene_grad.allocate(size_t(kDevSlots * G)));
    PV_CUDA_TRY(d->partial.allocate(size_t(kBlocks) * kDevSlots * G));
  }
  PV_CUDA_TRY(cudaMemcpy(d->gene.get(), l.gene, size_t(kDevGeneArrays * G) * sizeof(float), cudaMemcpyHostToDevice));
  PV_CUDA_TRY(cudaMemcpy(d->cell.get(), l.cell, size_t(3 * B) * sizeof(float), cudaMemcpyHostToDevice));
  if (l.rows) PV_CUDA_TRY(cudaMemcpy(d->rows.get(), l.rows, size_t(B) * sizeof(int64_t), cudaMemcpyHostToDevice));
  const size_t shared = size_t(2 * G) * sizeof(float);
  if (shared > 48 * 1024)
    PV_CUDA_TRY(cudaFuncSetAttribute(likelihood_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
  likelihood_kernel<<<blocks, kThreads, shared>>>(G, B, l.rows ? d->rows.get() : nullptr, d->u_indptr.get(), d->u_indices.get(),
                                                  d->u_values.get(), d->s_indptr.get(), d->s_indices.get(), d->s_values.get(),
                                                  d->gene.get(), d->cell.get(), l.library ? 1 : 0, l.gradient ? 1 : 0,
                                                  d->cell_value.get(), d->cell_grad.get(), d->partial.get());
  PV_CUDA_TRY(cudaGetLastError());
  if (l.gradient) {
    const int64_t n = kDevSlots * G;
    sum_partials<<<unsigned((n + 255) / 256), 256>>>(n, blocks, d->partial.get(), d->gene_grad.get());
    PV_CUDA_TRY(cudaGetLastError());
    PV_CUDA_TRY(cudaMemcpy(gene_grad, d->gene_grad.get(), size_t(n) * sizeof(float), cudaMemcpyDeviceToHost));
    PV_CUDA_TRY(cudaMemcpy(cell_grad, d->cell_grad.get(), size_t(3 * B) * sizeof(float), cudaMemcpyDeviceToHost));
  }
  std::vector<float> values(static_cast<size_t>(B));
  PV_CUDA_TRY(cudaMemcpy(values.data(), d->cell_value.get(), size_t(B) * sizeof(float), cudaMemcpyDeviceToHost));
  double sum = 0;
  for (float v : values) sum += v;
  *value = sum;
  return PV_OK;
}

}  // namespace pv::cuda

#include "engine/backend.h"

#include <vector>

#include "engine/error.h"
#include "engine/gene_slots.h"
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

bool DeviceLikelihood::covers(const ModelOptions& o) {
  return o.likelihood == Likelihood::kPoisson && o.state == StateMode::kMarginal;
}

#if PV_CUDA
struct DeviceLikelihood::Impl {
  cuda::DeviceCounts* counts = nullptr;
  int64_t genes = 0;
  std::vector<double> row_log_factorial;
  ~Impl() { cuda::free_counts(counts); }
};

namespace {
// CSR arrays of a count matrix, converting a dense one.
struct Csr {
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<float> values;
};
Csr csr_of(const io::CountMatrix& m) {
  if (m.sparse) return {m.indptr, m.indices, m.data};
  Csr c;
  c.indptr.push_back(0);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t j = 0; j < m.cols; ++j)
      if (m.dense[r * m.cols + j] != 0.0f) {
        c.indices.push_back(int32_t(j));
        c.values.push_back(m.dense[r * m.cols + j]);
      }
    c.indptr.push_back(int64_t(c.indices.size()));
  }
  return c;
}
}  // namespace
#else
struct DeviceLikelihood::Impl {};
#endif

DeviceLikelihood::DeviceLikelihood(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceLikelihood::~DeviceLikelihood() = default;

std::shared_ptr<DeviceLikelihood> DeviceLikelihood::create(const CountView& counts) {
#if PV_CUDA
  require(cuda_device_count() > 0, PV_ERR_NO_DEVICE, "no CUDA device is present");
  const Csr u = csr_of(*counts.unspliced), s = csr_of(*counts.spliced);
  auto impl = std::make_unique<Impl>();
  impl->genes = counts.genes();
  std::string error;
  const int32_t status = cuda::upload_counts(counts.cells(), counts.genes(), u.indptr.data(), u.indices.data(), u.values.data(),
                                             s.indptr.data(), s.indices.data(), s.values.data(), &impl->counts, &error);
  if (status != PV_OK) fail(status, "uploading the counts to the GPU: " + error);
  for (int64_t c = 0; c < counts.cells(); ++c)
    impl->row_log_factorial.push_back(counts.row_log_factorial ? counts.row_log_factorial[c] : row_log_factorial(counts, c));
  return std::shared_ptr<DeviceLikelihood>(new DeviceLikelihood(std::move(impl)));
#else
  (void)counts;
  fail(PV_ERR_NO_DEVICE, "this build has no CUDA backend (PV_CUDA=OFF)");
#endif
}

double DeviceLikelihood::evaluate(const ModelOptions& o, const LikelihoodInputs& in, LikelihoodGradients* grad) {
#if PV_CUDA
  require(covers(o), PV_ERR_UNSUPPORTED, "the CUDA backend covers the Poisson likelihood with k summed out");
  static_assert(int(cuda::kSlotAlpha) == int(kSlotAlpha) && int(cuda::kSlotSwitch) == int(kSlotSwitch) &&
                    int(cuda::kDevSlots) == int(kGeneSlots),
                "the device's gene slots follow GeneSlot");
  const int64_t G = impl_->genes, B = in.batch;
  const std::vector<DynamicsWithGrad<double>> at_switch = switch_states(o, in.gene, G);
  std::vector<float> gene(static_cast<size_t>(cuda::kDevGeneArrays * G));
  for (int64_t g = 0; g < G; ++g) {
    const double* const* x = in.gene;
    const float values[cuda::kDevGeneArrays] = {
        float(x[kAlpha][g]), float(x[kBeta][g]), float(x[kGamma][g]), float(x[kT0][g]), float(x[kT0][g] + x[kDtSwitching][g]),
        float(x[kUScale][g]), float(o.add_offset ? x[kUOffset][g] : 0.0), float(o.add_offset ? x[kSOffset][g] : 0.0),
        float(at_switch[g].u), float(at_switch[g].s)};
    for (int k = 0; k < cuda::kDevGeneArrays; ++k) gene[size_t(k * G + g)] = values[k];
  }
  std::vector<float> cell(static_cast<size_t>(3 * B));
  for (int64_t b = 0; b < B; ++b) {
    cell[b] = float(in.cell_time[b]);
    cell[B + b] = float(in.u_read_depth[b]);
    cell[2 * B + b] = float(in.s_read_depth[b]);
  }
  cuda::LikelihoodLaunch launch;
  launch.batch = B;
  launch.rows = in.cells;
  launch.gene = gene.data();
  launch.cell = cell.data();
  launch.library = o.correct_library_size;
  launch.gradient = grad != nullptr;
  std::vector<float> gene_grad(static_cast<size_t>(kGeneSlots * G)), cell_grad(static_cast<size_t>(3 * B));
  double value = 0;
  std::string error;
  const int32_t status = cuda::evaluate_likelihood(impl_->counts, launch, &value, gene_grad.data(), cell_grad.data(), &error);
  if (status != PV_OK) fail(status, "CUDA likelihood: " + error);
  for (int64_t b = 0; b < B; ++b) value -= impl_->row_log_factorial[in.cells ? in.cells[b] : b];
  if (grad) {
    chain_gene_slots(o, at_switch, std::vector<double>(gene_grad.begin(), gene_grad.end()), G, grad);
    grad->cell_time.assign(cell_grad.begin(), cell_grad.begin() + B);
    grad->u_read_depth.assign(cell_grad.begin() + B, cell_grad.begin() + 2 * B);
    grad->s_read_depth.assign(cell_grad.begin() + 2 * B, cell_grad.end());
  }
  return value;
#else
  (void)o, (void)in, (void)grad;
  fail(PV_ERR_NO_DEVICE, "this build has no CUDA backend (PV_CUDA=OFF)");
#endif
}

#if PV_CUDA
struct DeviceVelocityProjection::Impl {
  cuda::DeviceProjection* projection = nullptr;
  int64_t cells = 0, pairs = 0, fields = 0;
  ~Impl() { cuda::free_projection(projection); }
};
#else
struct DeviceVelocityProjection::Impl {};
#endif

DeviceVelocityProjection::DeviceVelocityProjection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceVelocityProjection::~DeviceVelocityProjection() = default;

std::unique_ptr<DeviceVelocityProjection> DeviceVelocityProjection::create(
    const float* X, int64_t cells, int64_t genes, const std::vector<std::vector<int64_t>>& candidates,
    const double* embedding) {
#if PV_CUDA
  require(cuda_device_count() > 0, PV_ERR_NO_DEVICE, "no CUDA device is present");
  require(int64_t(candidates.size()) == cells, PV_ERR_INVALID_ARGUMENT,
          "velocity projection: the candidates do not describe " + std::to_string(cells) + " cells");
  require(cells < (int64_t(1) << 31), PV_ERR_UNSUPPORTED, "the CUDA velocity graph indexes cells with 32 bits");
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  for (const std::vector<int64_t>& row : candidates) {
    for (int64_t j : row) indices.push_back(int32_t(j));
    indptr.push_back(int64_t(indices.size()));
  }
  auto impl = std::make_unique<Impl>();
  impl->cells = cells, impl->pairs = indptr.back();
  std::string error;
  const int32_t status = cuda::create_projection(cells, genes, X, indptr.data(), indices.data(), embedding, &impl->projection, &error);
  if (status != PV_OK) fail(status, "velocity projection on the GPU: " + error);
  return std::unique_ptr<DeviceVelocityProjection>(new DeviceVelocityProjection(std::move(impl)));
#else
  (void)X, (void)cells, (void)genes, (void)candidates, (void)embedding;
  fail(PV_ERR_NO_DEVICE, "this build has no CUDA backend (PV_CUDA=OFF)");
#endif
}

std::vector<double> DeviceVelocityProjection::graphs(const float* const* V, int64_t fields, std::vector<float>* cosines) {
#if PV_CUDA
  require(fields >= 1 && V != nullptr, PV_ERR_INVALID_ARGUMENT, "velocity projection: no velocity fields");
  std::vector<float> confidence(static_cast<size_t>(fields * impl_->cells));
  if (cosines) cosines->resize(static_cast<size_t>(fields * impl_->pairs));
  std::string error;
  const int32_t status = cuda::projection_graphs(impl_->projection, V, fields, confidence.data(),
                                                 cosines ? cosines->data() : nullptr, &error);
  if (status != PV_OK) fail(status, "velocity graphs on the GPU: " + error);
  impl_->fields = fields;
  return std::vector<double>(confidence.begin(), confidence.end());
#else
  (void)V, (void)fields, (void)cosines;
  fail(PV_ERR_NO_DEVICE, "this build has no CUDA backend (PV_CUDA=OFF)");
#endif
}

std::vector<double> DeviceVelocityProjection::embed(const std::vector<double>& self_transition) {
#if PV_CUDA
  require(impl_->fields >= 1 && int64_t(self_transition.size()) == impl_->fields * impl_->cells, PV_ERR_INVALID_ARGUMENT,
          "velocity projection: embed needs one self-transition per field and cell of the last graphs");
  std::vector<double> embedded(static_cast<size_t>(impl_->fields * impl_->cells * 2));
  std::string error;
  const int32_t status = cuda::projection_embed(impl_->projection, self_transition.data(), embedded.data(), &error);
  if (status != PV_OK) fail(status, "velocity embedding on the GPU: " + error);
  return embedded;
#else
  (void)self_transition;
  fail(PV_ERR_NO_DEVICE, "this build has no CUDA backend (PV_CUDA=OFF)");
#endif
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

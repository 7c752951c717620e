// CUDA backend against the CPU backend. Label `cuda`: where no device is present every case
// reports a skip (exit code 77 -> CTest "skipped"), and the file still compiles everywhere.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <memory>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/posterior.h"
#include "engine/simulator.h"
#include "engine/statistics.h"
#include "engine/svi.h"
#include "kernels/dynamics_cpu.h"
#include "kernels/philox.h"
#include "tests/simulated_data.h"

namespace {

bool skip_without_device() {
  if (pv::cuda_device_count() > 0) return false;
  std::printf("SKIPPED: no CUDA device (%s)\n", pv::cuda_compiled() ? "none found" : "built without CUDA");
  std::exit(77);
}

}  // namespace

TEST_CASE("cuda: mrna_dynamics on the device matches the CPU backend") {
  if (skip_without_device()) return;
  const int64_t n = 100000;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> log_u(-5, 3);
  std::vector<double> in[6], u_cpu(n), s_cpu(n), u_gpu(n), s_gpu(n);
  for (auto& v : in) {
    v.resize(n);
    for (double& x : v) x = std::exp(log_u(rng));
  }
  pv::cpu::mrna_dynamics(n, in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(), in[5].data(),
                         u_cpu.data(), s_cpu.data());
  pv::cuda_backend::mrna_dynamics(n, in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(),
                                  in[5].data(), u_gpu.data(), s_gpu.data());
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    worst = std::fmax(worst, std::fabs(u_gpu[i] - u_cpu[i]) / (std::fabs(u_cpu[i]) + 1e-300));
    worst = std::fmax(worst, std::fabs(s_gpu[i] - s_cpu[i]) / (std::fabs(s_cpu[i]) + 1e-300));
  }
  MESSAGE("max relative error GPU vs CPU (double): " << worst);
  CHECK(worst < 1e-12);
}

TEST_CASE("cuda: our Philox words equal cuRAND's, and the normals agree") {
  if (skip_without_device()) return;
  const int64_t n = 1 << 16;
  std::vector<float> ours(n), theirs(n);
  std::vector<uint32_t> our_bits(n), their_bits(n);
  pv::cuda_backend::philox_normals(1234567, 5, n, ours.data(), theirs.data(), our_bits.data(), their_bits.data());
  int64_t bit_mismatches = 0;
  double worst_normal = 0, worst_cpu = 0;
  for (int64_t i = 0; i < n; ++i) {
    bit_mismatches += our_bits[i] != their_bits[i];
    worst_normal = std::fmax(worst_normal, std::fabs(double(ours[i]) - theirs[i]));
    worst_cpu = std::fmax(worst_cpu, std::fabs(double(ours[i]) - pv::normal_at(1234567, 5, uint64_t(i))));
  }
  MESSAGE("max |ours - curand_normal4| = " << worst_normal << ", max |device - host| = " << worst_cpu);
  CHECK(bit_mismatches == 0);
  CHECK(worst_normal < 1e-4);  // cuRAND's device path uses the fast __sincosf
  CHECK(worst_cpu < 1e-5);
}

namespace {

std::shared_ptr<pv::io::AnnData> simulated(int64_t cells, int64_t genes) {
  pv::SimulationOptions o;
  o.cells = cells;
  o.genes = genes;
  o.seed = 31;
  o.pca_components = 2;
  return std::make_shared<pv::io::AnnData>(pv::simulate(o));
}

}  // namespace

TEST_CASE("cuda: the fused likelihood on the device matches the double CPU reference") {
  if (skip_without_device()) return;
  auto data = simulated(700, 300);
  for (bool offset : {false, true})
    for (bool library : {true, false}) {
      pv::ModelOptions o;
      o.add_offset = offset;
      o.correct_library_size = library;
      o.precision = pv::Precision::kDouble;
      pv::VelocityModel cpu(pv::make_model_data(data), o, 4), gpu(pv::make_model_data(data), o, 4);
      gpu.use_device(pv::DeviceLikelihood::create(gpu.data().counts));
      for (size_t i = 0; i < cpu.params().size(); ++i) cpu.params()[i] = gpu.params()[i] += 0.1 * std::sin(double(i));
      std::vector<double> gc, gg;
      const double lc = cpu.loss({}, 2, &gc), lg = gpu.loss({}, 2, &gg);
      double largest = 0, worst = 0;
      for (double g : gc) largest = std::fmax(largest, std::fabs(g));
      for (size_t i = 0; i < gc.size(); ++i) worst = std::fmax(worst, std::fabs(gg[i] - gc[i]));
      MESSAGE("offset " << offset << " library " << library << ": loss rel diff " << std::fabs(lg - lc) / std::fabs(lc)
                        << ", max gradient diff / max gradient " << worst / largest);
      CHECK(lg == doctest::Approx(lc).epsilon(1e-5));
      CHECK(worst <= 1e-3 * largest);
      // A minibatch of rows in any order.
      const std::vector<int64_t> batch = {699, 3, 350, 12, 500};
      CHECK(gpu.loss(batch, 3, &gg) == doctest::Approx(cpu.loss(batch, 3, &gc)).epsilon(1e-5));
    }
}

TEST_CASE("cuda: a 200-step SVI run agrees with the CPU backend") {
  if (skip_without_device()) return;
  auto data = simulated(1000, 200);
  pv::ModelOptions o;
  o.precision = pv::Precision::kDouble;
  pv::VelocityModel cpu(pv::make_model_data(data), o, 8), gpu(pv::make_model_data(data), o, 8);
  gpu.use_device(pv::DeviceLikelihood::create(gpu.data().counts));
  pv::TrainOptions t;
  t.max_epochs = 200;
  const pv::TrainResult rc = pv::Trainer(cpu, t).run(), rg = pv::Trainer(gpu, t).run();
  REQUIRE(rc.loss.size() == rg.loss.size());
  double worst_loss = 0, worst_param = 0;
  for (size_t i = 0; i < rc.loss.size(); ++i) worst_loss = std::fmax(worst_loss, std::fabs(rg.loss[i] - rc.loss[i]) / std::fabs(rc.loss[i]));
  for (size_t i = 0; i < cpu.params().size(); ++i) worst_param = std::fmax(worst_param, std::fabs(gpu.params()[i] - cpu.params()[i]));
  MESSAGE("200 steps: max relative loss difference " << worst_loss << ", max parameter difference " << worst_param);
  CHECK(worst_loss < 1e-3);
  CHECK(worst_param < 0.05);
}

TEST_CASE("cuda: the device runs are deterministic") {
  if (skip_without_device()) return;
  auto data = simulated(300, 100);
  pv::VelocityModel a(pv::make_model_data(data), pv::ModelOptions{}, 1), b(pv::make_model_data(data), pv::ModelOptions{}, 1);
  a.use_device(pv::DeviceLikelihood::create(a.data().counts));
  b.use_device(pv::DeviceLikelihood::create(b.data().counts));
  std::vector<double> ga, gb;
  CHECK(a.loss({}, 5, &ga) == b.loss({}, 5, &gb));
  CHECK(ga == gb);
}

namespace {

// A count-like X with ties and two identical rows (zero displacements), velocity fields with one
// all-zero row (zero velocity norm), and a kNN graph in a 2-D embedding.
struct ProjectionFixture {
  int64_t cells = 500, genes = 300, fields = 20;  // genes not a multiple of the tile; 20 = 16 + 4 fields
  std::vector<float> X;
  std::vector<std::vector<float>> V;
  std::vector<const float*> pointers;
  std::vector<double> embedding;
  pv::Knn knn;
  ProjectionFixture() {
    X.resize(size_t(cells * genes));
    V.assign(size_t(fields), std::vector<float>(size_t(cells * genes)));
    for (int64_t e = 0; e < cells * genes; ++e) {
      X[e] = float(std::floor(8 * (1 + std::sin(0.37 * double(e) + 0.01 * double(e / genes)))));
      for (int64_t f = 0; f < fields; ++f) V[f][e] = float(std::cos(0.11 * double(e) * double(f + 1) + double(f)));
    }
    for (int64_t g = 0; g < genes; ++g) X[5 * genes + g] = X[9 * genes + g], V[3][7 * genes + g] = 0.0f;
    for (const auto& v : V) pointers.push_back(v.data());
    for (int64_t c = 0; c < cells; ++c)
      embedding.push_back(std::sin(0.2 * double(c)) + 0.01 * double(c)), embedding.push_back(double(c % 7) + 0.3 * std::cos(double(c)));
    knn = pv::knn_graph(embedding.data(), cells, 2, 12);
  }
};

}  // namespace

TEST_CASE("cuda: velocity graphs and their embedding on the device match the CPU path") {
  if (skip_without_device()) return;
  const ProjectionFixture x;
  const std::vector<pv::VelocityGraph> cpu =
      pv::velocity_graphs(x.X.data(), x.pointers.data(), x.fields, x.cells, x.genes, x.knn);
  std::vector<std::vector<int64_t>> candidates(size_t(x.cells));
  for (int64_t i = 0; i < x.cells; ++i)
    candidates[i].assign(cpu[0].indices.begin() + cpu[0].indptr[i], cpu[0].indices.begin() + cpu[0].indptr[i + 1]);
  const auto device = pv::DeviceVelocityProjection::create(x.X.data(), x.cells, x.genes, candidates, x.embedding.data());
  std::vector<float> cosines;
  const std::vector<double> confidence = device->graphs(x.pointers.data(), x.fields, &cosines);
  const int64_t pairs = int64_t(cpu[0].indices.size());
  REQUIRE(int64_t(cosines.size()) == x.fields * pairs);
  double worst_cosine = 0, worst_confidence = 0;
  for (int64_t f = 0; f < x.fields; ++f)
    for (int64_t i = 0; i < x.cells; ++i) {
      double row_max = 0;
      for (int64_t e = cpu[f].indptr[i]; e < cpu[f].indptr[i + 1]; ++e) {
        worst_cosine = std::fmax(worst_cosine, std::fabs(double(cosines[f * pairs + e]) - cpu[f].cosine[e]));
        row_max = std::fmax(row_max, cpu[f].cosine[e]);
      }
      worst_confidence = std::fmax(worst_confidence, std::fabs(confidence[f * x.cells + i] - row_max));
    }
  MESSAGE("max |cosine GPU - CPU| " << worst_cosine << ", max |row confidence GPU - CPU| " << worst_confidence);
  CHECK(worst_cosine < 1e-5);
  CHECK(worst_confidence < 1e-5);
  CHECK(cosines[3 * pairs + cpu[3].indptr[7]] == 0.0f);  // the zero velocity row

  // The whole projection, autoscaled, against the CPU's.
  pv::FieldProjector on_cpu(x.X.data(), x.cells, x.genes, x.knn, x.embedding.data(), pv::Device::kCpu);
  pv::FieldProjector on_gpu(x.X.data(), x.cells, x.genes, x.knn, x.embedding.data(), pv::Device::kCuda);
  const std::vector<double> a = on_cpu.project(x.pointers.data(), x.fields), b = on_gpu.project(x.pointers.data(), x.fields);
  REQUIRE(a.size() == b.size());
  double largest = 0, worst = 0, worst_direction = 1;
  for (size_t e = 0; e < a.size(); e += 2) {
    largest = std::fmax(largest, std::hypot(a[e], a[e + 1]));
    worst = std::fmax(worst, std::hypot(a[e] - b[e], a[e + 1] - b[e + 1]));
    const double norms = std::hypot(a[e], a[e + 1]) * std::hypot(b[e], b[e + 1]);
    if (norms > 0) worst_direction = std::fmin(worst_direction, (a[e] * b[e] + a[e + 1] * b[e + 1]) / norms);
  }
  MESSAGE("embedded: max |GPU - CPU| / largest " << worst / largest << ", min cosine " << worst_direction);
  CHECK(worst < 1e-4 * largest);
  CHECK(worst_direction > 0.9999);
  std::vector<const float*> with_nan = x.pointers;
  std::vector<float> nan_field = x.V[0];
  nan_field[11] = std::nanf("");
  with_nan[0] = nan_field.data();
  CHECK_THROWS_AS(on_gpu.project(with_nan.data(), x.fields), pv::Error);
}

TEST_CASE("cuda: compute_statistics on the device matches the CPU") {
  if (skip_without_device()) return;
  const auto data = pv::testing::simulated_data(400, 60, 23, 6);
  const pv::VelocityModel model(pv::make_model_data(data), pv::ModelOptions{}, 3);
  pv::PosteriorOptions posterior;
  posterior.num_samples = 20;
  posterior.seed = 4;
  pv::StatisticsOptions options;
  pv::prepare_statistics(*data, &options, 0);
  const auto samples = pv::generate_posterior_samples(model, posterior);
  const pv::PosteriorStatistics cpu = pv::compute_statistics(*data, samples, options);
  options.device = pv::Device::kCuda;
  const pv::PosteriorStatistics gpu = pv::compute_statistics(*data, samples, options);
  for (const char* key : {"vector_field_posterior_samples", "vector_field_posterior_mean", "embeds_magnitude"}) {
    const std::vector<float>& a = cpu.arrays.at(key).values;
    const std::vector<float>& b = gpu.arrays.at(key).values;
    REQUIRE(a.size() == b.size());
    double largest = 0, worst = 0;
    for (size_t e = 0; e < a.size(); ++e)
      largest = std::fmax(largest, std::fabs(a[e])), worst = std::fmax(worst, std::fabs(double(a[e]) - b[e]));
    MESSAGE(key << ": max |GPU - CPU| / largest " << worst / largest);
    CHECK(worst < 1e-4 * largest);
  }
  const std::vector<float>& fa = cpu.arrays.at("fdri").values;
  const std::vector<float>& fb = gpu.arrays.at("fdri").values;
  double worst_fdri = 0;
  for (size_t c = 0; c < fa.size(); ++c) worst_fdri = std::fmax(worst_fdri, std::fabs(double(fa[c]) - fb[c]));
  MESSAGE("fdri: max |GPU - CPU| " << worst_fdri);
  CHECK(worst_fdri < 1e-3);
  CHECK(gpu.arrays.at("ut_mean").values == cpu.arrays.at("ut_mean").values);  // pass 1 stays on the CPU
}

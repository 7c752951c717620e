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
#include "engine/model.h"
#include "engine/simulator.h"
#include "engine/svi.h"
#include "kernels/dynamics_cpu.h"
#include "kernels/philox.h"

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

// CUDA backend against the CPU backend. Label `cuda`: where no device is present every case
// reports a skip (exit code 77 -> CTest "skipped"), and the file still compiles everywhere.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "engine/backend.h"
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

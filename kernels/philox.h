// Philox4x32-10 (Salmon et al. 2011), bit-identical to cuRAND's curandStatePhilox4_32_10_t, so the
// CPU and CUDA backends draw the same stream for the same (seed, subsequence, block).
//
// Stream layout: block b of subsequence q under seed k is philox(counter = {lo(b), hi(b), lo(q),
// hi(q)}, key = {lo(k), hi(k)}), which is exactly what cuRAND yields after
// curand_init(k, q, 4 * b, &state); normal4() then matches curand_normal4() on that state.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/pv_hd.h"

namespace pv {

struct Philox4 {
  uint32_t v[4];
};

PV_HD void philox_round(uint32_t ctr[4], const uint32_t key[2]) {
  const uint64_t p0 = uint64_t(0xD2511F53u) * ctr[0];
  const uint64_t p1 = uint64_t(0xCD9E8D57u) * ctr[2];
  const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
  const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
  const uint32_t c1 = ctr[1], c3 = ctr[3];
  ctr[0] = hi1 ^ c1 ^ key[0];
  ctr[1] = lo1;
  ctr[2] = hi0 ^ c3 ^ key[1];
  ctr[3] = lo0;
}

PV_HD Philox4 philox4x32_10(const uint32_t counter[4], const uint32_t key_in[2]) {
  uint32_t ctr[4] = {counter[0], counter[1], counter[2], counter[3]};
  uint32_t key[2] = {key_in[0], key_in[1]};
  for (int round = 0; round < 9; ++round) {
    philox_round(ctr, key);
    key[0] += 0x9E3779B9u;
    key[1] += 0xBB67AE85u;
  }
  philox_round(ctr, key);
  return {{ctr[0], ctr[1], ctr[2], ctr[3]}};
}

PV_HD Philox4 philox_block(uint64_t seed, uint64_t subsequence, uint64_t block) {
  const uint32_t ctr[4] = {uint32_t(block), uint32_t(block >> 32), uint32_t(subsequence),
                           uint32_t(subsequence >> 32)};
  const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
  return philox4x32_10(ctr, key);
}

struct Normal4 {
  float v[4];
};

// cuRAND's single-precision Box-Muller: uniforms in (0, 1] from the 32-bit words; the pair
// (x, y) gives (r sin v, r cos v).
PV_HD void box_muller(uint32_t x, uint32_t y, float* first, float* second) {
  using std::cos; using std::log; using std::sin; using std::sqrt;
  const float two_pow32_inv = 2.3283064e-10f;
  const float two_pow32_inv_2pi = 2.3283064e-10f * 6.2831855f;
  const float u = float(x) * two_pow32_inv + two_pow32_inv / 2.0f;
  const float v = float(y) * two_pow32_inv_2pi + two_pow32_inv_2pi / 2.0f;
  const float r = sqrt(-2.0f * log(u));
  *first = sin(v) * r;
  *second = cos(v) * r;
}

PV_HD Normal4 normal4(uint64_t seed, uint64_t subsequence, uint64_t block) {
  const Philox4 bits = philox_block(seed, subsequence, block);
  Normal4 n;
  box_muller(bits.v[0], bits.v[1], &n.v[0], &n.v[1]);
  box_muller(bits.v[2], bits.v[3], &n.v[2], &n.v[3]);
  return n;
}

// The i-th standard normal of a subsequence: element i % 4 of block i / 4.
PV_HD float normal_at(uint64_t seed, uint64_t subsequence, uint64_t index) {
  return normal4(seed, subsequence, index / 4).v[index % 4];
}

// out[j] = normal_at(seed, subsequence, first + j) for j < count, each block of four drawn once
// (normal_at alone draws a whole block, two Box-Muller pairs, for every value it returns).
template <class T>
PV_HD void normals_at(uint64_t seed, uint64_t subsequence, uint64_t first, int64_t count, T* out) {
  int64_t j = 0;
  while (j < count) {
    const uint64_t index = first + uint64_t(j);
    const Normal4 n = normal4(seed, subsequence, index / 4);
    for (uint64_t k = index % 4; k < 4 && j < count; ++k, ++j) out[j] = T(n.v[k]);
  }
}

// A uniform in (0, 1] from a 32-bit word, as curand_uniform() maps it.
PV_HD float uniform_from_bits(uint32_t x) {
  return float(x) * 2.3283064e-10f + 2.3283064e-10f / 2.0f;
}

}  // namespace pv

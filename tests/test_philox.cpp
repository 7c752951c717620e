#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/philox.h"

TEST_CASE("Philox4x32-10 reproduces Random123's known-answer vectors") {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    const pv::Philox4 r = pv::philox4x32_10(k.ctr, k.key);
    for (int i = 0; i < 4; ++i) CHECK(r.v[i] == k.out[i]);
  }
}

TEST_CASE("the stream layout is cuRAND's: block in counter words 0-1, subsequence in 2-3") {
  const uint64_t seed = 0x0123456789abcdefull, subsequence = 0x100000002ull, block = 0x300000004ull;
  const uint32_t ctr[4] = {4u, 3u, 2u, 1u};
  const uint32_t key[2] = {0x89abcdefu, 0x01234567u};
  const pv::Philox4 direct = pv::philox4x32_10(ctr, key);
  const pv::Philox4 layered = pv::philox_block(seed, subsequence, block);
  for (int i = 0; i < 4; ++i) CHECK(direct.v[i] == layered.v[i]);
  // normal_at(i) is element i % 4 of block i / 4.
  const pv::Normal4 n = pv::normal4(seed, 9, 5);
  for (int i = 0; i < 4; ++i) CHECK(pv::normal_at(seed, 9, 20 + i) == n.v[i]);
}

TEST_CASE("normals_at fills a run of normal_at values, drawing each block once") {
  // Every start modulo 4 and lengths that end inside, at and past a block boundary.
  for (uint64_t first = 0; first < 6; ++first)
    for (int64_t count : {0, 1, 3, 4, 5, 9, 17}) {
      std::vector<double> out(static_cast<size_t>(count) + 1, -1.0);
      pv::normals_at(77, 11, first, count, out.data());
      for (int64_t j = 0; j < count; ++j) CHECK(out[j] == double(pv::normal_at(77, 11, first + uint64_t(j))));
      CHECK(out[count] == -1.0);  // nothing written past the run
    }
}

TEST_CASE("Box-Muller follows cuRAND's host formula") {
  float a, b;
  pv::box_muller(0u, 0u, &a, &b);
  // u = 2^-33 -> r = sqrt(-2 log u) = 6.7685..., v = pi 2^-32 -> (r sin v, r cos v)
  CHECK(b == doctest::Approx(std::sqrt(-2.0 * std::log(std::ldexp(1.0, -33)))).epsilon(1e-6));
  CHECK(std::fabs(a) < 1e-7f);
  pv::box_muller(0xffffffffu, 0x40000000u, &a, &b);  // u -> 1: radius ~ 0
  CHECK(std::fabs(a) < 1e-3f);
  CHECK(std::fabs(b) < 1e-3f);
}

TEST_CASE("normals have mean 0, variance 1 and no correlation between neighbours") {
  const int n = 1 << 20;
  double sum = 0, sum2 = 0, lag = 0, prev = 0;
  for (int i = 0; i < n; ++i) {
    const double x = pv::normal_at(42, 3, uint64_t(i));
    sum += x;
    sum2 += x * x;
    lag += x * prev;
    prev = x;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  CHECK(std::fabs(mean) < 5.0 / std::sqrt(double(n)));
  CHECK(std::fabs(var - 1.0) < 0.01);
  CHECK(std::fabs(lag / n) < 0.01);
  // Different subsequences and seeds give different streams.
  CHECK(pv::normal_at(42, 3, 0) != pv::normal_at(42, 4, 0));
  CHECK(pv::normal_at(42, 3, 0) != pv::normal_at(43, 3, 0));
}

// Counter-based draws for the simulator and the posterior predictive: every draw is a pure
// function of (seed, stream, index), so results do not depend on threads, batching or backend.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/philox.h"
#include "kernels/pv_hd.h"

namespace pv {

// A uniform in (0, 1), never 0 or 1, with 53 random bits: 27 from `first` and 26 from `second`.
// Each part is converted from a 32-bit integer (exact), so that a loop of it vectorises.
PV_HD double uniform_from_words(uint32_t first, uint32_t second) {
  const double hi = double(int32_t(first >> 5)), lo = double(int32_t(second >> 6));
  return (hi * 67108864.0 + lo + 0.5) * (1.0 / 9007199254740992.0);
}

// A private sequence of 32-bit words for one (kind, id): subsequence = kind << 48 | id, blocks
// consumed in order. Kinds keep unrelated draws (gene latents, cell times, counts...) apart.
class CounterStream {
 public:
  PV_HD CounterStream(uint64_t seed, uint32_t kind, uint64_t id)
      : seed_(seed), subsequence_((uint64_t(kind) << 48) | (id & ((uint64_t(1) << 48) - 1))) {}

  PV_HD uint32_t next_bits() {
    if (used_ == 4) {
      bits_ = philox_block(seed_, subsequence_, block_++);
      used_ = 0;
    }
    return bits_.v[used_++];
  }
  // Uniform in (0, 1), never 0 or 1, from the next two words (uniform_from_words).
  PV_HD double uniform() {
    const uint32_t first = next_bits();
    return uniform_from_words(first, next_bits());
  }
  PV_HD double normal() {
    using std::cos; using std::log; using std::sqrt;
    const double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
  }

 private:
  uint64_t seed_, subsequence_;
  uint64_t block_ = 0;
  Philox4 bits_{};
  int used_ = 4;
};

// Poisson(rate) by inversion for small rates and Hormann's PTRS transformed rejection (1993)
// above, so the cost stays bounded for large rates.
template <class Stream>
PV_HD double sample_poisson(double rate, Stream& stream) {
  using std::floor; using std::exp; using std::fabs; using std::lgamma; using std::log; using std::sqrt;
  if (!(rate > 0.0)) return 0.0;
  if (rate < 10.0) {
    const double u = stream.uniform();
    double k = 0.0, p = exp(-rate), cdf = p;
    while (u > cdf && k < 1000.0) {
      k += 1.0;
      p *= rate / k;
      cdf += p;
    }
    return k;
  }
  const double sqrt_rate = sqrt(rate), log_rate = log(rate);
  const double b = 0.931 + 2.53 * sqrt_rate;
  const double a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
  const double v_r = 0.9277 - 3.6224 / (b - 2.0);
  while (true) {
    const double u = stream.uniform() - 0.5;
    const double v = stream.uniform();
    const double us = 0.5 - fabs(u);
    const double k = floor((2.0 * a / us + b) * u + rate + 0.43);
    if (us >= 0.07 && v <= v_r) return k;
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <= -rate + k * log_rate - lgamma(k + 1.0))
      return k;
  }
}

// Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through the u^(1/shape) boost.
template <class Stream>
PV_HD double sample_gamma(double shape, Stream& stream) {
  using std::log; using std::pow; using std::sqrt;
  if (!(shape > 0.0)) return 0.0;
  if (shape < 1.0) return sample_gamma(shape + 1.0, stream) * pow(stream.uniform(), 1.0 / shape);
  const double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = stream.normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = stream.uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
  }
}

// Negative binomial with the given mean and total_count (a gamma-Poisson mixture).
template <class Stream>
PV_HD double sample_negative_binomial(double mean, double total_count, Stream& stream) {
  return sample_poisson(sample_gamma(total_count, stream) * mean / total_count, stream);
}

// Bernoulli(sigmoid(logit)).
template <class Stream>
PV_HD bool sample_bernoulli_logit(double logit, Stream& stream) {
  using std::exp;
  return stream.uniform() * (1.0 + exp(-logit)) < 1.0;
}

}  // namespace pv

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/vector_math.h"
#include "kernels/dynamics.h"
#include "kernels/math.h"
#include "tests/finite_difference.h"

using pv::testing::central_difference;
using pv::testing::close;

TEST_CASE("softplus, sigmoid and log-sigmoid: values, stability and derivatives") {
  CHECK(pv::softplus(0.0) == doctest::Approx(std::log(2.0)));
  CHECK(pv::softplus(800.0) == 800.0);                  // no overflow
  CHECK(pv::softplus(-800.0) >= 0.0);
  CHECK(pv::softplus(-40.0) == doctest::Approx(std::exp(-40.0)).epsilon(1e-12));
  CHECK(pv::log_sigmoid(-800.0) == -800.0);
  CHECK(std::isfinite(pv::log_sigmoid(800.0)));
  for (double x : {-30.0, -3.0, -0.5, 0.0, 0.7, 4.0, 25.0}) {
    CAPTURE(x);
    CHECK(close(pv::sigmoid(x), central_difference([](double v) { return pv::softplus(v); }, x), 1e-8, 1e-12));
    CHECK(close(pv::sigmoid(-x), central_difference([](double v) { return pv::log_sigmoid(v); }, x), 1e-8, 1e-12));
  }
  CHECK(pv::softplus(3.0f) == doctest::Approx(std::log1p(std::exp(3.0))).epsilon(1e-6));
}

TEST_CASE("two-term logsumexp is stable and its derivatives are the softmax weights") {
  const auto r = pv::logsumexp2(1000.0, 1000.0);
  CHECK(r.value == doctest::Approx(1000.0 + std::log(2.0)));
  CHECK(r.d_a == doctest::Approx(0.5));
  const auto inf = pv::logsumexp2(-INFINITY, -INFINITY);
  CHECK(std::isinf(inf.value));
  CHECK_FALSE(std::isnan(inf.d_a));
  for (auto [a, b] : std::vector<std::pair<double, double>>{{-3.0, 2.0}, {5.0, 4.9}, {-700.0, -705.0}, {0.0, -40.0}}) {
    CAPTURE(a);
    CAPTURE(b);
    const auto v = pv::logsumexp2(a, b);
    CHECK(v.value == doctest::Approx(std::log(std::exp(a) + std::exp(b)) ).epsilon(1e-12));
    if (a > -100) {
      CHECK(close(v.d_a, central_difference([&](double x) { return pv::logsumexp2(x, b).value; }, a), 1e-7, 1e-12));
      CHECK(close(v.d_b, central_difference([&](double x) { return pv::logsumexp2(a, x).value; }, b), 1e-7, 1e-12));
    }
    CHECK(v.d_a + v.d_b == doctest::Approx(1.0));
  }
}

TEST_CASE("Normal and LogNormal log-densities: values and derivatives") {
  // Normal(0.3; -1, 2): -0.5 (1.3/2)^2 - log 2 - 0.5 log(2 pi)
  const double expected = -0.5 * 0.65 * 0.65 - std::log(2.0) - 0.5 * std::log(2 * M_PI);
  CHECK(pv::normal_log_pdf(0.3, -1.0, 2.0).value == doctest::Approx(expected).epsilon(1e-14));
  // LogNormal(2; 0, 1) = exp(-log(2)^2 / 2) / (2 sqrt(2 pi))
  CHECK(pv::lognormal_log_pdf(2.0, 0.0, 1.0).value ==
        doctest::Approx(std::log(std::exp(-0.5 * std::log(2.0) * std::log(2.0)) / (2.0 * std::sqrt(2 * M_PI)))));
  for (auto density : {0, 1}) {
    const auto f = [density](double x, double m, double s) {
      return density == 0 ? pv::normal_log_pdf(x, m, s) : pv::lognormal_log_pdf(x, m, s);
    };
    const double x = 1.7, m = 0.4, s = 0.8;
    const auto r = f(x, m, s);
    CHECK(close(r.d_x, central_difference([&](double v) { return f(v, m, s).value; }, x), 1e-7, 1e-10));
    CHECK(close(r.d_loc, central_difference([&](double v) { return f(x, v, s).value; }, m), 1e-7, 1e-10));
    CHECK(close(r.d_scale, central_difference([&](double v) { return f(x, m, v).value; }, s), 1e-7, 1e-10));
  }
}

TEST_CASE("digamma matches the derivative of lgamma") {
  for (double x : {1e-3, 0.1, 0.5, 1.0, 2.5, 9.99, 10.0, 37.0, 1e4}) {
    CAPTURE(x);
    CHECK(close(pv::digamma(x), central_difference([](double v) { return std::lgamma(v); }, x, 1e-7), 1e-6, 1e-8));
  }
  CHECK(pv::digamma(1.0) == doctest::Approx(-0.57721566490153286).epsilon(1e-13));
}

TEST_CASE("Poisson log-pmf: values and the rate derivative") {
  CHECK(pv::poisson_log_pmf(0.0, 2.5).value == doctest::Approx(-2.5));
  CHECK(pv::poisson_log_pmf(3.0, 2.0).value == doctest::Approx(std::log(std::pow(2.0, 3) * std::exp(-2.0) / 6.0)));
  for (double k : {0.0, 1.0, 7.0, 250.0}) {
    for (double rate : {1e-3, 0.8, 12.0, 300.0}) {
      const auto r = pv::poisson_log_pmf(k, rate);
      CHECK(close(r.d_rate, central_difference([&](double v) { return pv::poisson_log_pmf(k, v).value; }, rate), 1e-6, 1e-9));
    }
  }
}

TEST_CASE("negative binomial log-pmf: values, sums to one, derivatives") {
  // NB(k; r=3, p=sigmoid(l)) with l = log(0.4/0.6): pmf(2) = C(4,2) 0.6^3 0.4^2
  const double l = std::log(0.4 / 0.6);
  CHECK(std::exp(pv::negbinomial_log_pmf(2.0, 3.0, l).value) == doctest::Approx(6 * 0.216 * 0.16).epsilon(1e-12));
  double total = 0;
  for (int k = 0; k < 400; ++k) total += std::exp(pv::negbinomial_log_pmf(double(k), 2.3, 0.4).value);
  CHECK(total == doctest::Approx(1.0).epsilon(1e-10));
  for (double k : {0.0, 1.0, 5.0, 60.0}) {
    const double r = 1.7, logits = -0.3;
    const auto v = pv::negbinomial_log_pmf(k, r, logits);
    CHECK(close(v.d_total_count, central_difference([&](double x) { return pv::negbinomial_log_pmf(k, x, logits).value; }, r), 1e-6, 1e-9));
    CHECK(close(v.d_logits, central_difference([&](double x) { return pv::negbinomial_log_pmf(k, r, x).value; }, logits), 1e-6, 1e-9));
    // The model's (mean, log-dispersion) form.
    const double mean = 3.2, log_r = 0.4, eps = 1e-6;
    const auto m = pv::negbinomial_mean_log_pmf(k, mean, log_r, eps);
    CHECK(close(m.d_mean, central_difference([&](double x) { return pv::negbinomial_mean_log_pmf(k, x, log_r, eps).value; }, mean), 1e-6, 1e-9));
    CHECK(close(m.d_log_dispersion, central_difference([&](double x) { return pv::negbinomial_mean_log_pmf(k, mean, x, eps).value; }, log_r), 1e-6, 1e-9));
  }
  // Its mean is the requested mean (up to eps).
  double mean_of = 0;
  for (int k = 0; k < 2000; ++k) mean_of += k * std::exp(pv::negbinomial_mean_log_pmf(double(k), 4.5, 0.2, 1e-6).value);
  CHECK(mean_of == doctest::Approx(4.5).epsilon(1e-5));
}

TEST_CASE("the fast likelihood's inline float exp, log and log1p are within a few float ulps") {
  // Relative error in float ulps (2^-23) against the double libm, over the ranges the fast path uses.
  auto worst_ulps = [](auto f, auto reference, double lo, double hi, int n) {
    double worst = 0;
    for (int i = 0; i <= n; ++i) {
      const double x = lo + (hi - lo) * i / n;
      const double want = reference(double(float(x)));
      worst = std::max(worst, std::fabs(double(f(float(x))) - want) / std::fabs(want) * 8388608.0);
    }
    return worst;
  };
  const double exp_ulps = worst_ulps(pv::vmath::exp_neg, [](double x) { return std::exp(-x); }, 0.0, 80.0, 200000);
  const double log_ulps = worst_ulps(pv::vmath::log_positive, [](double x) { return std::log(x); }, 1e-6, 4.0, 200000);
  const double log_big_ulps = worst_ulps(pv::vmath::log_positive, [](double x) { return std::log(x); }, 4.0, 1e6, 200000);
  const double log1p_ulps = worst_ulps([](float x) { return pv::vmath::log1p_reciprocal_unit(x).log1p; },
                                       [](double x) { return std::log1p(x); }, 1e-12, 1.0, 200000);
  const double reciprocal_ulps = worst_ulps([](float x) { return pv::vmath::log1p_reciprocal_unit(x).reciprocal; },
                                            [](double x) { return 1.0 / (1.0 + x); }, 0.0, 1.0, 200000);
  MESSAGE("worst ulps: exp_neg " << exp_ulps << ", log " << log_ulps << " / " << log_big_ulps << ", log1p " << log1p_ulps
                                 << ", 1/(1+x) " << reciprocal_ulps);
  CHECK(exp_ulps < 4);
  CHECK(log_ulps < 4);
  CHECK(log_big_ulps < 4);
  CHECK(log1p_ulps < 6);
  CHECK(reciprocal_ulps < 4);
  // Past the clamp e^-x stays a tiny normal number rather than 0, inf or NaN.
  CHECK(pv::vmath::exp_neg(1000.0f) > 0.0f);
  CHECK(pv::vmath::exp_neg(1000.0f) < 1e-34f);
  CHECK(pv::vmath::log_positive(1.0f) == 0.0f);
  CHECK(pv::vmath::log1p_reciprocal_unit(0.0f).log1p == 0.0f);
}

TEST_CASE("exp_neg_phi gives e^-x, phi(x) = (1 - e^-x)/x and phi'(x) from one exponential, stable at 0") {
  // phi and phi' in double by their series near 0 and closed forms elsewhere, as the reference.
  const auto phi = [](double x) { return x < 1e-4 ? 1 - x / 2 + x * x / 6 : -std::expm1(-x) / x; };
  const auto dphi = [&](double x) { return x < 1e-3 ? -0.5 + x / 3 - x * x / 8 : (std::exp(-x) - phi(x)) / x; };
  double worst_e = 0, worst_phi = 0, worst_dphi = 0;
  for (int i = 0; i <= 200000; ++i) {
    // Dense near 0 and around the switch at ln2/2, then out to 60.
    const float x = i < 100000 ? float(1e-7 + 0.7 * i / 100000.0) : float(0.7 + 60.0 * (i - 100000) / 100000.0);
    const auto r = pv::vmath::exp_neg_phi(x);
    worst_e = std::max(worst_e, std::fabs(r.e - std::exp(-double(x))) / std::exp(-double(x)));
    worst_phi = std::max(worst_phi, std::fabs(r.phi - phi(x)) / phi(x));
    worst_dphi = std::max(worst_dphi, std::fabs(r.dphi - dphi(x)) / std::fabs(dphi(x)));
  }
  MESSAGE("exp_neg_phi worst relative error: e " << worst_e << ", phi " << worst_phi << ", phi' " << worst_dphi);
  CHECK(worst_e < 4e-7);
  CHECK(worst_phi < 4e-7);
  CHECK(worst_dphi < 2e-6);
  const auto zero = pv::vmath::exp_neg_phi(0.0f);
  CHECK(zero.e == 1.0f);
  CHECK(zero.phi == 1.0f);
  CHECK(zero.dphi == -0.5f);
  CHECK(std::isfinite(pv::vmath::exp_neg_phi(1000.0f).dphi));
}

TEST_CASE("gap_decay gives tau E and its rate derivatives for either order of the rates, without a division") {
  // Against kernels/dynamics.h's decay_difference in double, over rate ratios near 1 (the series
  // side of the switch at |gap tau| = 0.05 and just past it) and far from it, both orders, and
  // lo tau <= 5. Where gap tau is just above the switch the closed forms cancel: the float
  // rounding of e^-beta tau and e^-gamma tau is magnified about 2 / (gap tau)^2 in the derivatives
  // (as in the ordered form this replaced).
  double worst[3] = {0, 0, 0}, worst_far[3] = {0, 0, 0};
  int equal_rates = 0;
  for (int ib = 0; ib < 200; ++ib)
    for (int ir = 0; ir < 300; ++ir)
      for (int it = 0; it < 50; ++it) {
        const float beta = float(0.01 * std::pow(1.05, ib));
        const double ratio = ir < 200 ? 1.0 + (ir - 100) * 2e-4 : std::pow(1.1, ir - 250);
        const float gamma = float(beta * ratio), tau = float(0.001 * std::pow(1.3, it));
        if (std::min(beta, gamma) * tau > 5) continue;
        const double eb = std::exp(-double(beta) * tau), eg = std::exp(-double(gamma) * tau);
        const auto ref = pv::decay_difference<double>(beta, gamma, tau, eb, eg);
        const auto got = pv::vmath::gap_decay(tau, beta, gamma, pv::vmath::inverse_gap(beta, gamma), float(eb), float(eg));
        const double want[3] = {tau * ref.value, tau * ref.d_b, tau * ref.d_g};
        const double have[3] = {got.tau_E, got.tau_dE_dbeta, got.tau_dE_dgamma};
        const bool far = std::fabs((double(gamma) - beta) * tau) > 0.5;
        equal_rates += beta == gamma;
        for (int k = 0; k < 3; ++k) {
          const double error = std::fabs(have[k] - want[k]) / std::max(std::fabs(want[k]), 1e-30);
          worst[k] = std::max(worst[k], error);
          if (far) worst_far[k] = std::max(worst_far[k], error);
        }
      }
  MESSAGE("gap_decay worst relative error (tau E, tau dE/dbeta, tau dE/dgamma): " << worst[0] << ", " << worst[1] << ", "
          << worst[2] << "; with |gap tau| > 0.5: " << worst_far[0] << ", " << worst_far[1] << ", " << worst_far[2]);
  CHECK(equal_rates > 0);
  CHECK(worst[0] < 2e-5);
  CHECK(worst[1] < 1e-3);
  CHECK(worst[2] < 1e-3);
  for (double w : worst_far) CHECK(w < 5e-6);
}

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/dynamics.h"
#include "tests/finite_difference.h"

using pv::testing::central_difference;
using pv::testing::close;

namespace {

// The reference's two-branch form, in long double so that it stays well conditioned close to the
// diagonal (its cancellation error there is ~ eps / |gamma - beta|).
struct Reference {
  long double u, s;
};
Reference two_branch(long double tau, long double u0, long double s0, long double alpha, long double beta,
                     long double gamma) {
  const long double eu = std::exp(-beta * tau), es = std::exp(-gamma * tau);
  const long double u = u0 * eu + alpha / beta * (1 - eu);
  long double s;
  if (gamma == beta)
    s = s0 * eu + alpha / beta * (1 - eu) - (alpha - beta * u0) * tau * eu;  // Li et al. eq. 2.12
  else
    s = s0 * es + alpha / gamma * (1 - es) + (alpha - beta * u0) / (gamma - beta) * (es - eu);
  return {u, s};
}

std::vector<double> inputs_of(double tau, double u0, double s0, double alpha, double beta, double gamma) {
  return {tau, u0, s0, alpha, beta, gamma};
}

pv::DynamicsWithGrad<double> eval(const std::vector<double>& x) {
  return pv::mrna_dynamics_with_grad(x[0], x[1], x[2], x[3], x[4], x[5]);
}

}  // namespace

TEST_CASE("golden value of the seed: (tau=2, u0=1, s0=0.5, alpha=0.5, beta=0.4, gamma=0.3)") {
  const auto d = pv::mrna_dynamics(2.0, 1.0, 0.5, 0.5, 0.4, 0.3);
  CHECK(std::round(d.u * 1e4) / 1e4 == doctest::Approx(1.1377).epsilon(1e-12));
  CHECK(std::round(d.s * 1e4) / 1e4 == doctest::Approx(0.9269).epsilon(1e-12));
  const auto f = pv::mrna_dynamics(2.0f, 1.0f, 0.5f, 0.5f, 0.4f, 0.3f);
  CHECK(f.u == doctest::Approx(d.u).epsilon(1e-6));
  CHECK(f.s == doctest::Approx(d.s).epsilon(1e-6));
  const auto g = pv::mrna_dynamics_with_grad(2.0, 1.0, 0.5, 0.5, 0.4, 0.3);
  CHECK(g.u == d.u);
  CHECK(g.s == d.s);
}

TEST_CASE("gamma == beta equals Li et al. eq. 2.12") {
  for (double beta : {0.05, 0.4, 3.0}) {
    for (double tau : {0.1, 2.0, 15.0}) {
      const double u0 = 0.7, s0 = 1.3, alpha = 2.2;
      const auto d = pv::mrna_dynamics(tau, u0, s0, alpha, beta, beta);
      const auto ref = two_branch(tau, u0, s0, alpha, beta, beta);
      CHECK(close(d.u, double(ref.u), 1e-14, 1e-15));
      CHECK(close(d.s, double(ref.s), 1e-13, 1e-15));
    }
  }
}

TEST_CASE("close to the diagonal the values agree with the two-branch form, and are smooth") {
  const double tau = 3.0, u0 = 0.5, s0 = 0.2, alpha = 1.5, beta = 0.6;
  for (double delta : {1e-3, 1e-6, 1e-9}) {
    for (double sign : {-1.0, 1.0}) {
      const double gamma = beta * (1 + sign * delta);
      CAPTURE(delta);
      CAPTURE(sign);
      const auto d = pv::mrna_dynamics(tau, u0, s0, alpha, beta, gamma);
      const auto ref = two_branch(tau, u0, s0, alpha, beta, gamma);
      // long double cancellation error ~ 1e-19 / delta
      CHECK(close(d.u, double(ref.u), 1e-14, 0));
      CHECK(close(d.s, double(ref.s), 1e-13 + 1e-18 / delta, 0));
    }
  }
  // Every derivative is continuous across gamma == beta.
  const auto on = pv::mrna_dynamics_with_grad(tau, u0, s0, alpha, beta, beta);
  for (double delta : {1e-7, -1e-7}) {
    const auto off = pv::mrna_dynamics_with_grad(tau, u0, s0, alpha, beta, beta * (1 + delta));
    for (int k = 0; k < pv::kDynInputs; ++k) {
      CAPTURE(k);
      CHECK(close(off.du[k], on.du[k], 1e-6, 1e-12));
      CHECK(close(off.ds[k], on.ds[k], 1e-6, 1e-12));
    }
  }
}

TEST_CASE("extreme inputs give finite values and derivatives") {
  const double grid[] = {0.0, 1e-6, 1e6};
  int checked = 0;
  for (double tau : grid)
    for (double alpha : grid)
      for (double beta : grid)
        for (double gamma : grid)
          for (double start : {0.0, 1.0, 1e3}) {
            const auto d = pv::mrna_dynamics_with_grad(tau, start, start, alpha, beta, gamma);
            const auto f = pv::mrna_dynamics_with_grad(float(tau), float(start), float(start), float(alpha),
                                                       float(beta), float(gamma));
            bool finite = std::isfinite(d.u) && std::isfinite(d.s) && std::isfinite(f.u) && std::isfinite(f.s);
            for (int k = 0; k < pv::kDynInputs; ++k)
              finite = finite && std::isfinite(d.du[k]) && std::isfinite(d.ds[k]);
            CAPTURE(tau);
            CAPTURE(alpha);
            CAPTURE(beta);
            CAPTURE(gamma);
            CAPTURE(start);
            CHECK(finite);
            ++checked;
          }
  CHECK(checked == 243);
  // Limits that are known in closed form.
  CHECK(pv::mrna_dynamics(0.0, 2.0, 3.0, 5.0, 1.0, 1.0).u == 2.0);
  CHECK(pv::mrna_dynamics(0.0, 2.0, 3.0, 5.0, 1.0, 1.0).s == 3.0);
  CHECK(pv::mrna_dynamics(1e6, 0.0, 0.0, 2.0, 0.5, 0.25).u == doctest::Approx(4.0));   // alpha / beta
  CHECK(pv::mrna_dynamics(1e6, 0.0, 0.0, 2.0, 0.5, 0.25).s == doctest::Approx(8.0));   // alpha / gamma
  CHECK(pv::mrna_dynamics(2.0, 1.0, 0.0, 3.0, 0.0, 0.0).u == doctest::Approx(7.0));    // u0 + alpha tau
}

TEST_CASE("all twelve partial derivatives match central finite differences") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> log_uniform(-2.5, 1.5);
  std::vector<std::vector<double>> points = {
      inputs_of(2.0, 1.0, 0.5, 0.5, 0.4, 0.3),
      inputs_of(1.3, 0.4, 0.9, 1.1, 0.7, 0.7),         // on the diagonal
      inputs_of(1.3, 0.4, 0.9, 1.1, 0.7, 0.7 * (1 + 1e-5)),
      inputs_of(0.05, 2.0, 0.1, 3.0, 2.0, 0.01),
      inputs_of(25.0, 0.0, 0.0, 0.8, 0.3, 1.9),
  };
  for (int i = 0; i < 40; ++i) {
    std::vector<double> p(6);
    for (double& v : p) v = std::exp(log_uniform(rng));
    points.push_back(p);
  }
  for (const auto& x : points) {
    const auto d = eval(x);
    for (int k = 0; k < pv::kDynInputs; ++k) {
      auto u_of = [&](double v) { auto y = x; y[k] = v; return eval(y).u; };
      auto s_of = [&](double v) { auto y = x; y[k] = v; return eval(y).s; };
      CAPTURE(k);
      CAPTURE(x[0]);
      CAPTURE(x[4]);
      CAPTURE(x[5]);
      CHECK(close(d.du[k], central_difference(u_of, x[k]), 1e-6, 1e-9));
      CHECK(close(d.ds[k], central_difference(s_of, x[k]), 1e-6, 1e-9));
    }
  }
}

TEST_CASE("phi and phi' are continuous where the series hands over to the closed form") {
  const double limit = pv::decay_series_limit<double>(), below = std::nextafter(limit, 0.0);
  CHECK(pv::decay_fraction(below) == doctest::Approx(pv::decay_fraction(limit)).epsilon(1e-14));
  CHECK(pv::decay_fraction_derivative(below) == doctest::Approx(pv::decay_fraction_derivative(limit)).epsilon(1e-12));
  CHECK(pv::decay(below).e == doctest::Approx(std::exp(-below)).epsilon(1e-15));
  const float flimit = pv::decay_series_limit<float>(), fbelow = std::nextafter(flimit, 0.0f);
  CHECK(pv::decay_fraction(fbelow) == doctest::Approx(pv::decay_fraction(flimit)).epsilon(1e-6));
  CHECK(pv::decay_fraction_derivative(fbelow) == doctest::Approx(pv::decay_fraction_derivative(flimit)).epsilon(1e-5));
  CHECK(pv::decay_fraction(0.0) == 1.0);
  CHECK(pv::decay_fraction_derivative(0.0) == -0.5);
  CHECK(pv::decay_fraction(0.999f) == doctest::Approx(-std::expm1(-0.999) / 0.999).epsilon(1e-6));
  CHECK(pv::decay_fraction_derivative(0.5f) ==
        doctest::Approx((std::exp(-0.5) * 1.5 - 1.0) / 0.25).epsilon(2e-6));
}

#include <doctest/doctest.h>

#include <cmath>

#include "engine/error.h"
#include "engine/optimizer.h"

TEST_CASE("ClippedAdam: three steps against values computed by hand") {
  // Expected numbers: Pyro's ClippedAdam update (lr *= lrd first, clamp to +-10, NaN -> 0,
  // denominator sqrt(v) + eps, step size lr sqrt(1 - b2^t) / (1 - b1^t)) worked through in
  // double precision for two parameters.
  pv::ClippedAdamOptions options;
  options.lr = 0.1;
  options.lr_decay = 0.5;
  pv::ClippedAdam adam(2, options);
  double params[2] = {1.0, -2.0};
  const double grads[3][2] = {{0.5, 3.0}, {-20.0, NAN}, {1e-3, -0.25}};
  const double expected[3][2] = {{0.9500000316227566, -2.049999994729538},
                                 {0.9677441535696533, -2.0667514493163095},
                                 {0.9746014844610339, -2.0725397104575447}};
  for (int t = 0; t < 3; ++t) {
    adam.step(params, grads[t]);
    CAPTURE(t);
    CHECK(params[0] == doctest::Approx(expected[t][0]).epsilon(1e-13));
    CHECK(params[1] == doctest::Approx(expected[t][1]).epsilon(1e-13));
  }
  CHECK(adam.steps_taken() == 3);
  CHECK(adam.current_lr() == doctest::Approx(0.1 * 0.125));
  CHECK(adam.first_moment()[0] == doctest::Approx(-0.8593999999999998));  // the clipped -10 entered
  CHECK(adam.second_moment()[1] == doctest::Approx(0.009044509000000008));  // the NaN entered as 0
}

TEST_CASE("ClippedAdam: a long run minimises a quadratic") {
  pv::ClippedAdamOptions options;
  options.lr = 0.05;
  pv::ClippedAdam adam(3, options);
  double x[3] = {5.0, -4.0, 100.0};
  const double target[3] = {1.0, 2.0, -3.0};
  for (int step = 0; step < 4000; ++step) {
    double g[3];
    for (int i = 0; i < 3; ++i) g[i] = 2.0 * (x[i] - target[i]);
    adam.step(x, g);
  }
  for (int i = 0; i < 3; ++i) CHECK(x[i] == doctest::Approx(target[i]).epsilon(1e-3));
}

TEST_CASE("ClippedAdam rejects impossible options") {
  pv::ClippedAdamOptions bad;
  bad.lr = -1;
  CHECK_THROWS_AS(pv::ClippedAdam(1, bad), pv::Error);
  bad = {};
  bad.lr_decay = 0;
  CHECK_THROWS_AS(pv::ClippedAdam(1, bad), pv::Error);
  bad = {};
  bad.beta2 = 1.0;
  CHECK_THROWS_AS(pv::ClippedAdam(1, bad), pv::Error);
}

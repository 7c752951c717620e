#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/ops.h"
#include "tests/finite_difference.h"

namespace {

using pv::Tape;
using pv::Var;
namespace ops = pv::ops;

// A composite of every generic op: theta (3) and x (5) are the differentiated inputs; x is used
// twice so its gradient must accumulate from two paths.
double composite(Tape<double>& tape, std::vector<double>& theta, std::vector<double>& x,
                 std::vector<double>* d_theta, std::vector<double>* d_x) {
  tape.rewind();
  std::vector<double> g_theta(3, 0.0), g_x(5, 0.0);
  const Var<double> th = Tape<double>::external(theta.data(), g_theta.data(), 3);
  const Var<double> xv = Tape<double>::external(x.data(), g_x.data(), 5);
  const Var<double> p = ops::softplus(tape, th);
  const Var<double> t = ops::exp(tape, xv);
  const Var<double> zero = tape.constant(1, 0.0), one = tape.constant(1, 1.0);
  const Var<double> loc = tape.constant(1, 0.3);
  const auto dyn = ops::mrna_dynamics(tape, t, p.slice(1, 1), zero, p.slice(0, 1), p.slice(1, 1), p.slice(2, 1));
  const Var<double> ratio = ops::div(tape, dyn.u, ops::add(tape, dyn.s, one));
  Var<double> loss = ops::sum(tape, ops::square(tape, ratio));
  loss = ops::add(tape, loss, ops::normal_log_prob_sum(tape, xv, loc, p.slice(0, 1)));
  loss = ops::add(tape, loss, ops::lognormal_log_prob_sum(tape, t, th.slice(1, 1), p.slice(2, 1)));
  loss = ops::sub(tape, loss, ops::sum(tape, ops::log(tape, ops::mul(tape, p, p)), 0.5));
  tape.backward(loss);
  if (d_theta) *d_theta = g_theta;
  if (d_x) *d_x = g_x;
  return loss.scalar();
}

}  // namespace

TEST_CASE("tape: gradients of a composite of every op match finite differences") {
  Tape<double> tape;
  std::vector<double> theta = {0.3, -0.4, 1.2}, x = {-1.0, -0.2, 0.1, 0.9, 1.7};
  std::vector<double> d_theta, d_x;
  composite(tape, theta, x, &d_theta, &d_x);
  for (int i = 0; i < 3; ++i) {
    auto f = [&](double v) { auto th = theta; th[i] = v; return composite(tape, th, x, nullptr, nullptr); };
    CAPTURE(i);
    CHECK(pv::testing::close(d_theta[i], pv::testing::central_difference(f, theta[i]), 1e-6, 1e-9));
  }
  for (int i = 0; i < 5; ++i) {
    auto f = [&](double v) { auto xs = x; xs[i] = v; return composite(tape, theta, xs, nullptr, nullptr); };
    CAPTURE(i);
    CHECK(pv::testing::close(d_x[i], pv::testing::central_difference(f, x[i]), 1e-6, 1e-9));
  }
}

TEST_CASE("tape: the arena is reused across steps, with no new allocation after the first") {
  Tape<double> tape(512);  // small blocks so that one step spans several
  std::vector<double> theta = {0.3, -0.4, 1.2}, x = {-1.0, -0.2, 0.1, 0.9, 1.7};
  std::vector<double> first_grad, grad;
  const double first = composite(tape, theta, x, &first_grad, nullptr);
  const size_t blocks = tape.arena().block_count();
  const size_t bytes = tape.arena().bytes_reserved();
  const size_t nodes = tape.node_count();
  CHECK(blocks >= 2);
  for (int step = 0; step < 5; ++step) {
    const double again = composite(tape, theta, x, &grad, nullptr);
    CHECK(again == first);
    CHECK(grad == first_grad);
    CHECK(tape.arena().block_count() == blocks);
    CHECK(tape.arena().bytes_reserved() == bytes);
    CHECK(tape.node_count() == nodes);
  }
  // A fresh variable after rewind lands where the first one did.
  tape.rewind();
  const Var<double> a = tape.variable(8);
  tape.rewind();
  const Var<double> b = tape.variable(8);
  CHECK(a.value == b.value);
  for (int i = 0; i < 8; ++i) CHECK(b.grad[i] == 0.0);
}

TEST_CASE("tape: constants receive no gradient and bad broadcasts are refused") {
  Tape<double> tape;
  const Var<double> c = tape.constant(3, 2.0);
  CHECK_FALSE(c.needs_grad());
  Var<double> v = tape.variable(3);
  for (int i = 0; i < 3; ++i) v.value[i] = i + 1.0;
  const Var<double> y = ops::sum(tape, ops::mul(tape, c, v));
  tape.backward(y);
  CHECK(y.scalar() == 12.0);
  CHECK(v.grad[2] == 2.0);
  CHECK_THROWS_AS(ops::add(tape, tape.variable(3), tape.variable(4)), pv::Error);
}
